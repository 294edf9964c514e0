"""Gradient refinement of G-ACT probes through the frozen model.

With the steering injection live, the probe's parameters get gradient steps that raise the
log-probability of the target language's opening (its fence tag, then its typical first line),
plus a proximal term that keeps them near the supervised solution. ``online=True`` takes one
step per prompt, in order, as the paper describes; otherwise steps are on random mini-batches.
The prompts run once (``PromptPrefix``): each step runs only the last prompt token and the
opening, forward and backward.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Callable, Sequence

import torch

from .hooks import thread_hooks
from .languages import check_language
from .prefix import PromptPrefix

# What a target-language answer opens with after its fence line: the corpus's typical first line.
TYPICAL_OPENING = {"python": "def", "cpp": "#include", "java": "public class", "julia": "function"}


def opening_text(language: str) -> str:
    language = check_language(language)
    return f"```{language}\n{TYPICAL_OPENING[language]}"


def opening_loss(steerer, prefix: PromptPrefix, target: str, rows: Sequence[int] | None = None) -> torch.Tensor:
    """Mean negative log-probability of ``target``'s opening after the prompts ``rows`` of
    ``prefix``, steered from the last prompt token on (the positions generation steers)."""
    model = prefix.model
    text = opening_text(target)
    opening = torch.tensor(model.tokenizer(text, add_special_tokens=False)["input_ids"])
    with thread_hooks(model, steerer.hooks(model, start=0)):
        logits = prefix.continue_with(text, rows)
    # Position t of the tail (the last prompt token, then the opening) predicts opening token t.
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return -logprobs.gather(-1, opening.to(logprobs.device).expand(len(logits), -1)[..., None]).mean()


def refine_probe(steerer, prefix: PromptPrefix, target: str, steps: int = 30, lr: float = 0.01,
                 prox: float = 0.1, batch_size: int = 8, online: bool = False, seed: int = 0,
                 progress: Callable[[int], None] | None = None):
    """Return ``(refined_probe, losses)`` after refining on the prompts of ``prefix``;
    ``steerer`` must use the ``gact`` method.

    ``steps`` counts optimiser steps (batch mode) or passes over the prompts (online mode).
    """
    if steerer.spec.method != "gact":
        raise ValueError(f"only G-ACT probes are refined, not {steerer.spec.method!r}")
    probe = steerer.probe
    coef = probe.coef_.clone().requires_grad_(True)
    intercept = probe.intercept_.clone().requires_grad_(True)
    live = replace(steerer, probe_params=(coef, intercept))
    optimizer = torch.optim.Adam([coef, intercept], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    n = len(prefix)
    if online:
        batches = [[i] for _ in range(steps) for i in range(n)]
    else:
        batches = [torch.randperm(n, generator=generator)[:batch_size].tolist() for _ in range(steps)]
    losses = []
    with torch.enable_grad():
        for rows in batches:
            loss = opening_loss(live, prefix, target, rows)
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
