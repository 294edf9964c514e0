"""SteeringClusters: k-means per layer or on concatenated layers, and the sweep of K."""

from __future__ import annotations

import pytest

from conftest import blobs
from steering.methods.clustering import SteeringClusters, k_sweep


def test_clusters_find_the_blobs_per_layer_and_concatenated():
    deltas, truth = blobs()
    for mode in ("per_layer", "concat"):
        fitted = SteeringClusters(3, mode=mode).fit(deltas)
        assert fitted.labels_.shape == (3, 60) and fitted.vectors_.shape == (3, 3, 8)
        assert (fitted.silhouette_ > 0.8).all()
        for layer in range(3):  # same partition as the truth, up to renaming
            pairs = set(zip(truth.tolist(), fitted.labels_[layer].tolist()))
            assert len(pairs) == 3
    sweep = k_sweep(deltas, range(2, 6))
    assert max(sweep, key=lambda k: sweep[k]["silhouette"]) == 3


def test_cluster_errors():
    deltas, _ = blobs(n=5)
    with pytest.raises(ValueError, match="K=6 is larger than the number of tasks \\(5\\)"):
        SteeringClusters(6).fit(deltas)
    with pytest.raises(ValueError, match="unknown clustering mode"):
        SteeringClusters(2, mode="joint").fit(deltas)
