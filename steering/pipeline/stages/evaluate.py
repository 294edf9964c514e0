"""Eval: a method's steered answers to a prompt set beside the unsteered ones and the two
references a steering is judged against, all with the same seeds and token budget, scored by
``evaluation.compare_answers``; stored under ``eval_stage(method, prompt_set)``.

The references: ``asked``, the task's own prompt in the target language (the ceiling: what the
model writes when simply asked); ``prefilled``, the same phrasing as the steered answer with the
answer forced to open the target's fence (the cheapest intervention). The budget, by default, is
the asked answers' 95th percentile of length (``eval_budget``), so that "cut off" measures what
steering adds, not the model's verbosity.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, replace

import numpy as np

from ...code.fences import cut_after_block
from ...code.languages import LANGUAGE_KEYS
from ...core.stats import rate_interval
from ...engine.generation import Generation, GenerationConfig, generate, generate_each, generate_pairs
from ...methods.registry import DEFAULT_METHOD, method as get_method
from ...store.schema import (BUDGET, CONDITIONAL_SHARE, CONDITIONS, EVAL_MEASURES, PROMPT_SETS, SPEC, YIELD_CONDITIONS, baseline_stage,
                      eval_metric, eval_share_metric, eval_stage, explicit_stage, yield_metric)
from ..evaluation import compare_answers
from .base import Context, Learned, StageResult, generation_rows

BUDGET_QUANTILE = 95
BUDGET_STEP = 16


def fence_opening(target: str) -> str:
    return f"```{target}\n"


def asked_budget(answers, cap: int) -> int:
    """The 95th percentile of the answers' lengths, rounded up to a multiple of 16, at most ``cap``."""
    lengths = [a.n_tokens for a in answers]
    if not lengths:
        return cap
    p95 = float(np.percentile(lengths, BUDGET_QUANTILE, method="higher"))
    return int(min(cap, max(BUDGET_STEP, math.ceil(p95 / BUDGET_STEP) * BUDGET_STEP)))


def _cut(answer: Generation, budget: int, tokenizer, start: str) -> Generation:
    """``answer`` as a budget of ``budget`` tokens would have left it (same seed, same tokens)."""
    if answer.n_tokens <= budget:
        return answer
    text = cut_after_block(start + tokenizer.decode(answer.tokens[:budget], skip_special_tokens=True))
    return Generation(answer.prompt, text, budget, answer.seed, tokens=answer.tokens[:budget])


def _key(prompts, config: GenerationConfig, inputs: str, **extra) -> str:
    return hashlib.sha256(json.dumps({"prompts": prompts, "config": asdict(config), "inputs": inputs, **extra},
                                     sort_keys=True).encode()).hexdigest()


def _stored(learned: Learned, stage: str, key: str, n: int, advance) -> tuple[list[Generation] | None, dict]:
    """The answers stored as ``stage`` if they were made from ``key``, and the stage's metrics."""
    metrics = {m["name"]: m for m in learned.metrics(stage)}
    if "answers" in metrics and metrics["answers"]["extra"]["key"] == key:
        answers = learned.answers(stage)
        if len(answers) == n:
            advance.replan(-n)  # work not done here: counted as done, it would make the pace look faster
            return answers, metrics
    return None, metrics


def _unsteered(ctx: Context, learned: Learned, stage: str, ids, prompts, config: GenerationConfig, inputs: str,
               result: StageResult, advance, condition: str, steerer=None) -> tuple[list[Generation], list | None]:
    """Unsteered answers generated once per run and decoding settings (stored as ``stage``,
    keyed by what they came from), since every method compares against the same ones; new
    ones go into ``result``. With ``steerer``, answers that must be made decode with their
    steered twins (``generate_pairs``), which come back second (else None)."""
    key = _key(prompts, config, inputs)
    answers, _ = _stored(learned, stage, key, len(prompts), advance)
    if answers is not None:
        return answers, None
    if steerer is None:
        answers, steered = generate(ctx.model, prompts, config, on_answers=advance), None
    else:
        answers, steered = generate_pairs(ctx.model, prompts, config, steerer, on_answers=advance)
    result.generations[stage] = generation_rows(ids, condition, answers)
    result.metrics[stage] = [("answers", None, len(answers), {"key": key})]
    return answers, steered


