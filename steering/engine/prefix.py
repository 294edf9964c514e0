"""Prompts run once, continued many times.

Steering acts from the last prompt token on (``SteeringSpec.positions="generated"``), so everything
before it is the same in every steered or unsteered run: a sweep cell, a refinement step, a
steered and a plain reading. ``PromptPrefix`` runs the prompts up to (not including) their last
token once and keeps the KV cache; each ``continue_with`` then runs only the last prompt token and
a forced continuation (e.g. the opening fence), on a copy of that cache, with whatever hooks are
attached. A sweep cell therefore costs two forward tokens per prompt instead of a prefill and a
few generated tokens.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch

from ..code.languages import FENCE_ALIASES, check_language
from .forward import encode_prompts, forward, positions_of, prompt_cache
from .hooks import thread_hooks


class PromptPrefix:
    """The KV cache of ``prompts`` (formatted and laid out as ``generate`` does) without their
    last token, which ``continue_with`` runs together with the forced text."""

    def __init__(self, model, prompts: Sequence[str]):
        if not prompts:
            raise ValueError("no prompts to run")
        self.model = model
        ids, mask = encode_prompts(model, list(prompts))
        self.last_ids, self.mask = ids[:, -1:], mask
        with torch.no_grad():
            self.cache = prompt_cache(model, ids[:, :-1], mask[:, :-1])

    def __len__(self) -> int:
        return self.last_ids.shape[0]

    def continue_with(self, text: str | Sequence[str] = "", rows: Sequence[int] | None = None) -> torch.Tensor:
        """Logits ``[rows, 1 + tokens of text, vocab]`` from the last prompt token on, for the
        prompts ``rows`` (default: all), with the hooks attached at the time. ``text`` is one
        text for every row, or one per row (shorter ones padded at the end: their logits past
        their own tokens mean nothing). Gradients flow when enabled (the cached prefix is a
        constant)."""
        tok = self.model.tokenizer
        n = len(self) if rows is None else len(rows)
        texts = [text] * n if isinstance(text, str) else list(text)
        if len(texts) != n:
            raise ValueError(f"{len(texts)} texts for {n} rows")
        forced = [tok(t, add_special_tokens=False)["input_ids"] if t else [] for t in texts]
        return self._forced(forced, rows)

    def _forced(self, forced: list[list[int]], rows: Sequence[int] | None) -> torch.Tensor:
        cache = copy.deepcopy(self.cache)
        mask, last = self.mask, self.last_ids
        if rows is not None:
            index = torch.as_tensor(list(rows), dtype=torch.long, device=mask.device)
            cache.batch_select_indices(index)
            mask, last = mask[index], last[index]
        width = max(map(len, forced))
        pad = self.model.tokenizer.pad_token_id
        ids = torch.tensor([row + [pad] * (width - len(row)) for row in forced], dtype=torch.long, device=last.device)
        real = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in forced], dtype=mask.dtype,
                            device=mask.device)
        tail = torch.cat([last, ids.reshape(len(last), width)], 1)
        full_mask = torch.cat([mask, real.reshape(len(last), width)], 1)  # ``mask`` covers the last prompt token
        logits, _ = forward(self.model, tail, full_mask, positions_of(full_mask)[:, -tail.shape[1]:], cache, keep=None)
        return logits

    def logprob(self, continuations: Sequence[str], rows: Sequence[int] | None = None, chunk: int = 16) -> np.ndarray:
        """Per row, the mean log-probability per token of ``continuations[i]`` as the model's
        answer to prompt ``rows[i]`` (NaN for an empty one), with the hooks attached at the time.
        The prompts ran once: a sweep scores every candidate's code against the same prompts.
        Rows go ``chunk`` at a time, so that the logits of long continuations stay small."""
        tok = self.model.tokenizer
        rows = list(range(len(self))) if rows is None else list(rows)
        if len(continuations) != len(rows):
            raise ValueError(f"{len(continuations)} continuations for {len(rows)} rows")
        forced = [tok(c, add_special_tokens=False)["input_ids"] if c else [] for c in continuations]
        out = np.full(len(rows), np.nan)
        scored = [i for i, ids in enumerate(forced) if ids]
        for start in range(0, len(scored), chunk):
            part = scored[start : start + chunk]
            with torch.no_grad():
                logits = self._forced([forced[i] for i in part], [rows[i] for i in part])
            for row, i in enumerate(part):  # position j's logits predict token j of the continuation
                targets = torch.tensor(forced[i], device=logits.device)[:, None]
                out[i] = float(torch.log_softmax(logits[row, : len(forced[i])].float(), -1).gather(-1, targets).mean())
        return out


def tag_tokens(tokenizer, language: str) -> set[int]:
    """The tokens that start ``language``'s fence tag right after an opening fence, for each way
    of writing the tag that the tokenizer spells with one token of its own (``cpp``, ``c++``...)."""
    language = check_language(language)
    fence = tokenizer("```", add_special_tokens=False)["input_ids"]
    tokens = set()
    for alias, key in FENCE_ALIASES.items():
        if key != language:
            continue
        tagged = tokenizer(f"```{alias}\n", add_special_tokens=False)["input_ids"]
        if tagged[: len(fence)] == fence and len(tagged) > len(fence):
            first = tagged[len(fence)]
            if tokenizer.decode([first]).strip() == alias or alias == language:
                tokens.add(first)
    if not tokens:
        raise ValueError(f"the tokenizer does not write a {language!r} tag after a fence")
    return tokens


def prefixes(model, prompts: Sequence[str], batch_size: int = 64) -> list[PromptPrefix]:
    """The prefixes of ``prompts`` in batches of ``batch_size``."""
    prompts = list(prompts)
    return [PromptPrefix(model, prompts[i : i + batch_size]) for i in range(0, len(prompts), batch_size)]


def tag_success(batches: Sequence[PromptPrefix], target: str, steerer=None, rows: Sequence[int] | None = None) -> float:
    """Share of the prompts whose answer, forced to open a code block, would name ``target``
    (greedy: the most likely token after the fence starts the target's tag), steered by
    ``steerer`` (None: not steered); ``rows`` picks prompts by their index over all batches."""
    if steerer is not None and steerer.spec.positions != "generated":
        raise ValueError("a prompt prefix is shared by all readings: only positions='generated' can be steered")
    if not batches:
        raise ValueError("no prompts to read")
    model = batches[0].model
    hooks = steerer.hooks(model, start=0) if steerer is not None else []
    wanted = torch.tensor(sorted(tag_tokens(model.tokenizer, target)))
    hits = total = offset = 0
    for prefix in batches:
        local = None if rows is None else [r - offset for r in rows if offset <= r < offset + len(prefix)]
        offset += len(prefix)
        if local == []:
            continue
        with torch.no_grad(), thread_hooks(model, hooks):
            logits = prefix.continue_with("```", local)
        hits += int(torch.isin(logits[:, -1].argmax(-1).cpu(), wanted).sum())
        total += len(logits)
    if not total:
        raise ValueError("no prompts to read: the rows are outside the batches")
    return hits / total
