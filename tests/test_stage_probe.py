"""The probe stage on its own: activations and cluster labels in; probes, their accuracies with
intervals, and the baselines they must beat out."""

from __future__ import annotations

import numpy as np
import torch

from conftest import blobs, stage_context
from steering.code.prompts import PromptSet
from steering.pipeline.stages.base import Learned, StageResult
from steering.pipeline.stages.probe import probe, probe_data
from steering.store.schema import ACTIVATIONS, CLUSTERS, CONDITION, accuracy_metric, probe_tensors

N = 30


def learned_values(separable: bool = True, layers: int = 2) -> Learned:
    acts, labels = blobs(n=N, layers=layers, d=8, k=3, seed=1)
    if not separable:
        acts = torch.randn_like(acts)
    learned = Learned()
    learned.add(StageResult(tensors={
        ACTIVATIONS: ({"neutral": acts, "target": acts + 1.0}, {}),
        CLUSTERS: ({"labels": torch.as_tensor(np.stack([labels] * layers))}, {}),
    }))
    return learned


def metric(result, name):
    return {r[1]: r[2] for r in result.metrics["probe"] if r[0] == name}


def test_the_probe_reads_separable_clusters_and_beats_its_baselines():
    ctx = stage_context(PromptSet.load().head(N), layers=2, k=3, probe_epochs=200, adaptive=False)
    X, y, groups, is_off = probe_data(ctx, learned_values())
    assert X.shape == (N, 2, 8) and y.shape == (2, N) and (groups == np.arange(N)).all() and not is_off.any()
    result = probe(ctx, learned_values())
    assert set(result.tensors) == {probe_tensors("gact"), probe_tensors("sklearn")}  # no condition: no explicit prompts
    assert CONDITION not in result.tensors
    val, majority = metric(result, accuracy_metric("gact", "val")), metric(result, accuracy_metric("majority", "val"))
    assert all(val[layer] == 1.0 > majority[layer] for layer in (0, 1))
    intervals = [r[3] for r in result.metrics["probe"] if r[0] == accuracy_metric("gact", "val_ci")]
    assert all(i["low"] <= 1.0 == i["high"] and len(i["correct"]) == len(i["tasks"]) for i in intervals)
    assert len(result.metrics["probe_report"]) == 2 * 2 * N  # both probes, every layer, every task


def test_labels_shuffled_or_noise_score_near_chance_on_average():
    """About 8 validation tasks: one layer may score well by luck, the mean over 8 layers does not."""
    ctx = stage_context(PromptSet.load().head(N), layers=8, k=3, probe_epochs=200, adaptive=False)
    shuffled = metric(probe(ctx, learned_values(layers=8)), accuracy_metric("shuffled", "val"))
    noise = metric(probe(ctx, learned_values(separable=False, layers=8)), accuracy_metric("gact", "val"))
    assert np.mean(list(shuffled.values())) < 0.7 and np.mean(list(noise.values())) < 0.7
