"""The bias stage on its own: sampled answers to the neutral prompts, and their language shares."""

from __future__ import annotations

import pytest

from conftest import stage_context
from steering.code.languages import LANGUAGE_KEYS
from steering.code.prompts import PromptSet
from steering.pipeline.stages.base import Learned
from steering.pipeline.stages.bias import bias
from steering.store.schema import share_metric


def test_bias_samples_each_neutral_prompt_and_its_shares_add_up(embedded):
    prompts = PromptSet.load().head(3)
    ctx = stage_context(prompts, embedded, bias_samples=2, bias_max_new_tokens=24)
    result = bias(ctx, Learned())
    rows = result.generations["bias"]
    assert [r["task_id"] for r in rows] == [i for i in prompts.ids for _ in range(2)]
    assert {r["prompt"] for r in rows} == {t.neutral for t in prompts} and all(r["n_tokens"] <= 24 for r in rows)
    shares = {name: value for name, _, value, _ in result.metrics["bias"]}
    assert set(shares) == {share_metric(k) for k in (*LANGUAGE_KEYS, "none")} | {"no_code_block"}
    assert sum(v for k, v in shares.items() if k != "no_code_block") == pytest.approx(1.0)
