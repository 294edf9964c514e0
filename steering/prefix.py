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

import torch

from .generation import encode_prompts, forward, positions_of
from .hooks import thread_hooks
from .languages import FENCE_ALIASES, check_language


class PromptPrefix:
    """The KV cache of ``prompts`` (formatted and left-padded as ``generate`` does) without their
    last token, which ``continue_with`` runs together with the forced text."""

    def __init__(self, model, prompts: Sequence[str]):
        if not prompts:
            raise ValueError("no prompts to run")
        self.model = model
        ids, mask = encode_prompts(model, list(prompts))
        self.last_ids, self.mask = ids[:, -1:], mask
        with torch.no_grad():
            _, self.cache = forward(model, ids[:, :-1], mask[:, :-1], positions_of(mask)[:, :-1])

    def __len__(self) -> int:
        return self.last_ids.shape[0]

    def continue_with(self, text: str = "", rows: Sequence[int] | None = None) -> torch.Tensor:
        """Logits ``[rows, 1 + tokens of text, vocab]`` from the last prompt token on, for the
        prompts ``rows`` (default: all), with the hooks attached at the time. Gradients flow
        when enabled (the cached prefix is a constant)."""
        tok = self.model.tokenizer
        cache = copy.deepcopy(self.cache)
        mask, last = self.mask, self.last_ids
        if rows is not None:
            index = torch.as_tensor(list(rows), dtype=torch.long, device=mask.device)
            cache.batch_select_indices(index)
            mask, last = mask[index], last[index]
        forced = torch.tensor(tok(text, add_special_tokens=False)["input_ids"] if text else [], dtype=torch.long,
                              device=last.device)
        tail = torch.cat([last, forced.expand(len(last), -1)], 1)
        full_mask = torch.cat([mask, torch.ones_like(tail[:, 1:])], 1)
        logits, _ = forward(self.model, tail, full_mask, positions_of(full_mask)[:, -tail.shape[1]:], cache, keep=None)
        return logits


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
