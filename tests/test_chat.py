"""Chat templates: the prompt in the model's own format, and templates that hang or lack a system role."""

from __future__ import annotations

import pytest

from steering.engine.forward import format_prompt
from steering.engine.generation import GenerationConfig, generate


def test_prompt_format_uses_the_chat_template(embedded, tiny_llama):
    text = format_prompt(embedded.tokenizer, "Sort a list.")
    assert text.startswith("<|endoftext|><|user|>\nSort a list.") and text.endswith("<|assistant|>\n")
    assert format_prompt(tiny_llama.tokenizer, "hi") == "<|endoftext|>hi\n"  # no template: plain text
    with pytest.raises(ValueError, match="empty"):
        format_prompt(embedded.tokenizer, "  ")


def test_a_chat_template_that_hangs_on_a_long_prompt_stops_in_seconds(tiny_qwen2, monkeypatch):
    """Issue 18: the load check renders a one-line prompt; a template that loops only on longer
    prompts is stopped at generation by the render's deadline, in one line."""
    import time

    from steering.engine.chat import RENDER_SECONDS, ChatTemplateError

    slow = ("{% if messages[-1]['content'] | length > 500 %}{% for i in range(99999) %}{% for j in range(99999) %}"
            "{% endfor %}{% endfor %}{% endif %}{{ messages[-1]['content'] }}")
    monkeypatch.setattr(tiny_qwen2.tokenizer, "chat_template", slow)
    assert generate(tiny_qwen2, "short", GenerationConfig(max_new_tokens=2))
    start = time.monotonic()
    with pytest.raises(ChatTemplateError, match="took more than"):
        generate(tiny_qwen2, "x" * 600, GenerationConfig(max_new_tokens=2))
    assert time.monotonic() - start < RENDER_SECONDS + 2
    monkeypatch.setattr(tiny_qwen2.tokenizer, "chat_template", "{{ messages[-1]['content'] * 1000 }}")
    with pytest.raises(ChatTemplateError, match="may add at most"):
        generate(tiny_qwen2, "y" * 600, GenerationConfig(max_new_tokens=2))


def test_a_template_without_a_system_role_gets_the_instruction_after_the_prompt(tiny_qwen2, monkeypatch):
    """Templates such as Gemma 2's raise on a system message; the instruction then follows the
    prompt (the limits of chat.py are never retried that way)."""
    refuses = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
               "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}")
    monkeypatch.setattr(tiny_qwen2.tokenizer, "chat_template", refuses)
    assert format_prompt(tiny_qwen2.tokenizer, "Sort a list.", "Use a code block.") == "<user>Sort a list.\n\nUse a code block."
