"""PipelineSettings: checked when a pipeline is made, before anything is written; a target the prompts lack is named."""

from __future__ import annotations

import json
import math

import pytest

from conftest import quick_settings
from steering.code.prompts import PromptSet, PromptSetError
from steering.pipeline.runner import Pipeline
from steering.store.storage import Run


@pytest.mark.parametrize("overrides, message", [
    (dict(k=9), "K=9 is larger than the number of tasks \\(8\\)"),
    (dict(steer_layers=(7,)), "layer 7 is out of range"),
    (dict(steer_alphas=(math.nan,), steer_layers=(1,)), "alpha must be a finite number"),
    (dict(target="rust"), "unknown language 'rust'"),
])
def test_bad_settings_fail_before_anything_is_written(tiny_llama, tmp_path, overrides, message):
    prompts = PromptSet.load().head(8)
    with pytest.raises(ValueError, match=message):
        Pipeline(tiny_llama, prompts, Run(tmp_path / "run", create=True), quick_settings(**overrides))
    assert not (tmp_path / "run").exists()  # nothing was written


def test_task_missing_the_target_prompt_is_named(tiny_llama, tmp_path):
    rows = [{"id": "a", "neutral": "Sort.", "prompts": {"python": "Sort in Python."}},
            {"id": "b", "neutral": "Add.", "prompts": {"python": "Add in Python.", "cpp": "Add in C++."}}]
    prompts = PromptSet.from_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(PromptSetError, match="1 task\\(s\\) have no cpp prompt: a"):
        Pipeline(tiny_llama, prompts, Run(tmp_path / "run", create=True), quick_settings(k=2))