def _asked(ctx: Context, learned: Learned, prompt_set: str, ids, config: GenerationConfig, inputs: str,
           result: StageResult, advance) -> tuple[list[Generation], int]:
    """The answers asked explicitly, and the budget they set (``eval_budget``), cut to it: made
    once per run, since every prompt set asks the same tasks (stored under each set's stage)."""
    s, tok = ctx.settings, ctx.model.tokenizer
    by_id = {t.id: t.prompts[s.target] for t in ctx.prompts}
    prompts = [by_id[i] for i in ids]
    stage = baseline_stage(prompt_set, "asked")
    key = _key(prompts, config, inputs, budget=s.eval_budget)
    answers, metrics = _stored(learned, stage, key, len(prompts), advance)
    if answers is not None:
        return answers, int(metrics[BUDGET]["value"])
    for other in (p for p in PROMPT_SETS if p != prompt_set):  # the other set asks the same tasks: its answers are these
        answers, metrics = _stored(learned, baseline_stage(other, "asked"), key, len(prompts), advance)
        if answers is not None:
            budget = int(metrics[BUDGET]["value"])
            break
    else:
        answers = generate(ctx.model, prompts, config, on_answers=advance)
        budget = asked_budget(answers, config.max_new_tokens) if s.eval_budget == "asked" else config.max_new_tokens
        answers = [_cut(a, budget, tok, config.start) for a in answers]
    result.generations[stage] = generation_rows(ids, "asked", answers)
    result.metrics[stage] = [("answers", None, len(answers), {"key": key}),
                             (BUDGET, None, budget, {"rule": s.eval_budget, "cap": config.max_new_tokens})]
    return answers, budget


def evaluate(ctx: Context, learned: Learned, method: str = DEFAULT_METHOD, prompt_set: str = "neutral", inputs: str = "") -> StageResult:
    """``method`` (a ``registry.METHODS`` name) on ``prompt_set``; ``inputs``: the hash of what the
    run is made of, which keys the stored unsteered answers. The result's ``value`` is the scored
    answers."""
    s = ctx.settings
    entry = get_method(method)
    ids, prompts = ctx.eval_prompts(prompt_set)
    ids, prompts = [i for i in ids for _ in range(s.eval_samples)], [p for p in prompts for _ in range(s.eval_samples)]
    advance = ctx.tick("eval", len(CONDITIONS) * len(prompts))
    config = GenerationConfig(max_new_tokens=s.max_new_tokens, temperature=s.eval_temperature, seed=s.seed,
                              batch_size=s.batch_size)
    result = StageResult()
    asked, budget = _asked(ctx, learned, prompt_set, ids, config, inputs, result, advance)
    config = replace(config, max_new_tokens=budget)
    prefilled_config = replace(config, start=fence_opening(s.target))
    steerer = entry.steerer(learned, s, ctx.model)
    twins = steerer if entry.answers is None else None  # plain steering decodes with the baseline it is compared to
    answers = {}
    answers["baseline"], steered = _unsteered(ctx, learned, baseline_stage(prompt_set, "baseline"), ids, prompts, config,
                                              inputs, result, advance, "baseline", twins)
    answers["prefilled"], _ = _unsteered(ctx, learned, baseline_stage(prompt_set, "prefilled"), ids, prompts,
                                         prefilled_config, inputs, result, advance, "prefilled")
    if entry.answers is not None:
        steered = entry.answers(steerer, ctx.model, prompts, s, config, advance)
    elif steered is None:  # the baseline was stored by an earlier method: the steered answers alone
        steered = generate(ctx.model, prompts, config, steerer=steerer, on_answers=advance)
    scored = compare_answers(answers["baseline"], steered, s.target, ctx.model.tokenizer, budget, tasks=ids,
                             asked=asked, prefilled=answers["prefilled"])
    scored.update(spec=steerer.spec.to_json(), method=method, prompt_set=prompt_set, temperature=s.eval_temperature,
                  seed=s.seed, budget=budget)
    stage = eval_stage(method, prompt_set)
    rows = [(SPEC, None, 0.0, {**steerer.spec.to_json(), "method": method}),
            (BUDGET, None, float(budget), {"rule": s.eval_budget, "cap": s.max_new_tokens})]
    for condition in CONDITIONS:
        summary = scored[condition]
        rows += [(eval_share_metric(condition, verdict), None, v, None) for verdict, v in summary["shares"].items()]
        rows += [(eval_metric(condition, k), None, summary[k], {"ci": summary["ci"][k]}) for k in EVAL_MEASURES
                 if summary[k] is not None]
        rows.append((eval_metric(condition, "scores"), None, 0.0,
                     {"tasks": ids, **{k: [None if math.isnan(x) else x for x in v] for k, v in summary["scores"].items()}}))
    result.metrics[stage] = rows
    result.generations[stage] = [row for condition in CONDITIONS
                                 for row in generation_rows(ids, condition, scored["answers"][condition])]
    result.value = scored
    return result


