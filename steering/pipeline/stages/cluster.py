"""Cluster: k-means over the difference vectors, K steering vectors per layer, and a sweep of K."""

from __future__ import annotations

import torch

from ...methods.clustering import SteeringClusters, k_sweep
from ...store.schema import CLUSTERS, DELTAS
from .base import Context, Learned, StageResult


def cluster(ctx: Context, learned: Learned) -> StageResult:
    s = ctx.settings
    deltas = learned.tensors(DELTAS)["deltas"]
    advance = ctx.tick("cluster", 2)
    fitted = SteeringClusters(s.k, mode=s.cluster_mode, random_state=s.seed).fit(deltas)
    advance()
    sweep = k_sweep(deltas, range(2, min(8, len(ctx.prompts)) + 1), mode=s.cluster_mode, random_state=s.seed)
    advance()
    tensors = {"labels": torch.as_tensor(fitted.labels_), "vectors": fitted.vectors_,
               "silhouette": torch.as_tensor(fitted.silhouette_)}
    rows = [("silhouette", layer, v, None) for layer, v in enumerate(fitted.silhouette_)]
    rows += [("k_sweep_silhouette", None, v["silhouette"], {"k": k}) for k, v in sweep.items()]
    rows += [("k_sweep_inertia", None, v["inertia"], {"k": k}) for k, v in sweep.items()]
    return StageResult(tensors={CLUSTERS: (tensors, ctx.meta(kind="clusters", k=s.k, mode=s.cluster_mode, target=s.target))},
                       metrics={"cluster": rows})
