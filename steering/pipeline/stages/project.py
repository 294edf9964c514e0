"""Project: the 2-D projections of the differences the dashboard opens with."""

from __future__ import annotations

from ...methods.projection import projection_result
from ...store.schema import DELTAS
from .base import Context, Learned, StageResult


def project(ctx: Context, learned: Learned) -> StageResult:
    s = ctx.settings
    deltas = learned.tensors(DELTAS)["deltas"]
    advance = ctx.tick("project", len(s.projections))
    tensors = {}
    for method in s.projections:
        name, points, meta = projection_result(deltas, method, dims=2, seed=s.seed)
        tensors[name] = ({"points": points}, meta)
        advance()
    return StageResult(tensors=tensors)
