"""One decoding step: the next token (greedy, or seeded sampling at any temperature), non-finite scores, and the stop rules."""

from __future__ import annotations

import pytest

from steering.engine.generation import GenerationConfig, generate


def test_non_finite_scores_stop_the_answer_with_a_reason(embedded):
    """Issue 18: a residual stream that turns NaN (steering far too strong, broken vectors) ends
    the answer with a reason, never an empty answer without a word or a sampling crash."""
    config = GenerationConfig(max_new_tokens=8, temperature=1.0, seed=1)

    def wreck(act, hook):
        return act * float("nan")

    for temperature in (0.0, 1.0):
        answer = generate(embedded, ["Sort a list.", "Sum a list."], GenerationConfig(max_new_tokens=8, temperature=temperature),
                          fwd_hooks=[("blocks.1.hook_resid_post", wreck)])[0]
        assert answer.n_tokens == 0 and "NaN or infinite" in answer.stop_reason
    assert generate(embedded, "Sort a list.", config)[0].stop_reason is None


def test_a_temperature_near_zero_samples_the_greedy_answer(embedded):
    """Issue 18: 1e-300 used to overflow to inf and then NaN probabilities; the scores are now
    shifted by their maximum before they are divided, so a tiny temperature is greedy."""
    greedy = generate(embedded, "Sort a list.", GenerationConfig(max_new_tokens=12))[0]
    tiny = generate(embedded, "Sort a list.", GenerationConfig(max_new_tokens=12, temperature=1e-300, seed=3))[0]
    assert tiny.text == greedy.text and tiny.stop_reason is None


def test_stop_rules(embedded):
    prompt = "Write a Python function that returns the n-th Fibonacci number computed iteratively."
    tag = generate(embedded, prompt, GenerationConfig(stop="tag"))[0]
    block = generate(embedded, prompt, GenerationConfig(stop="block"))[0]
    assert tag.text == "```python" and tag.detection.language == "python" and tag.detection.fenced
    assert block.text.startswith("```python\n") and block.text.endswith("```") and block.n_tokens > tag.n_tokens
    with pytest.raises(ValueError, match="unknown stop rule"):
        GenerationConfig(stop="never")
