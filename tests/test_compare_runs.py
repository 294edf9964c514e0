"""``bench/compare_runs.py``, the check that a refactor left a run's tables unchanged, finds a
difference where there is one and none where there is none."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from conftest import DASHBOARD_RUN

from steering.store.storage import Run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from compare_runs import compare  # noqa: E402


def test_compare_runs_tells_equal_runs_from_changed_ones(dashboard_runs, tmp_path):
    for name in ("a", "b"):
        shutil.copytree(dashboard_runs / DASHBOARD_RUN, tmp_path / name)
    a, b = Run(tmp_path / "a"), Run(tmp_path / "b")
    assert compare(a, b) == []
    values = [float("nan") if m["value"] is None else m["value"] for m in b.metrics("cluster")]  # NULL: NaN
    rows = [(m["name"], m["layer"], v + (1e-3 if m["name"] == "k_sweep_inertia" else 0.0), m["extra"])
            for m, v in zip(b.metrics("cluster"), values)]
    tensors, meta = b.load("clusters")
    with b.writing():
        b.replace_metrics("cluster", rows)
        b.save("clusters", {**tensors, "vectors": tensors["vectors"] + 1e-3}, **meta)
    assert compare(a, b) == ["metrics of 'cluster' differ (%d rows vs %d)" % (len(rows), len(rows)),
                             "tensors 'clusters'/vectors differ"]
