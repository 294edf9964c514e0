"""Extract: activations at every layer for the neutral, target (and contrast) prompts, the
probe paraphrases, the tasks asked explicitly in each other language, their differences, and the "off" samples read inside the model's own
target-language answers."""

from __future__ import annotations

import torch

from ...code.languages import LANGUAGE_KEYS
from ...engine.activations import extract_activations
from ...engine.generation import GenerationConfig, generate
from ...store.schema import ACTIVATIONS, DELTAS, EXPLICIT, TARGET_ANSWERS
from .base import Context, Learned, StageResult, generation_rows


def _prompt_sets(ctx: Context) -> tuple[dict[str, list[str]], dict[str, list[int]]]:
    """The prompts read, by set name, and for each paraphrase set the tasks that have one."""
    s, tasks = ctx.settings, ctx.prompts.tasks
    sets = {"neutral": ctx.neutral_prompts, "target": [t.prompts[s.target] for t in tasks]}
    if s.contrast != "neutral":
        sets["contrast"] = [t.prompts[s.contrast] for t in tasks]
    owners = {}  # the tasks that have a j-th paraphrase, and those that ask explicitly for each other language
    for lang in LANGUAGE_KEYS:  # the condition (``condition.PromptCondition``) learns to read these
        asking = [i for i, t in enumerate(tasks) if lang != s.target and lang in t.prompts]
        if asking:
            owners[f"{EXPLICIT}{lang}"] = asking
            sets[f"{EXPLICIT}{lang}"] = [tasks[i].prompts[lang] for i in asking]
    if s.probe_paraphrases:
        most = min(s.probe_paraphrases, max((len(t.paraphrases) for t in tasks), default=0))
        for j in range(most):
            owners[f"paraphrase_{j}"] = [i for i, t in enumerate(tasks) if len(t.paraphrases) > j]
            sets[f"paraphrase_{j}"] = [tasks[i].paraphrases[j] for i in owners[f"paraphrase_{j}"]]
    return sets, owners


def extract(ctx: Context, learned: Learned) -> StageResult:
    s = ctx.settings
    sets, owners = _prompt_sets(ctx)
    advance = ctx.tick("extract", sum(len(p) for p in sets.values()) + (2 * len(ctx.prompts) if s.adaptive else 0))
    result = StageResult()
    tensors = {
        name: extract_activations(ctx.model, prompts, hook_point=s.hook_point, position=s.position,
                                  continuation=s.answer_prefix, batch_size=s.batch_size, progress=advance)
        for name, prompts in sets.items()
    }
    tensors.update({f"index_{name}": torch.tensor(index) for name, index in owners.items()})
    if s.adaptive:
        tensors.update(_off_samples(ctx, result, advance))
    deltas = tensors["target"] - tensors["contrast" if s.contrast != "neutral" else "neutral"]
    result.tensors[ACTIVATIONS] = (tensors, ctx.meta(kind="activations"))
    result.tensors[DELTAS] = ({"deltas": deltas, "mean_vectors": deltas.mean(dim=0)},
                              ctx.meta(kind="differences", target=s.target, contrast=s.contrast))
    return result


def _off_samples(ctx: Context, result: StageResult, advance) -> dict[str, torch.Tensor]:
    """Activations where steering should stay off: inside the model's own target-language
    answers (to the explicit prompts), read after the neutral prompts, as a steered answer
    would be. The answers go into ``result`` (ACT reuses them)."""
    s, tasks = ctx.settings, ctx.prompts.tasks
    # Forced to open with the answer prefix: instruct models otherwise spend the first tokens on prose.
    config = GenerationConfig(max_new_tokens=min(s.off_max_new_tokens, s.max_new_tokens), batch_size=s.batch_size,
                              start=s.answer_prefix)
    answers = generate(ctx.model, [t.prompts[s.target] for t in tasks], config, on_answers=advance)
    kept = [i for i, a in enumerate(answers) if a.detection.language == s.target]
    kept = kept or [i for i, a in enumerate(answers) if a.text.strip()]  # a model that cannot: its best attempts
    result.generations[TARGET_ANSWERS] = generation_rows([t.id for t in tasks], "explicit", answers)
    advance(len(tasks))
    if not kept:
        result.note("the model's explicit answers were all empty: probes have no 'off' class")
        return {}
    off = extract_activations(ctx.model, [tasks[i].neutral for i in kept], hook_point=s.hook_point,
                              position="answer", continuation=[answers[i].text for i in kept],
                              per_answer=s.off_per_answer, batch_size=s.batch_size)
    return {"off": off, "index_off": torch.tensor(kept).repeat_interleave(s.off_per_answer)}
