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

from ..evaluation import compare_answers
from ..fences import cut_after_block
from ..generation import Generation, GenerationConfig, generate, generate_pairs
from ..methods import method as get_method
from ..schema import BUDGET, CONDITIONS, EVAL_MEASURES, PROMPT_SETS, SPEC, baseline_stage, eval_metric, eval_share_metric, eval_stage
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


def evaluate(ctx: Context, learned: Learned, method: str = "gact", prompt_set: str = "neutral", inputs: str = "") -> StageResult:
    """``method`` (a ``methods.METHODS`` name) on ``prompt_set``; ``inputs``: the hash of what the
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
