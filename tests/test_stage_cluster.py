"""The cluster stage on its own: difference vectors in, K steering vectors per layer out."""

from __future__ import annotations

import torch
from sklearn.metrics import adjusted_rand_score

from conftest import blobs, stage_context
from steering.code.prompts import PromptSet
from steering.pipeline.stages.base import Learned, StageResult
from steering.pipeline.stages.cluster import cluster
from steering.store.schema import CLUSTERS, DELTAS


def test_cluster_finds_the_tasks_groups_and_sweeps_k():
    deltas, truth = blobs(n=12, layers=3, d=8, k=3)
    learned = Learned()
    learned.add(StageResult(tensors={DELTAS: ({"deltas": deltas, "mean_vectors": deltas.mean(0)}, {})}))
    ctx = stage_context(PromptSet.load().head(12), k=3)
    result = cluster(ctx, learned)
    tensors, meta = result.tensors[CLUSTERS]
    assert tensors["vectors"].shape == (3, 3, 8) and tensors["labels"].shape == (3, 12)
    assert all(adjusted_rand_score(truth, labels) == 1.0 for labels in tensors["labels"].numpy())
    for layer in range(3):  # each steering vector is its cluster's mean difference
        for c in range(3):
            members = deltas[tensors["labels"][layer] == c, layer]
            assert torch.allclose(tensors["vectors"][layer, c], members.mean(0), atol=1e-5)
    assert meta["k"] == 3 and meta["model"] == "synthetic" and meta["target"] == "cpp"
    rows = result.metrics["cluster"]
    assert [r[1] for r in rows if r[0] == "silhouette"] == [0, 1, 2]
    assert sorted(r[3]["k"] for r in rows if r[0] == "k_sweep_silhouette") == list(range(2, 9))
    assert not result.generations and not result.notes  # a stage writes nothing; the runner persists this value
