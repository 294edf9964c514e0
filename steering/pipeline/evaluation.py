"""Did steering work? Baseline and steered answers to the same prompts with the same seeds:
the honest success metric (fenced code in the target language that parses, and compiles where a
toolchain is installed), answers with no code block, fluency, and a layer-by-alpha sweep."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from ..code.languages import LANGUAGE_KEYS, check_language
from ..code.toolchains import compile_all, toolchain
from ..core.stats import rate_interval
from ..engine.generation import GenerationConfig, generate
from ..engine.prefix import PromptPrefix, prefixes, tag_success
from ..methods.steer import MeanDiffSteerer


def repeated_ngram_rate(tokens: Sequence, n: int = 4) -> float:
    """Share of token n-grams that repeat an earlier one: loops of over-steered text (``size``
    ``size`` ``size``..., which whitespace words miss) push it towards 1; ordinary code sits well
    below. ``tokens`` are the tokenizer's ids (or any sequence)."""
    tokens = list(tokens)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


VERDICTS = (*LANGUAGE_KEYS, "other", "no_code_block")
def _shares(labels: list[str], keys: Sequence[str]) -> dict[str, float]:
    counts = Counter(labels)
    return {key: counts.get(key, 0) / max(1, len(labels)) for key in keys}


def language_shares(answers) -> dict[str, float]:
    """Fraction of answers per detected language, fenced or not ('none': undetected), as the
    bias stage reads the fence tag the model chose."""
    return _shares([a.detection.language or "none" for a in answers], (*LANGUAGE_KEYS, "none"))


def verdict_shares(answers) -> dict[str, float]:
    """Fraction of answers per verdict (``Detection.verdict``): a language only for fenced code
    that is clearly in it and parses."""
    return _shares([a.detection.verdict for a in answers], VERDICTS)


def no_code_block_share(answers) -> float:
    """Share of answers with no fenced code block at all (prose, or code never fenced)."""
    return sum(not a.detection.fenced for a in answers) / max(1, len(answers))


def answer_scores(answers, target: str, tokenizer=None, max_new_tokens: int | None = None) -> dict[str, list]:
    """Each answer's measures, as ``EVAL_MEASURES`` names them (NaN where a measure does not
    count: ``compiles`` of an answer without fenced target code, or where no toolchain exists).

    ``fenced_target``: a fenced block clearly in ``target`` (tag, or a clear parse); ``success``:
    that block also parses; ``compiles``: its code compiles (of the fenced-target answers);
    ``compiling``: fenced target code that compiles (of all answers); ``no_code_block``;
    ``cut_off``: the answer reached ``max_new_tokens``; ``repeated_ngrams``: token 4-grams
    (``tokenizer``'s ids; characters without one)."""
    target = check_language(target)
    fenced = [a.detection.fenced and a.detection.clear and a.detection.language == target for a in answers]
    compiled = iter(compile_all([a.detection.code for a, f in zip(answers, fenced) if f], target))
    compiles = [next(compiled) if f else None for f in fenced]
    has_toolchain = toolchain(target) is not None
    encode = (lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]) if tokenizer is not None else list
    nan = float("nan")
    return {
        "fenced_target": [float(f) for f in fenced],
        "success": [float(a.detection.verdict == target) for a in answers],
        "compiles": [nan if c is None else float(c) for c in compiles],
        "compiling": [float(bool(c)) if has_toolchain else nan for c in compiles],
        "no_code_block": [float(not a.detection.fenced) for a in answers],
        "cut_off": [float(a.n_tokens >= max_new_tokens) if max_new_tokens else nan for a in answers],
        "repeated_ngrams": [repeated_ngram_rate(encode(a.detection.code)) for a in answers],
    }


def summarize(answers, target: str, tokenizer=None, max_new_tokens: int | None = None,
              tasks: Sequence[str] | None = None) -> dict:
    """The honest success metric and what explains it: each ``answer_scores`` measure as a rate
    (None where nothing counts), its bootstrap 95% interval over ``tasks`` (``ci``; each answer
    its own task when not given), the verdict shares, and the per-answer ``scores``."""
    target = check_language(target)
    scores = answer_scores(answers, target, tokenizer, max_new_tokens)
    tasks = list(tasks) if tasks is not None else [str(i) for i in range(len(answers))]
    intervals = {k: rate_interval(v, tasks) for k, v in scores.items()} if answers else {}
    return {
        "shares": verdict_shares(answers),
        **{k: intervals[k][0] if answers else None for k in scores},
        "ci": {k: list(intervals[k][1:]) for k in intervals},
        "compiler": toolchain(target),
        "n": len(answers),
        "scores": scores,
        "tasks": tasks,
    }


