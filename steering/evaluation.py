"""Did steering work? Baseline and steered answers to neutral prompts with the same seeds:
language shares, steering success, syntax validity, fluency, and a layer-by-alpha sweep."""

from __future__ import annotations

from collections import Counter
from typing import Callable, Sequence

import numpy as np

from .generation import GenerationConfig, generate
from .languages import LANGUAGE_KEYS, check_language
from .prefix import prefixes, tag_success


def repeated_ngram_rate(text: str, n: int = 4) -> float:
    """Share of whitespace-token n-grams that repeat an earlier one: loops of over-steered text
    push it towards 1; ordinary code sits well below."""
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def language_shares(answers) -> dict[str, float]:
    """Fraction of answers per detected language (undetected answers count as 'none')."""
    counts = Counter(a.detection.language or "none" for a in answers)
    total = max(1, len(answers))
    return {lang: counts.get(lang, 0) / total for lang in (*LANGUAGE_KEYS, "none")}


def no_code_block_share(answers) -> float:
    """Share of answers with no fenced code block at all (prose, or code never fenced)."""
    return sum(not a.detection.fenced for a in answers) / max(1, len(answers))


def summarize(answers, target: str) -> dict:
    """Language shares, success (share in ``target``), syntax-valid share, answers with no code
    block, and fluency."""
    shares = language_shares(answers)
    total = max(1, len(answers))
    return {
        "shares": shares,
        "success": shares.get(target, 0.0),
        "syntax_valid": sum(a.detection.parses for a in answers) / total,
        "no_code_block": no_code_block_share(answers),
        "repeated_ngrams": float(np.mean([repeated_ngram_rate(a.detection.code) for a in answers])) if answers else 0.0,
        "n": len(answers),
    }


def evaluate_steering(model, prompts: Sequence[str], steerer, target: str, temperature: float = 1.0,
                      seed: int = 0, max_new_tokens: int = 320, batch_size: int = 32,
                      on_answers: Callable[[int], None] | None = None) -> dict:
    """Baseline and steered generation of the same prompts with the same seeds, summarised."""
    target = check_language(target)
    config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, batch_size=batch_size)
    baseline = generate(model, prompts, config, on_answers=on_answers)
    steered = generate(model, prompts, config, fwd_hooks=steerer.hooks(model), on_answers=on_answers)
    return {
        "target": target,
        "spec": steerer.spec.to_json(),
        "temperature": temperature,
        "seed": seed,
        "baseline": summarize(baseline, target),
        "steered": summarize(steered, target),
        "answers": {"baseline": baseline, "steered": steered},
    }


def side_by_side(model, prompt: str, steerer, config: GenerationConfig, on_token: Callable[[int], None] | None = None):
    """The baseline and the steered answer to one prompt, with the same seed: ``(baseline, steered)``."""
    baseline = generate(model, prompt, config, on_token=on_token)[0]
    steered = generate(model, prompt, config, fwd_hooks=steerer.hooks(model), on_token=on_token)[0]
    return baseline, steered


def layer_alpha_sweep(model, prompts: Sequence[str], make_steerer: Callable[[int, float], object], layers: Sequence[int],
                      alphas: Sequence[float], target: str, progress: Callable[[int], None] | None = None,
                      ) -> tuple[np.ndarray, list]:
    """``(grid, batches)``: steering success for each single layer and alpha, ``[len(layers),
    len(alphas)]``, and the prompt prefixes it was read from (for more readings).

    Success is the target's tag after a forced fence (``prefix.tag_success``); the prompts run
    once, and each cell costs two forward tokens per prompt.
    """
    target = check_language(target)
    batches = prefixes(model, prompts)
    grid = np.zeros((len(layers), len(alphas)))
    for i, layer in enumerate(layers):
        for j, alpha in enumerate(alphas):
            grid[i, j] = tag_success(batches, target, make_steerer(layer, alpha))
            if progress is not None:
                progress(1)
    return grid, batches


def best_layers(grid: np.ndarray, layers: Sequence[int], alphas: Sequence[float], n: int = 2) -> tuple[list[int], list[float]]:
    """The ``n`` layers with the highest success (ties: the higher mean success over alphas, i.e.
    the more robust layer, then the lower layer), each with the smallest alpha reaching its best."""
    best, mean = grid.max(axis=1), grid.mean(axis=1)
    chosen = sorted(sorted(range(len(layers)), key=lambda i: (-best[i], -mean[i], i))[:n])
    picked_alphas = [float(alphas[int(np.flatnonzero(grid[i] >= best[i] - 1e-9)[0])]) for i in chosen]
    return [int(layers[i]) for i in chosen], picked_alphas


def scale_sweep(batches, make_steerer: Callable[[list[int], list[float]], object], layers: Sequence[int],
                alphas: Sequence[float], target: str, scales: Sequence[float] = (0.5, 0.75, 1.0)) -> dict[float, float]:
    """Success of steering ``layers`` together, each at its alpha times a common scale (layers
    that each steer well alone over-steer together at full strength); ``batches`` are the
    sweep's prompt prefixes."""
    return {float(c): tag_success(batches, target, make_steerer(list(layers), [a * c for a in alphas])) for c in scales}
