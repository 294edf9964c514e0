"""Projections of the differences: computed once per run and method, never stale."""

from __future__ import annotations

import time

import numpy as np
import pytest

from steering.methods.projection import project, projection_result, run_projection
from steering.store.storage import Run


def test_projections_are_cached_and_never_stale(results, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(results.run.dir, copy)
    run = Run(copy)
    started = time.perf_counter()
    shown = run_projection(run, "pca", 3)  # a reader's: computed, not stored
    assert not run.has("projection_pca_3d_seed0")
    name, points, meta = projection_result(run.load("deltas")[0]["deltas"], "pca", 3, seed=0)
    with run.writing():  # as the project stage's results are persisted
        run.save(name, {"points": points}, **meta)
    assert run.has("projection_pca_3d_seed0")
    first = run_projection(run, "pca", 3)
    assert first.shape == (8, 8, 3) and np.array_equal(first, shown)
    cached = run_projection(run, "pca", 3)
    assert np.array_equal(first, cached)
    tensors, meta = run.load("deltas")
    with run.writing():
        run.save("deltas", {**tensors, "deltas": tensors["deltas"] * 2}, **meta)
    assert not np.allclose(run_projection(run, "pca", 3), first)  # recomputed for the new differences
    assert time.perf_counter() - started < 30
    with pytest.raises(ValueError, match="unknown projection"):
        run_projection(run, "mds")
    assert project(np.ones((2, 5)), "umap", 2).shape == (2, 2)  # too few points to fit: still drawn
