"""Gradient refinement of G-ACT probes through the frozen model.

With the steering injection live, the probe's parameters get gradient steps that raise the
log-probability of the target language's opening (its fence tag, then its typical first line),
plus a proximal term that keeps them near the supervised solution. ``online=True`` takes one
step per prompt, in order, as the paper describes; otherwise steps are on random mini-batches.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Callable, Sequence

import torch

from .generation import encode_prompts
from .hooks import thread_hooks
from .languages import check_language

# What a target-language answer opens with after its fence line: the corpus's typical first line.
TYPICAL_OPENING = {"python": "def", "cpp": "#include", "java": "public class", "julia": "function"}


def opening_text(language: str) -> str:
    language = check_language(language)
    return f"```{language}\n{TYPICAL_OPENING[language]}"


def opening_loss(model, steerer, prompts: Sequence[str], target: str) -> torch.Tensor:
    """Mean negative log-probability of ``target``'s opening after each prompt, steered."""
    text = opening_text(target)
    ids, mask = encode_prompts(model, prompts, text)
    n_open = len(model.tokenizer(text, add_special_tokens=False)["input_ids"])
    first = ids.shape[1] - n_open - 1  # the last prompt token: it predicts the opening's first token
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    # Steer from the last prompt token on: the positions that generation would steer.
    with thread_hooks(model.bridge, steerer.hooks(model, start=first)):
        logits = model.bridge(ids, attention_mask=mask, position_ids=positions)
    logprobs = torch.log_softmax(logits[:, first:-1].float(), dim=-1)
    return -logprobs.gather(-1, ids[:, first + 1 :, None]).mean()


def refine_probe(model, steerer, prompts: Sequence[str], target: str, steps: int = 30, lr: float = 0.01,
                 prox: float = 0.1, batch_size: int = 8, online: bool = False, seed: int = 0,
                 progress: Callable[[int], None] | None = None):
    """Return ``(refined_probe, losses)``; ``steerer`` must use the ``gact`` method.

    ``steps`` counts optimiser steps (batch mode) or passes over ``prompts`` (online mode).
    """
    if steerer.spec.method != "gact":
        raise ValueError(f"only G-ACT probes are refined, not {steerer.spec.method!r}")
    if not prompts:
        raise ValueError("no prompts to refine on")
    probe = steerer.probe
    coef = probe.coef_.clone().requires_grad_(True)
    intercept = probe.intercept_.clone().requires_grad_(True)
    live = replace(steerer, probe_params=(coef, intercept))
    optimizer = torch.optim.Adam([coef, intercept], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    prompts = list(prompts)
    if online:
        batches = [[p] for _ in range(steps) for p in prompts]
    else:
        batches = [[prompts[i] for i in torch.randperm(len(prompts), generator=generator)[:batch_size].tolist()]
                   for _ in range(steps)]
    losses = []
    with torch.enable_grad():
        for batch in batches:
            loss = opening_loss(model, live, batch, target)
            anchor = (coef - probe.coef_).pow(2).sum() + (intercept - probe.intercept_).pow(2).sum()
            total = loss + prox * anchor
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            losses.append(loss.item())
            if progress is not None:
                progress(1)
    refined = copy.copy(probe)
    refined.coef_ = coef.detach()
    refined.intercept_ = intercept.detach()
    return refined, losses
