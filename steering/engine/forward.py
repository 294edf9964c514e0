"""The model's forward pass on a batch of prompts: each formatted in the model's own chat format,
tokenised and left-padded with the start every row shares in the first columns, run once for all
rows (``prompt_cache``), then continued from its KV cache. Generation, activation reading and the
prompt prefixes all run the model through here."""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Sequence

import torch

from .chat import render_prompt
from .hooks import hooks_attached


def format_prompt(tokenizer, prompt: str, instruction: str | None = None) -> str:
    """The prompt in the model's own format: its chat template when it has one (under
    ``chat.render_prompt``'s limits), else the prompt after the BOS token."""
    if not prompt or not prompt.strip():
        raise ValueError("the prompt is empty")
    if getattr(tokenizer, "chat_template", None):
        return render_prompt(tokenizer, prompt, instruction)
    bos = tokenizer.bos_token or ""
    return f"{bos}{prompt}\n" + (f"{instruction}\n" if instruction else "")


def encode_prompts(model, prompts: Sequence[str], continuations: str | Sequence[str] = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask for the formatted prompts: the start every row shares (a chat
    template's system turn) in the first columns, then each row's rest, padded on its left, so
    that the last column is every row's last token (``prompt_cache`` runs the shared start once).

    ``continuations`` (one text for all prompts, or one per prompt) is tokenised on its own and
    appended after each prompt's generation prompt: the start of an answer, teacher-forced.
    """
    tok = model.tokenizer
    if isinstance(continuations, str):
        continuations = [continuations] * len(prompts)
    if len(continuations) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    rows = [
        tok(format_prompt(tok, p, model.instruction), add_special_tokens=False)["input_ids"]
        + (tok(c, add_special_tokens=False)["input_ids"] if c else [])
        for p, c in zip(prompts, continuations)
    ]
    width = max(len(r) for r in rows)
    if width >= model.facts.n_ctx:
        raise ValueError(f"a prompt is {width} tokens long; this model's context is {model.facts.n_ctx}")
    shared = _shared_start(rows)
    ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    ids[:, :shared], mask[:, :shared] = torch.tensor(rows[0][:shared]), 1
    for i, row in enumerate(rows):
        ids[i, width - len(row) + shared:] = torch.tensor(row[shared:])
        mask[i, width - len(row) + shared:] = 1
    return ids.to(model.device), mask.to(model.device)


def _shared_start(rows: list[list[int]]) -> int:
    """How many first tokens every row has in common, leaving each row at least its last two
    (the prompt pass stops before the last token, and a shared start of one row is no start)."""
    limit = min(len(r) for r in rows) - 2 if len(rows) > 1 else 0
    n = 0
    while n < limit and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


def shared_columns(ids: torch.Tensor, mask: torch.Tensor) -> int:
    """The first columns that are real and the same in every row (``encode_prompts``' shared start)."""
    same = (mask == 1).all(0) & (ids == ids[:1]).all(0)
    return int(same.long().cumprod(0).sum()) if len(ids) > 1 else 0


def shared_start_cache(model, ids: torch.Tensor, mask: torch.Tensor, limit: int | None = None):
    """``(cache, n)``: the KV cache of the first ``n`` columns of ``ids`` (as ``encode_prompts``
    lays them out; at most ``limit``), the start every row shares, run once and copied to every
    row; ``(None, 0)`` where there is none, or while hooks are attached (a hook may steer or read
    every row)."""
    shared = min(shared_columns(ids, mask), ids.shape[1] if limit is None else limit)
    if shared < 2 or shared == ids.shape[1] or hooks_attached():
        return None, 0
    _, cache = forward(model, ids[:1, :shared], mask[:1, :shared], positions_of(mask)[:1, :shared])
    cache.batch_select_indices(torch.zeros(len(ids), dtype=torch.long, device=ids.device))
    return cache, shared


def prompt_cache(model, ids: torch.Tensor, mask: torch.Tensor):
    """The KV cache of the rows ``ids``, their shared start run once (``shared_start_cache``)."""
    cache, shared = shared_start_cache(model, ids, mask)
    return forward(model, ids[:, shared:], mask, positions_of(mask)[:, shared:], cache)[1]


def positions_of(mask: torch.Tensor) -> torch.Tensor:
    """Position ids of padded rows: 0 at each row's first real token, padding skipped."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


@lru_cache(maxsize=None)
def _keeps_logits(model_type: type) -> bool:
    return "logits_to_keep" in inspect.signature(model_type.forward).parameters


def forward(model, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache=None, keep: int | None = 1):
    """One pass of the Hugging Face model: ``(logits, cache)``. ``keep``: 1 gives the last
    position's logits (``[batch, vocab]``, not computing the others); None every position's; N
    at least the last N positions' (all where the model cannot skip them). ``cache`` is a KV
    cache from an earlier call (``ids`` then continue it) or None."""
    hf = model.hf_model
    # Positions as indices, not a count: the kept hidden states are then a copy that torch
    # multiplies as one product (a strided slice, in bfloat16 on a CPU, copies the unembedding per row).
    width, kwargs = ids.shape[1], {}
    if keep and _keeps_logits(type(hf)):
        kwargs["logits_to_keep"] = torch.arange(max(width - keep, 0), width, device=ids.device)
    out = hf(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True, **kwargs)
    return (out.logits[:, -1] if keep == 1 else out.logits), out.past_key_values
