"""Bias: the model's language preference, ``bias_samples`` sampled answers per neutral prompt."""

from __future__ import annotations

from ...engine.generation import GenerationConfig, generate
from ...store.schema import share_metric
from ..evaluation import language_shares, no_code_block_share
from .base import Context, Learned, StageResult, generation_rows


def bias(ctx: Context, learned: Learned) -> StageResult:
    s = ctx.settings
    ids = [t.id for t in ctx.prompts for _ in range(s.bias_samples)]
    prompts = [t.neutral for t in ctx.prompts for _ in range(s.bias_samples)]
    advance = ctx.tick("bias", len(prompts))
    config = GenerationConfig(max_new_tokens=s.bias_max_new_tokens, temperature=s.bias_temperature, seed=s.seed,
                              batch_size=s.batch_size, stop=s.bias_stop)
    answers = generate(ctx.model, prompts, config, on_answers=advance)
    rows = [(share_metric(lang), None, v, None) for lang, v in language_shares(answers).items()]
    rows.append(("no_code_block", None, no_code_block_share(answers), None))
    return StageResult(generations={"bias": generation_rows(ids, "neutral", answers)}, metrics={"bias": rows})
