"""The evaluate stage's pure parts: the asked answers' budget."""

from __future__ import annotations

from steering.pipeline.stages.evaluate import asked_budget


def test_asked_budget_is_the_95th_percentile_rounded_up_and_capped():
    class A:
        def __init__(self, n):
            self.n_tokens = n
    assert asked_budget([A(n) for n in range(1, 101)], 320) == 96  # p95 = 95 -> 96
    assert asked_budget([A(n) for n in (10, 12, 20)], 320) == 32  # p95 = 20 -> 32
    assert asked_budget([A(320)] * 10, 320) == 320
    assert asked_budget([A(500)] * 10, 320) == 320  # never above the cap
