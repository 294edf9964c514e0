"""Refine: G-ACT's probe (and a per-layer gain) refined by gradient through the frozen model,
with its success before and after on the training and validation tasks."""

from __future__ import annotations

import torch

from ...engine.prefix import PromptPrefix, prefixes, tag_success
from ...methods.refine import refine_steering
from ...methods.registry import METHODS
from ...store.schema import REFINED, refine_metric
from .base import Context, Learned, StageResult
from .probe import accuracy_rows, probe_data


def refine(ctx: Context, learned: Learned) -> StageResult:
    s, model = ctx.settings, ctx.model
    gact = METHODS["gact_unrefined"]
    spec = gact.spec(learned, s)
    steerer = gact.steerer(learned, s, model, spec)
    X, y, groups, is_off = probe_data(ctx, learned)
    train_tasks = sorted(set(groups[steerer.probe.train_idx_].tolist()))
    val_tasks = sorted(set(range(len(ctx.prompts))) - set(train_tasks))
    steps = s.refine_steps * (len(train_tasks) if s.refine_online else 1)
    advance = ctx.tick("refine", steps + 4)
    train_prefix = PromptPrefix(model, [ctx.prompts.tasks[i].neutral for i in train_tasks])
    runs = {"train": [train_prefix]}
    if val_tasks:
        runs["val"] = prefixes(model, [ctx.prompts.tasks[i].neutral for i in val_tasks])

    def success(live):
        return {split: tag_success(runs[split], s.target, live) if split in runs else float("nan")
                for split in ("train", "val")}

    before = success(steerer)
    advance(2)
    refined, losses = refine_steering(steerer, train_prefix, s.target, steps=s.refine_steps, lr=s.refine_lr,
                                      prox=s.refine_prox, fluency=s.refine_fluency, gains=s.refine_gains,
                                      offsets=s.refine_offsets, online=s.refine_online, seed=s.seed, progress=advance)
    after = success(refined)
    advance(2)
    probe = refined.probe
    probe.train_accuracy_, probe.val_accuracy_ = probe.split_scores(X, y)
    tensors = probe.state_tensors()
    tensors.update({k: getattr(refined, k) for k in ("log_gains", "offsets") if getattr(refined, k) is not None})
    rows = [("loss", step, loss, None) for step, loss in enumerate(losses)]
    rows += [(refine_metric(when, split), None, value, None)
             for when, values in (("before", before), ("after", after)) for split, value in values.items()]
    if refined.log_gains is not None:
        rows += [("gain", layer, float(torch.exp(refined.log_gains[layer])), None) for layer in spec.layers]
    rows += accuracy_rows(ctx, "refined", probe, X, y, groups, is_off)
    return StageResult(tensors={REFINED: (tensors, ctx.meta(kind="probe", method="gact_refined", k=s.k))},
                       metrics={"refine": rows})
