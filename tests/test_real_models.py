"""A smoke test on the real Qwen2.5-Coder GGUF, where it has been fetched: loaded, read and steered on two tasks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from steering.engine.activations import extract_activations
from steering.engine.generation import GenerationConfig, generate
from steering.engine.models import load_model

REAL_MODEL = Path(os.environ.get("STEERSCOPE_REAL_MODEL",
                                 Path.home() / ".cache" / "steerscope" / "models" / "qwen2.5-coder-0.5b-instruct.gguf"))
PROMPTS = ["Write a function that sorts an array with merge sort.", "Add two numbers."]


# --- the real model -----------------------------------------------------------------------------


@pytest.mark.skipif(not REAL_MODEL.is_file(), reason=f"the real model is not fetched ({REAL_MODEL}); "
                    "../shared/tools/fetch-real-model fetches it")
def test_real_qwen_loads_and_steers_two_tasks(monkeypatch):
    from steering.code.prompts import PromptSet
    from steering.methods.steer import MeanDiffSteerer, SteeringSpec

    # The dequantized model is cached by the file's hash: reuse the user's cache (a minute saved).
    monkeypatch.setenv("STEERSCOPE_CACHE", str(Path.home() / ".cache" / "steerscope"))
    model = load_model(str(REAL_MODEL))
    assert model.facts.architecture == "Qwen2ForCausalLM" and model.facts.n_layers == 24 and model.d_model == 896
    tasks = PromptSet.load().head(2).tasks
    layer = 12
    neutral = extract_activations(model, [t.neutral for t in tasks], layers=[layer], continuation="```", cache_dir=None)
    target = extract_activations(model, [t.prompts["cpp"] for t in tasks], layers=[layer], continuation="```", cache_dir=None)
    mean = torch.zeros(model.n_layers, model.d_model)
    mean[layer] = (target - neutral).mean(dim=0)[0]
    steerer = MeanDiffSteerer(SteeringSpec((layer,), (4.0,), "mean_diff"), mean)
    config = GenerationConfig(max_new_tokens=24, stop="tag")
    plain = generate(model, [t.neutral for t in tasks], config)
    steered = generate(model, [t.neutral for t in tasks], config, fwd_hooks=steerer.hooks(model))
    assert all(a.detection.fenced for a in plain), [a.text for a in plain]  # the code-block instruction works
    assert [a.detection.language for a in steered] == ["cpp", "cpp"], [a.text for a in steered]
