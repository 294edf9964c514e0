"""Eval: baseline and steered answers to a prompt set with the same seeds, scored by
``evaluation.compare_answers``; stored under ``eval_stage(method, prompt_set)``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from ..evaluation import compare_answers
from ..generation import GenerationConfig, generate
from ..methods import method as get_method
from ..schema import CONDITIONS, EVAL_MEASURES, SPEC, baseline_stage, eval_metric, eval_share_metric, eval_stage
from .base import Context, Learned, StageResult, generation_rows


def _baseline(ctx: Context, learned: Learned, prompt_set: str, config: GenerationConfig, inputs: str, result: StageResult,
              advance) -> list:
    """Unsteered answers to a prompt set, generated once per run and decoding settings (stored
    as ``baseline_<set>``, keyed by what they came from), since every method compares against
    the same ones; new ones go into ``result``."""
    ids, prompts = ctx.eval_prompts(prompt_set)
    stage = baseline_stage(prompt_set)
    key = hashlib.sha256(json.dumps({"prompts": prompts, "config": asdict(config), "inputs": inputs},
                                    sort_keys=True).encode()).hexdigest()
    stored = [m["extra"]["key"] for m in learned.metrics(stage) if m["name"] == "answers"]
    if stored == [key]:
        answers = learned.answers(stage)
        if len(answers) == len(prompts):
            advance(len(prompts))
            return answers
    answers = generate(ctx.model, prompts, config, on_answers=advance)
    result.generations[stage] = generation_rows(ids, "baseline", answers)
    result.metrics[stage] = [("answers", None, len(answers), {"key": key})]
    return answers


def evaluate(ctx: Context, learned: Learned, method: str = "gact", prompt_set: str = "neutral", inputs: str = "") -> StageResult:
    """``method`` (a ``methods.METHODS`` name) on ``prompt_set``; ``inputs``: the hash of what the
    run is made of, which keys the stored baseline. The result's ``value`` is the scored answers."""
    s = ctx.settings
    entry = get_method(method)
    ids, prompts = ctx.eval_prompts(prompt_set)
    ids, prompts = [i for i in ids for _ in range(s.eval_samples)], [p for p in prompts for _ in range(s.eval_samples)]
    advance = ctx.tick("eval", 2 * len(prompts))
    config = GenerationConfig(max_new_tokens=s.max_new_tokens, temperature=s.eval_temperature, seed=s.seed,
                              batch_size=s.batch_size)
    result = StageResult()
    baseline = _baseline(ctx, learned, prompt_set, config, inputs, result, advance) if s.eval_samples == 1 else generate(
        ctx.model, prompts, config, on_answers=advance)
    steerer = entry.steerer(learned, s, ctx.model)
    if entry.answers is not None:
        steered = entry.answers(steerer, ctx.model, prompts, s, config, advance)
    else:
        steered = generate(ctx.model, prompts, config, fwd_hooks=steerer.hooks(ctx.model), on_answers=advance)
    scored = compare_answers(baseline, steered, s.target, ctx.model.tokenizer, s.max_new_tokens)
    scored.update(spec=steerer.spec.to_json(), method=method, prompt_set=prompt_set, temperature=s.eval_temperature,
                  seed=s.seed)
    stage = eval_stage(method, prompt_set)
    rows = [(SPEC, None, 0.0, {**steerer.spec.to_json(), "method": method})]
    for condition in CONDITIONS:
        summary = scored[condition]
        rows += [(eval_share_metric(condition, verdict), None, v, None) for verdict, v in summary["shares"].items()]
        rows += [(eval_metric(condition, k), None, summary[k], None) for k in EVAL_MEASURES if summary[k] is not None]
    result.metrics[stage] = rows
    result.generations[stage] = [row for condition in CONDITIONS
                                 for row in generation_rows(ids, condition, scored["answers"][condition])]
    result.value = scored
    return result
