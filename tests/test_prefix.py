"""Prompt prefixes: run once, continued many times, reading what a full pass reads."""

from __future__ import annotations

import torch

from steering.engine.forward import encode_prompts
from steering.engine.prefix import PromptPrefix, tag_success, tag_tokens

PROMPTS = ["Write a function that sorts an array with merge sort.", "Add two numbers."]


def test_prompt_prefix_reads_what_a_full_pass_reads(tiny_qwen2):
    prefix = PromptPrefix(tiny_qwen2, PROMPTS)
    tail = prefix.continue_with("```cpp")
    ids, mask = encode_prompts(tiny_qwen2, PROMPTS, "```cpp")
    with torch.no_grad():
        full = tiny_qwen2.hf_model(input_ids=ids, attention_mask=mask,
                                   position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    assert torch.allclose(tail, full[:, -tail.shape[1]:], atol=1e-4)
    assert torch.allclose(prefix.continue_with("```cpp", rows=[1]), tail[1:], atol=1e-4)
    assert torch.allclose(prefix.continue_with("```cpp"), tail)  # the cached prefix is left as it was


def test_tag_success_reads_the_language_after_a_forced_fence(embedded):
    cpp = [t for t in ["Write a C++ function that sorts an array with merge sort.",
                       "Write a C++ function that returns the n-th Fibonacci number computed iteratively."]]
    assert tag_success([PromptPrefix(embedded, cpp)], "cpp") == 1.0
    assert tag_success([PromptPrefix(embedded, cpp)], "python") == 0.0
    assert tag_tokens(embedded.tokenizer, "cpp") and tag_tokens(embedded.tokenizer, "cpp") != tag_tokens(embedded.tokenizer, "java")
