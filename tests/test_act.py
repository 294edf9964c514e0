"""Faithful ACT: per-head probes and directions, its kept heads, its adaptive strength."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steering.methods.act import ActSteerer, AdaptiveActivationSteering
from steering.methods.steer import SteeringSpec


def synthetic_heads(seed=0, n_tasks=12, n_layers=3, n_heads=4, d_head=8, strength=4.0):
    """Good answers differ from bad ones along one direction on head 2 of layer 1 only."""
    rng = np.random.default_rng(seed)
    rows, good, tasks = [], [], []
    signal = np.zeros((n_layers, n_heads, d_head))
    signal[1, 2, 0] = strength
    for t in range(n_tasks):
        for is_good in (True, False, False):
            rows.append(rng.normal(size=(n_layers, n_heads, d_head)) + (signal if is_good else 0))
            good.append(is_good)
            tasks.append(t)
    z = torch.tensor(np.array(rows), dtype=torch.float32).reshape(len(rows), n_layers, n_heads * d_head)
    return z, np.array(good), np.array(tasks)


def test_act_keeps_the_informative_head_and_round_trips():
    z, good, tasks = synthetic_heads()
    act = AdaptiveActivationSteering(n_clusters=2, n_heads_kept=1, random_state=0).fit(z, good, tasks, n_heads=4)
    assert act.coef_.shape == (2, 3, 4, 8) and act.val_accuracy_.shape == (2, 3, 4)
    assert {tuple(k[1:]) for k in act.kept_} == {(1, 2)}  # every cluster keeps the one head that tells them apart
    assert act.layers_ == [1]
    assert np.nanmax(act.best_head_accuracy()) == act.best_head_accuracy()[1]
    assert np.allclose(np.linalg.norm(act.theta_, axis=1), 1.0) and (act.sigma_ > 0).all()
    again = AdaptiveActivationSteering.from_state_tensors(act.state_tensors())
    assert np.array_equal(again.kept_, act.kept_) and np.allclose(again.theta_, act.theta_)
    with pytest.raises(ValueError, match="needs at least 3 questions"):
        AdaptiveActivationSteering(n_clusters=3).fit(z[:6], good[:6], tasks[:6], n_heads=4)
    with pytest.raises(Exception, match="not fitted"):
        AdaptiveActivationSteering().layers_


def test_act_steers_only_its_heads_with_adaptive_strength(embedded):
    n_heads, width = embedded.facts.n_heads, embedded.d_model
    d_head = width // n_heads
    z, good, tasks = synthetic_heads(n_tasks=30, n_layers=embedded.n_layers, n_heads=n_heads, d_head=d_head, strength=8.0)
    act = AdaptiveActivationSteering(n_clusters=2, n_heads_kept=1).fit(z, good, tasks, n_heads=n_heads)
    steerer = ActSteerer(SteeringSpec.uniform(act.layers_, 5.0, method="act"), act)
    ((name, hook),) = steerer.hooks(embedded)
    assert name == "blocks.1.attn.hook_z"
    bad_z = z[~good][:2, 1][:, None].repeat(1, 3, 1)  # [batch 2, 3 positions, width]
    out = hook(bad_z.clone(), hook=None)
    changed = (out - bad_z).reshape(2, 3, n_heads, d_head).abs().sum(-1) > 0
    assert changed[:, -1, 2].all() and not changed[:, :-1].any() and not changed[:, :, [0, 1, 3]].any()
    # The push is larger where the probe already believes less in a good answer.
    good_z = z[good][:2, 1][:, None]
    push_bad = (out - bad_z)[:, -1].norm(dim=-1)
    push_good = (hook(good_z.clone(), hook=None) - good_z)[:, -1].norm(dim=-1)
    assert (push_bad > push_good).all()
    with pytest.raises(ValueError, match="kept no head on layer"):
        ActSteerer(SteeringSpec.uniform([0], 5.0, method="act"), act).hooks(embedded)
