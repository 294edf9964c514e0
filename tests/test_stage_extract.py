"""The extract stage on its own: activations of every prompt set, and the differences."""

from __future__ import annotations

import torch

from conftest import stage_context
from steering.code.prompts import PromptSet
from steering.pipeline.stages.base import Learned
from steering.pipeline.stages.extract import extract
from steering.store.schema import ACTIVATIONS, DELTAS, EXPLICIT


def test_extract_reads_every_prompt_set_and_the_differences_are_target_minus_neutral(tiny_llama):
    prompts = PromptSet.load().head(4)
    ctx = stage_context(prompts, tiny_llama, adaptive=False, probe_paraphrases=1)
    result = extract(ctx, Learned())
    acts, meta = result.tensors[ACTIVATIONS]
    shape = (4, tiny_llama.n_layers, tiny_llama.d_model)
    assert acts["neutral"].shape == acts["target"].shape == acts["paraphrase_0"].shape == shape
    assert {f"{EXPLICIT}{lang}" for lang in ("python", "java", "julia")} <= set(acts)  # what the condition reads
    assert torch.equal(acts["index_paraphrase_0"], torch.arange(4))
    deltas, _ = result.tensors[DELTAS]
    assert torch.allclose(deltas["deltas"], acts["target"] - acts["neutral"])
    assert torch.allclose(deltas["mean_vectors"], deltas["deltas"].mean(0))
    assert meta["n_layers"] == tiny_llama.n_layers and meta["hook_point"] == "resid_post"
    assert "off" not in acts and not result.generations  # not adaptive: no answers read
