"""Prompts encoded with their shared start in the first columns, continuations teacher-forced, the shared start run once."""

from __future__ import annotations

import pytest
import torch

from conftest import wrap_forward
from steering.engine.activations import extract_activations
from steering.engine.forward import encode_prompts, shared_columns
from steering.engine.generation import GenerationConfig, generate
from steering.engine.prefix import PromptPrefix

PROMPTS = ["Write a function that sorts an array with merge sort.", "Add two numbers."]


def test_rows_share_their_common_start_then_are_padded_before_their_own_tokens(embedded):
    """The chat template's start that every row has comes first (issue 29: it runs once), then
    each row's padding, then its own tokens, so that the last column is every row's last token."""
    prompts = ["Sort.", "Add two numbers and return their sum, a much longer prompt."]
    ids, mask = encode_prompts(embedded, prompts)
    shared = shared_columns(ids, mask)
    assert shared == len(embedded.tokenizer("<|endoftext|><|user|>\n", add_special_tokens=False)["input_ids"])
    assert mask[0, :shared].all() and mask[0, shared] == 0 and mask[0, -1] == 1 and mask[1].all()
    assert ids[0, shared] == embedded.tokenizer.pad_token_id
    for i, prompt in enumerate(prompts):  # a row's own tokens, in order, are its prompt encoded alone
        assert ids[i][mask[i].bool()].tolist() == encode_prompts(embedded, [prompt])[0][0].tolist()


def test_continuations_are_appended_as_their_own_tokens(embedded):
    tok = embedded.tokenizer
    ids, mask = encode_prompts(embedded, ["Sort.", "Sort a longer list."], "```cpp")
    tail = tok("```cpp", add_special_tokens=False)["input_ids"]
    assert ids[:, -len(tail):].tolist() == [tail, tail] and mask[:, -len(tail):].all()
    ids, _ = encode_prompts(embedded, ["a", "b"], ["x", "yy zz"])
    assert tok.decode(ids[1]).endswith("<|assistant|>\nyy zz")
    with pytest.raises(ValueError, match="2 prompts but 1 continuations"):
        encode_prompts(embedded, ["a", "b"], ["x"])


def test_the_prompts_shared_start_runs_once_and_they_read_as_each_prompt_alone(tiny_qwen2, monkeypatch):
    """Issue 29: a chat template's system turn starts every prompt. ``encode_prompts`` puts it in
    the first columns and ``prompt_cache`` runs it once for all rows; what each row then reads,
    and answers, is what its prompt alone reads and answers."""
    from steering.engine.forward import shared_columns

    prompts = PROMPTS + ["Parse a date written in the ISO 8601 format and return its parts."]
    ids, mask = encode_prompts(tiny_qwen2, prompts)
    shared = shared_columns(ids, mask)
    assert shared > 2 and all(torch.equal(encode_prompts(tiny_qwen2, [p])[0][0, :shared], ids[0, :shared]) for p in prompts)
    passes = []
    wrap_forward(monkeypatch, lambda real, model, ids, *a, **k: passes.append(tuple(ids.shape)) or real(model, ids, *a, **k))
    prefix = PromptPrefix(tiny_qwen2, prompts)
    assert passes == [(1, shared), (len(prompts), ids.shape[1] - 1 - shared)]
    tail = prefix.continue_with("```cpp")
    for i, prompt in enumerate(prompts):
        assert torch.allclose(tail[i], PromptPrefix(tiny_qwen2, [prompt]).continue_with("```cpp")[0], atol=1e-4)
    config = GenerationConfig(max_new_tokens=12)
    assert [a.tokens for a in generate(tiny_qwen2, prompts, config)] == \
        [generate(tiny_qwen2, [prompt], config)[0].tokens for prompt in prompts]
    for position, tail in (("last", ""), ("answer", "```cpp\nint x = 1;")):  # activations too, read after it
        together = extract_activations(tiny_qwen2, prompts, position=position, continuation=tail, cache_dir=False)
        alone = extract_activations(tiny_qwen2, prompts, position=position, continuation=tail, cache_dir=False, batch_size=1)
        assert torch.allclose(together, alone, atol=1e-4)
