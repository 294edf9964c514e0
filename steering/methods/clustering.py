"""Cluster difference vectors into K steering vectors per layer (k-means, scikit-learn)."""

from __future__ import annotations

import numpy as np
import torch

MODES = ("per_layer", "concat")


def _check_k(n_clusters: int, n_samples: int) -> None:
    if not isinstance(n_clusters, (int, np.integer)) or n_clusters < 1:
        raise ValueError(f"K must be a positive integer, got {n_clusters!r}")
    if n_clusters > n_samples:
        raise ValueError(f"K={n_clusters} is larger than the number of tasks ({n_samples})")


def _silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(points):
        return float("nan")  # undefined for one cluster, or one point per cluster
    from sklearn.metrics import silhouette_score  # on use: scikit-learn costs the command line 0.9 s to import

    return float(silhouette_score(points, labels))


def match_across_layers(labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Renumber each layer's clusters ``labels[layers, tasks]`` to agree with the layer before
    (Hungarian matching on the tasks they share): k-means numbers clusters arbitrarily, so
    without this a cluster's id, and its colour on the Clusters page, changed from layer to layer."""
    from scipy.optimize import linear_sum_assignment

    matched = labels.copy()
    for layer in range(1, len(labels)):
        overlap = np.array([[np.sum((labels[layer] == i) & (matched[layer - 1] == j)) for j in range(n_clusters)]
                            for i in range(n_clusters)])
        rows, cols = linear_sum_assignment(-overlap)
        matched[layer] = cols[np.argsort(rows)][labels[layer]]
    return matched


class SteeringClusters:
    """k-means over per-task difference vectors ``deltas[n_tasks, n_layers, d_model]``.

    ``mode="per_layer"`` clusters each layer on its own; ``mode="concat"`` clusters the tasks once
    on all layers concatenated, so every layer shares one labelling. Learned state:
    ``labels_[n_layers, n_tasks]``, ``vectors_[n_layers, K, d_model]`` (cluster means: the
    steering vectors), ``silhouette_[n_layers]`` and ``inertia_[n_layers]``.
    """

    def __init__(self, n_clusters: int = 3, mode: str = "per_layer", n_init: int = 10, random_state: int = 0):
        self.n_clusters = n_clusters
        self.mode = mode
        self.n_init = n_init
        self.random_state = random_state

    def fit(self, deltas: torch.Tensor) -> "SteeringClusters":
        if self.mode not in MODES:
            raise ValueError(f"unknown clustering mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if deltas.ndim != 3:
            raise ValueError(f"expected deltas of shape [tasks, layers, d_model], got {tuple(deltas.shape)}")
        n_tasks, n_layers, _ = deltas.shape
        _check_k(self.n_clusters, n_tasks)
        data = deltas.detach().double().cpu().numpy()
        from sklearn.cluster import KMeans

        kmeans = lambda: KMeans(self.n_clusters, n_init=self.n_init, random_state=self.random_state)  # noqa: E731
        if self.mode == "concat":
            shared = kmeans().fit(data.reshape(n_tasks, -1)).labels_
            labels = np.tile(shared, (n_layers, 1))
        else:
            labels = match_across_layers(np.stack([kmeans().fit(data[:, layer]).labels_ for layer in range(n_layers)]),
                                         self.n_clusters)
        vectors = np.zeros((n_layers, self.n_clusters, data.shape[2]))
        inertia = np.zeros(n_layers)
        for layer in range(n_layers):
            for k in range(self.n_clusters):
                members = data[labels[layer] == k, layer]
                if len(members):
                    vectors[layer, k] = members.mean(axis=0)
                    inertia[layer] += ((members - vectors[layer, k]) ** 2).sum()
        self.labels_ = labels
        self.vectors_ = torch.tensor(vectors, dtype=torch.float32)
        self.inertia_ = inertia
        self.silhouette_ = np.array([_silhouette(data[:, layer], labels[layer]) for layer in range(n_layers)])
        return self


def k_sweep(deltas: torch.Tensor, ks=range(2, 7), mode: str = "per_layer", random_state: int = 0) -> dict[int, dict]:
    """Mean silhouette and inertia over layers for each K, to help choose K."""
    out = {}
    for k in ks:
        if k > deltas.shape[0]:
            break
        fitted = SteeringClusters(k, mode=mode, random_state=random_state).fit(deltas)
        defined = fitted.silhouette_[~np.isnan(fitted.silhouette_)]
        out[int(k)] = {
            "silhouette": float(defined.mean()) if len(defined) else float("nan"),
            "inertia": float(fitted.inertia_.mean()),
        }
    return out