def explicit(ctx: Context, learned: Learned, method: str = DEFAULT_METHOD) -> StageResult:
    """Does ``method``'s steering override a prompt that names another language, and does its
    conditional form (``SteeringSpec.conditional``) yield to it? Every task asked explicitly in
    each language but the target, answered unsteered, steered, and steered conditionally (greedy,
    the same seeds), until the fence names a language (or ``select_prose + select_tokens``
    tokens): the share that keeps the asked language. Then, on each evaluated set of open
    prompts, what conditional steering would have written: the steered answer where the
    condition steers the prompt, the unsteered one where it does not (the same answers, row by
    row, greedy and seeded: the condition only decides whether a row is steered)."""
    s, entry = ctx.settings, get_method(method)
    asked = [(t.id, lang, t.prompts[lang]) for t in ctx.prompts for lang in LANGUAGE_KEYS
             if lang != s.target and lang in t.prompts]
    ids, languages, prompts = (list(x) for x in zip(*asked))
    sets = [p for p in PROMPT_SETS if learned.metrics(eval_stage(method, p))]
    advance = ctx.tick("eval", len(YIELD_CONDITIONS) * len(prompts) + len(sets))
    config = GenerationConfig(max_new_tokens=s.select_prose + s.select_tokens, temperature=s.eval_temperature,
                              seed=s.seed, stop="tag", batch_size=s.batch_size)
    steerers = (None, entry.steerer(learned, replace(s, conditional=False), ctx.model),
                entry.steerer(learned, replace(s, conditional=True), ctx.model))
    result, stage = StageResult(), explicit_stage(method)
    rows, generations = [], []
    for condition, answers in zip(YIELD_CONDITIONS, generate_each(ctx.model, prompts, config, steerers, advance)):
        kept = [float(a.detection.language == lang) for a, lang in zip(answers, languages)]
        to_target = [float(a.detection.language == s.target) for a in answers]
        rate, low, high = rate_interval(kept, ids, seed=s.seed)
        rows.append((yield_metric(condition), None, rate,
                     {"low": low, "high": high, "to_target": float(np.mean(to_target)), "kept": kept, "tasks": ids,
                      "languages": languages}))
        generations += generation_rows(ids, condition, answers)
    condition = learned.condition(s)
    for prompt_set in sets:
        rows.append(_conditional_row(ctx, learned, method, prompt_set, condition))
        advance()
    result.metrics[stage], result.generations[stage] = rows, generations
    return result


def _conditional_row(ctx: Context, learned: Learned, method: str, prompt_set: str, condition) -> tuple:
    """On ``prompt_set``'s open prompts: the fenced-target share of conditional steering (the
    stored steered answer where the condition steers, the baseline where not) beside plain
    steering's, and the share the condition steers."""
    s = ctx.settings
    scores = {m["name"]: m["extra"] for m in learned.metrics(eval_stage(method, prompt_set))}
    steers = condition.steers(ctx.model, ctx.eval_prompts(prompt_set)[1])
    steers = [x for x in steers for _ in range(s.eval_samples)]
    plain = scores[eval_metric("steered", "scores")]["fenced_target"]
    baseline = scores[eval_metric("baseline", "scores")]["fenced_target"]
    tasks = scores[eval_metric("steered", "scores")]["tasks"]
    mixed = [p if on else b for p, b, on in zip(plain, baseline, steers)]
    rate, low, high = rate_interval(mixed, tasks, seed=s.seed)
    return (CONDITIONAL_SHARE, None, rate, {"prompt_set": prompt_set, "low": low, "high": high,
                                             "plain": float(np.nanmean(plain)), "steers": float(np.mean(steers)),
                                             "layer": condition.layer_})
