"""Answer coding prompts with a loaded model: greedy or seeded sampling, batched, KV-cached,
stopping at the end of the first code block.

The loop is ours rather than ``TransformerBridge.generate`` because the bridge keeps its KV cache
on the shared model object and samples from torch's global random state; here every call owns its
cache and its random generators, so concurrent calls (steered and not) cannot disturb each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

from .detect import Detection, detect_language
from .hooks import HookFn, thread_hooks


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 320
    temperature: float = 0.0  # 0 means greedy
    top_k: int | None = None
    seed: int = 0  # prompt i of a call samples with seed + i, whatever the batch size
    batch_size: int = 16
    stop_at_fence: bool = True  # stop once the first code block is closed

    def __post_init__(self):
        if not (isinstance(self.max_new_tokens, int) and self.max_new_tokens > 0):
            raise ValueError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Generation:
    prompt: str
    text: str  # the answer, cut after its first closed code block
    n_tokens: int
    seed: int
    detection: Detection = field(init=False)

    def __post_init__(self):
        self.detection = detect_language(self.text)


def format_prompt(tokenizer, prompt: str) -> str:
    """The prompt in the model's own format: its chat template when it has one."""
    if not prompt or not prompt.strip():
        raise ValueError("the prompt is empty")
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    bos = tokenizer.bos_token or ""
    return f"{bos}{prompt}\n"


def encode_prompts(model, prompts: Sequence[str], continuations: str | Sequence[str] = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded token ids and attention mask for the formatted prompts.

    ``continuations`` (one text for all prompts, or one per prompt) is tokenised on its own and
    appended after each prompt's generation prompt: the start of an answer, teacher-forced.
    """
    tok = model.tokenizer
    if isinstance(continuations, str):
        continuations = [continuations] * len(prompts)
    if len(continuations) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    rows = [
        tok(format_prompt(tok, p), add_special_tokens=False)["input_ids"]
        + (tok(c, add_special_tokens=False)["input_ids"] if c else [])
        for p, c in zip(prompts, continuations)
    ]
    width = max(len(r) for r in rows)
    if width >= model.facts.n_ctx:
        raise ValueError(f"a prompt is {width} tokens long; this model's context is {model.facts.n_ctx}")
    ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row)
        mask[i, width - len(row):] = 1
    return ids.to(model.device), mask.to(model.device)


def _closing_fence(text: str) -> int:
    """Index of the fence that closes the first code block, or -1."""
    start = text.find("```")
    line_end = text.find("\n", start) if start >= 0 else -1
    return text.find("```", line_end + 1) if line_end >= 0 else -1


def closes_code_block(text: str) -> bool:
    """True once ``text`` holds an opening fence and a later closing one."""
    return _closing_fence(text) >= 0


def cut_after_block(text: str) -> str:
    close = _closing_fence(text)
    return (text[: close + 3] if close >= 0 else text).strip()


def _sample(logits: torch.Tensor, config: GenerationConfig, generators: list[torch.Generator]) -> torch.Tensor:
    if config.greedy:
        return logits.argmax(-1)
    logits = logits.float() / config.temperature
    if config.top_k:
        kth = torch.topk(logits, min(config.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1).cpu()
    picks = [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(generators)]
    return torch.cat(picks).to(logits.device)


@torch.no_grad()
def _generate_batch(model, prompts, seeds, config, on_token) -> list[Generation]:
    bridge, tok = model.bridge, model.tokenizer
    ids, mask = encode_prompts(model, prompts)
    budget = min(config.max_new_tokens, model.facts.n_ctx - ids.shape[1])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    stop_ids = {t for t in (tok.eos_token_id, getattr(tok, "pad_token_id", None)) if t is not None}
    out: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    logits, cache = bridge(ids, return_type="logits_and_cache", attention_mask=mask, position_ids=positions)
    for _step in range(budget):
        next_ids = _sample(logits[:, -1, :], config, generators)
        for i, token in enumerate(next_ids.tolist()):
            if done[i]:
                continue
            if token in stop_ids:
                done[i] = True
                continue
            out[i].append(token)
            if config.stop_at_fence and "`" in tok.decode([token]):
                done[i] = closes_code_block(tok.decode(out[i], skip_special_tokens=True))
        if on_token is not None:
            on_token(sum(len(o) for o in out))
        if all(done):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        positions = positions[:, -1:] + 1
        logits, cache = bridge(
            next_ids[:, None], return_type="logits_and_cache", attention_mask=mask,
            position_ids=positions, past_key_values=cache,
        )
    return [
        Generation(prompt, cut_after_block(tok.decode(tokens, skip_special_tokens=True)), len(tokens), seed)
        for prompt, tokens, seed in zip(prompts, out, seeds)
    ]


def generate(
    model,
    prompts: str | Sequence[str],
    config: GenerationConfig | None = None,
    fwd_hooks: Iterable[tuple[str, HookFn]] = (),
    on_token: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> list[Generation]:
    """Answer each prompt; ``fwd_hooks`` (e.g. a steering injection) apply to this call only.

    For progress displays, ``on_token`` is called after every decoding step with the number of
    tokens generated so far in the current batch, and ``on_batch`` after every batch with the
    number of answers it finished.
    """
    config = config or GenerationConfig()
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    for prompt in prompts:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("every prompt must be a non-empty string")
    results: list[Generation] = []
    with thread_hooks(model.bridge, list(fwd_hooks)):
        for start in range(0, len(prompts), config.batch_size):
            chunk = prompts[start : start + config.batch_size]
            seeds = [config.seed + start + i for i in range(len(chunk))]
            results.extend(_generate_batch(model, chunk, seeds, config, on_token))
            if on_batch is not None:
                on_batch(len(chunk))
    return results
