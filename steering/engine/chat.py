"""Chat templates. A template is Jinja code that comes with the model, so it is treated as
hostile input: at load it renders once in a child process under a time and memory limit (a
process can be killed; a thread cannot), and every later render runs under a deadline and a cap
on its length, so that no template hangs the process or fills its memory.

Imports only the standard library at the top: the child process loads nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from ..core.limits import LIMITS

LOAD_SECONDS = 20.0  # the child's whole life: Python's start, transformers' import and one render
LOAD_MEMORY_BYTES = 2 * 2**30
RENDER_SECONDS = 5.0  # a real template renders in about a millisecond
MAX_PROMPT_CHARS = LIMITS["prompt_chars"].high
MAX_TEMPLATE_CHARS = 64 * 1024  # what a template may add to the prompt and instruction it is given
_SAMPLE_PROMPT = "Write a function that returns the sum of a list of numbers."


class ChatTemplateError(ValueError):
    """The model's chat template cannot format a prompt; the message says why."""


class TemplateLimitError(ChatTemplateError):
    """The template ran past a limit (time, length, memory, stack): never retried another way."""


def prompt_messages(render: Callable[[list[dict]], str], prompt: str, instruction: str | None) -> str:
    """``prompt`` rendered by ``render`` with ``instruction`` as the system message, or, for a
    template that refuses a system message, after the prompt."""
    if not instruction:
        return render([{"role": "user", "content": prompt}])
    try:
        return render([{"role": "system", "content": instruction}, {"role": "user", "content": prompt}])
    except TemplateLimitError:
        raise
    except Exception:  # templates without a system role raise; the instruction then follows the prompt
        return render([{"role": "user", "content": f"{prompt}\n\n{instruction}"}])


def render_prompt(tokenizer, prompt: str, instruction: str | None) -> str:
    """The prompt in the tokenizer's chat template, under ``RENDER_SECONDS`` and a length cap."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt is {len(prompt):,} characters long; at most {MAX_PROMPT_CHARS:,} are accepted")
    limit = len(prompt) + len(instruction or "") + MAX_TEMPLATE_CHARS

    def render(messages):
        try:
            with _deadline(RENDER_SECONDS):
                text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except ChatTemplateError:
            raise
        except (RecursionError, MemoryError) as err:
            raise TemplateLimitError(f"the chat template ran out of {'stack' if isinstance(err, RecursionError) else 'memory'}") from None
        except Exception as err:
            raise _refusal(err) from None
        if len(text) > limit:
            raise TemplateLimitError(f"the chat template wrote {len(text):,} characters for a prompt of {len(prompt):,}; "
                                     f"it may add at most {MAX_TEMPLATE_CHARS:,}")
        return text

    return prompt_messages(render, prompt, instruction)


def check_template(tokenizer, instruction: str | None) -> None:
    """Render a sample prompt once in a child process under ``LOAD_SECONDS`` and
    ``LOAD_MEMORY_BYTES``, or raise ChatTemplateError saying what the template did."""
    job = {"template": tokenizer.chat_template, "tokens": _special_tokens(tokenizer), "instruction": instruction}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run([sys.executable, "-c", "from steering.engine.chat import _child; _child()"],
                              input=json.dumps(job), capture_output=True, text=True, timeout=LOAD_SECONDS, env=env)
    except subprocess.TimeoutExpired:
        raise ChatTemplateError(f"the chat template did not finish formatting a one-line prompt in {LOAD_SECONDS:.0f} s; "
                                "it is refused (a loop that never ends, or one far too long)") from None
    answer = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else []
    if not answer:
        raise ChatTemplateError(f"the chat template crashed the process that formats a prompt "
                                f"(exit {done.returncode}; it may need more than {LOAD_MEMORY_BYTES / 2**30:.0f} GiB)")
    error = json.loads(answer[0]).get("error")
    if error:
        raise ChatTemplateError(error)


def _child() -> None:
    """Runs in the child: one render with the memory cap; its verdict as one JSON line."""
    import resource

    from transformers.utils.chat_template_utils import render_jinja_template

    with open("/proc/self/statm") as f:  # the address space of Python and its libraries: the cap comes on top
        mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (mapped + LOAD_MEMORY_BYTES, resource.RLIM_INFINITY))
    job = json.loads(sys.stdin.read())

    class Template:  # what render_prompt reads of a tokenizer
        chat_template = job["template"]

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            text, _ = render_jinja_template(conversations=[messages], chat_template=self.chat_template,
                                            add_generation_prompt=add_generation_prompt, **job["tokens"])
            return text[0]

    try:
        render_prompt(Template(), _SAMPLE_PROMPT, job["instruction"])
        print(json.dumps({"error": None}))
    except Exception as err:
        print(json.dumps({"error": str(err)[:1000]}))


def _special_tokens(tokenizer) -> dict:
    """The names a template may read (``bos_token``, ``eos_token``...), as the tokenizer passes them."""
    return {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, (str, list))}


def _refusal(err: Exception) -> ChatTemplateError:
    kind = type(err).__name__
    words = {"SecurityError": "tried something the sandbox forbids", "TemplateSyntaxError": "is not valid Jinja",
             "OverflowError": "computed a number too large", "TemplateError": "raised an error"}
    return ChatTemplateError(f"the chat template {words.get(kind, f'failed ({kind})')}: {' '.join(str(err).split())}")


@contextmanager
def _deadline(seconds: float):
    """Raise ChatTemplateError in this thread once ``seconds`` have passed in Python code run
    here (a trace function, so it works outside the main thread, where signals cannot)."""
    end = time.monotonic() + seconds

    def trace(frame, event, arg):
        if time.monotonic() > end:
            raise TemplateLimitError(f"the chat template took more than {seconds:.0f} s to format one prompt")
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        yield
    finally:
        sys.settrace(previous)
