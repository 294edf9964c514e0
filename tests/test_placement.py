"""A model spread by a device map over memory and disk answers and steers as in one piece."""

from __future__ import annotations

import torch

from steering.engine.models import load_model
from steering.interface.cli.main import main


def test_a_model_spread_over_memory_and_disk_answers_and_steers_as_in_one_piece(tiny_qwen2_dir, tiny_qwen2, capsys):
    """Issue 19: with a device map (accelerate), a model larger than its memory cap keeps some
    layers on disk; its tokens, plain and steered on an offloaded layer, equal the whole model's."""
    from steering.engine.generation import GenerationConfig, generate
    from steering.methods.steer import MeanDiffSteerer, SteeringSpec

    spread = load_model(tiny_qwen2_dir, device_map="auto", max_memory={"cpu": 500_000})
    assert "disk" in set(spread.hf_model.hf_device_map.values()) and "on disk" in spread.placement
    assert spread.hf_model.hf_device_map["model.layers.2"] == "disk" and tiny_qwen2.placement is None
    config = GenerationConfig(max_new_tokens=12)
    prompts = ["def f", "int f(int x) {", "return x"]
    steerer = MeanDiffSteerer(SteeringSpec((2,), (4.0,), method="mean_diff"),
                              torch.randn(tiny_qwen2.n_layers, tiny_qwen2.d_model, generator=torch.Generator().manual_seed(0)))
    for kwargs in ({}, {"steerer": steerer}):
        whole = generate(tiny_qwen2, prompts, config, **kwargs)
        assert [a.tokens for a in generate(spread, prompts, config, **kwargs)] == [a.tokens for a in whole]
    assert [a.tokens for a in generate(spread, prompts, config, steerer=steerer)] != [a.tokens for a in generate(spread, prompts, config)]
    assert main(["model", "--model", tiny_qwen2_dir, "--device-map", "auto", "--max-memory", "cpu=500000"]) == 0
    assert "on disk" in capsys.readouterr().out
    assert main(["model", "--model", tiny_qwen2_dir, "--max-memory", "cpu=1GiB"]) == 2
    assert main(["model", "--device-map", "auto", "--max-memory", "gpu=lots"]) == 2
    assert "is not DEVICE=SIZE" in capsys.readouterr().out
