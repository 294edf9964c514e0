"""Act: faithful ACT (``steering.methods.act``). The model's own answers to the explicit prompts, in the
target language (good) and in the others (bad), read per head at their last token after the
neutral prompt; per-head probes, head selection, its strength and their accuracies."""

from __future__ import annotations

import numpy as np

from ...code.languages import LANGUAGE_KEYS
from ...core.stats import bootstrap_interval
from ...engine.activations import extract_activations
from ...engine.generation import GenerationConfig, generate
from ...engine.prefix import prefixes, tag_success
from ...methods.act import ActSteerer, AdaptiveActivationSteering
from ...methods.steer import SteeringSpec
from ...store.schema import ACT, CHOSEN_ALPHA, TARGET_ANSWERS, accuracy_metric
from .base import Context, Learned, StageResult


def _answers(ctx: Context, learned: Learned, languages, advance) -> list[tuple[int, str, bool]]:
    """``(task index, answer text, good)`` of every usable answer to the explicit prompts."""
    s, tasks = ctx.settings, ctx.prompts.tasks
    config = GenerationConfig(max_new_tokens=min(s.off_max_new_tokens, s.max_new_tokens), batch_size=s.batch_size,
                              start=s.answer_prefix)
    rows = []
    for lang in languages:
        # The target's answers were generated the same way for the "off" samples: read them back.
        answers = learned.answers(TARGET_ANSWERS) if lang == s.target and s.adaptive else []
        if len(answers) == len(tasks):
            advance.replan(-len(tasks))  # read back, not decoded: not work of this stage
        else:
            answers = generate(ctx.model, [t.prompts[lang] for t in tasks], config, on_answers=advance)
        for i, a in enumerate(answers):
            detected = a.detection.language
            if detected is not None and a.text.strip() and (detected == s.target) == (lang == s.target):
                rows.append((i, a.text, lang == s.target))
    return rows


def act(ctx: Context, learned: Learned) -> StageResult:
    s, tasks = ctx.settings, ctx.prompts.tasks
    languages = [lang for lang in LANGUAGE_KEYS if all(lang in t.prompts for t in tasks)]
    advance = ctx.tick("act", len(tasks) * len(languages) * 2 + 1 + len(s.act_alphas))
    rows = _answers(ctx, learned, languages, advance)
    task_index = np.array([i for i, _, _ in rows])
    good = np.array([g for _, _, g in rows], dtype=bool)
    counts = [("answers_good", None, float(good.sum()), None), ("answers_bad", None, float((~good).sum()), None)]
    paired = set(task_index[good].tolist()) & set(task_index[~good].tolist())
    if len(paired) < s.act_clusters:
        # A model that cannot answer in the languages asked leaves ACT nothing to learn from:
        # the run goes on, and evaluating ACT says why it cannot.
        result = StageResult(metrics={"act": counts})
        result.note(f"ACT not fitted: {len(paired)} task(s) have an answer in the target language and one in "
                    f"another; it needs {s.act_clusters}")
        advance(len(rows) + 1 + len(s.act_alphas))
        return result
    read = dict(prompts=[tasks[i].neutral for i, _, _ in rows], continuation=[text for _, text, _ in rows],
                position="last", batch_size=s.batch_size)
    z = extract_activations(ctx.model, hook_point="attn_z", **read)
    advance(len(rows))
    fitted = AdaptiveActivationSteering(s.act_clusters, s.act_heads, C=s.act_C, random_state=s.seed).fit(
        z, good, task_index, ctx.model.facts.n_heads)
    tensors = {f"act_{k}": v for k, v in fitted.state_tensors().items()}
    if s.neuron_scoring == "activation":
        mlp = extract_activations(ctx.model, hook_point="mlp_post", **read)
        tensors.update(mlp_good_mean=mlp[good].mean(0), mlp_bad_mean=mlp[~good].mean(0))
    advance()
    tried = _strengths(ctx, fitted, advance)
    chosen = s.act_alpha if s.act_alpha is not None else min(tried, key=lambda a: (-tried[a], a))
    metrics = [*counts, (CHOSEN_ALPHA, None, float(chosen), None)]
    metrics += [("alpha_success", None, v, {"alpha": a}) for a, v in tried.items()]
    metrics += _head_rows(ctx, fitted)
    return StageResult(tensors={ACT: (tensors, ctx.meta(kind="act", target=s.target, hook="attn.hook_z"))},
                       metrics={"act": metrics})


def _strengths(ctx: Context, fitted, advance) -> dict[float, float]:
    """ACT's strengths, tried like G-ACT's alphas are in the sweep (fenced tag, greedy), so
    neither method is compared at a strength that suits only the other."""
    s = ctx.settings
    batches = prefixes(ctx.model, ctx.neutral_prompts)
    tried = {}
    for alpha in s.act_alphas:
        spec = SteeringSpec.uniform(fitted.layers_, alpha, method="act", hook_point=s.hook_point)
        tried[float(alpha)] = tag_success(batches, s.target, ActSteerer(spec, fitted, beta=s.act_beta))
        advance()
    return tried


def _head_rows(ctx: Context, fitted) -> list[tuple]:
    """Per layer: the best head's validation accuracy with its interval, and the heads kept."""
    best = fitted.best_head_accuracy()
    rows = []
    for layer in range(ctx.model.n_layers):
        c, h = np.unravel_index(np.nanargmax(np.nan_to_num(fitted.val_accuracy_[:, layer], nan=-1)),
                                fitted.val_accuracy_[:, layer].shape)
        correct, groups = fitted.val_correct_.get((int(c), layer, int(h)), (np.array([]), np.array([])))
        low, high = bootstrap_interval(correct, groups, seed=ctx.settings.seed)
        rows.append((accuracy_metric("best_head", "val"), layer, float(best[layer]),
                     {"cluster": int(c), "head": int(h), "low": low, "high": high, "n_val": int(len(correct)),
                      "correct": np.asarray(correct).astype(int).tolist(), "tasks": np.asarray(groups).tolist()}))
        rows.append(("kept_heads", layer, float((fitted.kept_[:, 1] == layer).sum()), None))
    return rows