def compare_answers(baseline, steered, target: str, tokenizer=None, max_new_tokens: int | None = None,
                    tasks: Sequence[str] | None = None, **references) -> dict:
    """Baseline and steered answers (same prompts, same seeds), and any reference answers
    (``asked=``, ``prefilled=``), each summarised."""
    target = check_language(target)
    answers = {"baseline": baseline, **references, "steered": steered}
    return {"target": target, **{c: summarize(a, target, tokenizer, max_new_tokens, tasks) for c, a in answers.items()},
            "answers": answers}


def evaluate_steering(model, prompts: Sequence[str], steerer, target: str, temperature: float = 1.0,
                      seed: int = 0, max_new_tokens: int = 320, batch_size: int = 16,
                      on_answers: Callable[[int], None] | None = None, tasks: Sequence[str] | None = None,
                      on_batch: Callable[[int, list, list], None] | None = None) -> dict:
    """Baseline and steered answers to every prompt, scored (``compare_answers``). Each batch of
    ``batch_size`` prompts decodes its baseline and steered rows together (the per-row steering
    mask), prompt i with seed ``seed + i`` in both; ``on_batch(start, baseline, steered)`` gets a
    batch's answers as soon as it is done, so a page can show them while the rest decode."""
    config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, batch_size=batch_size)
    baseline, steered = [], []
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start:start + batch_size])
        seeds = [seed + start + i for i in range(len(chunk))]
        both = generate(model, chunk * 2, config, steerer=steerer, steered_rows=[False] * len(chunk) + [True] * len(chunk),
                        seeds=seeds * 2, on_answers=on_answers)
        baseline += both[:len(chunk)]
        steered += both[len(chunk):]
        if on_batch is not None:
            on_batch(start, both[:len(chunk)], both[len(chunk):])
    result = compare_answers(baseline, steered, target, model.tokenizer, max_new_tokens, tasks=tasks)
    result.update(spec=steerer.spec.to_json(), temperature=temperature, seed=seed)
    return result


def side_by_side(model, prompt: str, steerer, config: GenerationConfig, on_token: Callable | None = None,
                 asked: str | None = None) -> tuple:
    """The baseline and the steered answer to one prompt, with the same seed, decoded together as
    one batch of two rows of which only the second is steered: ``(baseline, steered)``; with
    ``asked`` (the task asked explicitly), its answer too, as a third unsteered row.
    ``on_token`` streams every row (``generation.generate``)."""
    prompts = [prompt, prompt] + ([asked] if asked else [])
    return tuple(generate(model, prompts, config, steerer=steerer, steered_rows=[False, True, False][:len(prompts)],
                          seeds=[config.seed] * len(prompts), on_token=on_token))


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


def assigned_cluster_success(batches, target: str, vectors, spec, assignment) -> float:
    """Fenced-tag success when prompt ``i`` of ``batches`` is steered (at ``spec``'s layers and
    alphas) by the vector of its cluster ``assignment[i]`` alone (``vectors[L, K, d]``): the
    probe's pick, a random cluster or the oracle's, for the causal test of a probe."""
    assignment = np.asarray(assignment)
    hits = 0.0
    for k in range(vectors.shape[1]):
        rows = np.flatnonzero(assignment == k)
        if len(rows):
            fixed = MeanDiffSteerer(replace(spec, method="mean_diff"), vectors[:, k])
            hits += tag_success(batches, target, fixed, rows=rows.tolist()) * len(rows)
    return hits / len(assignment)


def continuation_logprob(model, prompts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
    """Per row, the mean log-probability per token of ``continuations[i]`` as the unsteered
    model's answer to ``prompts[i]``: how much a steered answer reads like what the model writes
    when asked for it. To score many sets of continuations against the same prompts, keep the
    ``PromptPrefix`` and call its ``logprob``."""
    return PromptPrefix(model, prompts).logprob(continuations)


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
