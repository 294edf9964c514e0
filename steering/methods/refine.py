"""Gradient refinement of G-ACT through the frozen model.

With the steering injection live, gradient steps raise the log-probability of the target
language's fence tag, keep the code after it close to what the unsteered model would write (a
KL fluency term), and stay near the supervised solution (a proximal term). What moves: the
probe, a per-layer gain on alpha, and optionally per-cluster vector offsets. Batch mode refines
once on the training prompts; ``online_answers`` refines per prompt during generation, as the
paper describes, and restores the state after each answer. The prompts run once
(``PromptPrefix``): each step runs only the last prompt token and the opening, forward and
backward.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Callable, Sequence

import torch

from ..code.languages import check_language
from ..engine.generation import GenerationConfig, generate
from ..engine.hooks import thread_hooks
from ..engine.prefix import PromptPrefix
from .steer import GactSteerer

# What a target-language answer opens with after its fence line: the corpus's typical first line.
TYPICAL_OPENING = {"python": "def", "cpp": "#include", "java": "public class", "julia": "function"}


def opening_text(language: str) -> str:
    language = check_language(language)
    return f"```{language}\n{TYPICAL_OPENING[language]}"


def opening_loss(steerer, prefix: PromptPrefix, target: str, rows: Sequence[int] | None = None,
                 fluency: float = 0.0) -> torch.Tensor:
    """Mean negative log-probability of ``target``'s fence and tag after the prompts ``rows`` of
    ``prefix``, steered from the last prompt token on (the positions generation steers); plus,
    with ``fluency > 0``, ``fluency`` times the KL divergence from the unsteered next-token
    distribution to the steered one at the positions after the tag (inside the code), so that
    steering buys the language and not a different way of writing."""
    model = prefix.model
    text = opening_text(target)
    tok = model.tokenizer
    opening = torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
    n_tag = len(tok(f"```{check_language(target)}", add_special_tokens=False)["input_ids"])
    with thread_hooks(model, steerer.hooks(model, start=0)):
        logits = prefix.continue_with(text, rows)
    # Position t of the tail (the last prompt token, then the opening) predicts opening token t.
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    picked = logprobs[:, :-1].gather(-1, opening.to(logprobs.device).expand(len(logits), -1)[..., None])
    loss = -picked[:, :n_tag].mean()
    if fluency > 0:
        with torch.no_grad():
            plain = torch.log_softmax(prefix.continue_with(text, rows)[:, n_tag:].float(), dim=-1)
        kl = torch.nn.functional.kl_div(logprobs[:, n_tag:], plain, log_target=True, reduction="none").sum(-1).mean()
        loss = loss + fluency * kl
    return loss


def refine_steering(steerer, prefix: PromptPrefix, target: str, steps: int = 30, lr: float = 0.01,
                    prox: float = 0.1, fluency: float = 1.0, gains: bool = True, offsets: bool = False,
                    batch_size: int = 8, online: bool = False, seed: int = 0,
                    progress: Callable[[int], None] | None = None):
    """Return ``(refined_steerer, losses)`` after refining on the prompts of ``prefix``;
    ``steerer`` must use the ``gact`` method and is left unchanged.

    Learned: the probe's parameters, and with ``gains`` a per-layer gain ``exp(s_l)`` on alpha
    (the probe alone can only re-mix nearly parallel cluster vectors: it cannot make the
    injection stronger or weaker), with ``offsets`` a per-cluster offset added to each steering
    vector. ``prox`` pulls every parameter back to where it started (offsets relative to the
    vectors' size). ``steps`` counts optimiser steps (batch mode) or passes over the prompts
    (``online``: one prompt per step, in order).
    """
    if not isinstance(steerer, GactSteerer):
        raise ValueError(f"only G-ACT is refined, not {steerer.spec.method!r}")
    probe = steerer.probe
    coef0, intercept0 = steerer.probe_params or (probe.coef_, probe.intercept_)
    coef = coef0.detach().clone().requires_grad_(True)
    intercept = intercept0.detach().clone().requires_grad_(True)
    n_layers, k, d = steerer.vectors.shape
    start_gains = steerer.log_gains if steerer.log_gains is not None else torch.zeros(n_layers)
    start_offsets = steerer.offsets if steerer.offsets is not None else torch.zeros(n_layers, k, d)
    params = [coef, intercept]
    log_gains = start_gains.detach().clone().requires_grad_(gains)
    shifts = start_offsets.detach().clone().requires_grad_(offsets)
    params += [p for p in (log_gains, shifts) if p.requires_grad]
    live = replace(steerer, probe_params=(coef, intercept), log_gains=log_gains, offsets=shifts)
    scale = steerer.vectors.pow(2).sum(-1).mean().clamp_min(1e-12)
    optimizer = torch.optim.Adam(params, lr=lr)
    generator = torch.Generator().manual_seed(seed)
    n = len(prefix)
    if online:
        batches = [[i] for _ in range(steps) for i in range(n)]
    else:
        batches = [torch.randperm(n, generator=generator)[:batch_size].tolist() for _ in range(steps)]
    losses = []
    with torch.enable_grad():
        for rows in batches:
            loss = opening_loss(live, prefix, target, rows, fluency)
            anchor = ((coef - coef0).pow(2).sum() + (intercept - intercept0).pow(2).sum()
                      + (log_gains - start_gains).pow(2).sum() + (shifts - start_offsets).pow(2).sum() / scale)
            optimizer.zero_grad()
            (loss + prox * anchor).backward()
            optimizer.step()
            losses.append(loss.item())
            if progress is not None:
                progress(1)
    refined_probe = copy.copy(probe)
    refined_probe.coef_, refined_probe.intercept_ = coef.detach(), intercept.detach()
    refined = replace(steerer, probe=refined_probe, probe_params=None, log_gains=log_gains.detach() if gains else steerer.log_gains,
                      offsets=shifts.detach() if offsets else steerer.offsets)
    return refined, losses


def online_answers(steerer, model, prompts: Sequence[str], target: str, config: GenerationConfig, steps: int = 3,
                   on_answers: Callable[[int], None] | None = None, **refine_kwargs) -> list:
    """G-ACT refined online, as the paper describes: for each prompt, after its prefill, ``steps``
    refinement steps on that prompt alone, then its answer with the refined state; the next
    prompt starts again from ``steerer`` (nothing carries over). Prompt ``i`` samples with seed
    ``config.seed + i``, as in a batched call. One prompt at a time: slow on a large model."""
    answers = []
    for i, prompt in enumerate(prompts):
        prefix = PromptPrefix(model, [prompt])
        live, _ = refine_steering(steerer, prefix, target, steps=steps, online=True, **refine_kwargs)
        answers += generate(model, [prompt], replace(config, seed=config.seed + i), steerer=live)
        if on_answers is not None:
            on_answers(1)
    return answers
