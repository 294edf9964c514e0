"""The project stage on its own: each projection of the differences as 2-D points."""

from __future__ import annotations

from conftest import blobs, stage_context
from steering.code.prompts import PromptSet
from steering.pipeline.stages.base import Learned, StageResult
from steering.pipeline.stages.project import project
from steering.store.schema import DELTAS


def test_project_gives_two_coordinates_per_task_and_layer_for_each_projection():
    deltas, _ = blobs(n=12, layers=2, d=8, k=3)
    learned = Learned()
    learned.add(StageResult(tensors={DELTAS: ({"deltas": deltas, "mean_vectors": deltas.mean(0)}, {})}))
    ticks = []
    ctx = stage_context(PromptSet.load().head(12), layers=2, projections=("pca",))
    ctx.progress = lambda stage, done, total: ticks.append((stage, done, total))
    result = project(ctx, learned)
    (name, (tensors, meta)), = result.tensors.items()
    assert "pca" in name and tensors["points"].shape[-1] == 2 and tensors["points"].shape[0] in (2, 12)
    assert tensors["points"].numel() == 2 * 12 * 2
    assert ticks[-1] == ("project", 1, 1)  # progress in the stage's own units
