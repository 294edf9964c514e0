"""Probe: G-ACT's per-layer probes (and the scikit-learn refit, an ablation), with bootstrap
intervals and the baselines a probe must beat; and the condition that conditional steering reads
(``condition.PromptCondition``: does the prompt leave the language open?)."""

from __future__ import annotations

import numpy as np
import torch

from ...core.stats import bootstrap_interval, majority_accuracy
from ...methods.condition import OPEN, PromptCondition
from ...methods.probes import GactProbe, SklearnProbe
from ...store.schema import ACTIVATIONS, CLUSTERS, CONDITION, CONDITION_LAYER, EXPLICIT, accuracy_metric, probe_tensors
from .base import Context, Learned, StageResult


def probe_data(ctx: Context, learned: Learned) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """Probe inputs, labels ``[layers, rows]``, the task of each row, and which rows are "off".

    Rows are the neutral activations and paraphrases (labelled with their task's cluster),
    then, for adaptive probes, activations inside target-language answers (labelled K).
    """
    acts = learned.tensors(ACTIVATIONS)
    labels = learned.tensors(CLUSTERS)["labels"].numpy()
    names = ["neutral", *sorted(k for k in acts if k.startswith("paraphrase_"))]
    if ctx.settings.adaptive and "off" in acts:
        names.append("off")
    rows, groups = [], []
    for name in names:
        rows.append(acts[name])
        groups.append(acts[f"index_{name}"].numpy() if f"index_{name}" in acts else np.arange(len(ctx.prompts)))
    groups = np.concatenate(groups)
    is_off = np.zeros(len(groups), dtype=bool)
    if names[-1] == "off":
        is_off[-len(acts["off"]):] = True
    y = labels[:, groups]
    y[:, is_off] = ctx.settings.k
    return torch.cat(rows), y, groups, is_off


def accuracy_rows(ctx: Context, name: str, probe, X, y, groups, is_off) -> list[tuple]:
    """Per-layer accuracy metrics: on the cluster task (prompts, not "off" rows), with a
    task-resampled bootstrap interval for validation, and, for adaptive probes, on the
    held-out "off" samples."""
    train, val = probe.split_scores(X, y, ~is_off)
    rows = [(accuracy_metric(name, split), layer, float(v), None)
            for split, values in (("train", train), ("val", val)) for layer, v in enumerate(values)]
    val_rows = probe.val_idx_[~is_off[probe.val_idx_]]
    if len(val_rows):
        correct = probe.predict(X[val_rows]) == y[:, val_rows]
        for layer in range(X.shape[1]):
            low, high = bootstrap_interval(correct[layer], groups[val_rows], seed=ctx.settings.seed)
            rows.append((accuracy_metric(name, "val_ci"), layer, float(val[layer]),
                         {"low": low, "high": high, "correct": correct[layer].astype(int).tolist(),
                          "tasks": groups[val_rows].tolist()}))
    if is_off.any():
        rows += [(accuracy_metric(name, "off_val"), layer, float(v), None)
                 for layer, v in enumerate(probe.split_scores(X, y, is_off)[1])]
    return rows


def _baseline_rows(ctx: Context, probe, X, y, is_off, n_classes: int) -> list[tuple]:
    """What a probe must beat, per layer: the majority class of the training rows, and the
    same probe trained on shuffled labels (validation accuracy on the cluster task)."""
    s = ctx.settings
    train, val = probe.train_idx_[~is_off[probe.train_idx_]], probe.val_idx_[~is_off[probe.val_idx_]]
    rows = [(accuracy_metric("majority", "val"), layer, majority_accuracy(y[layer, train], y[layer, val]), None)
            for layer in range(X.shape[1])]
    shuffled = y.copy()  # cluster labels permuted among the training prompts ("off" rows keep theirs)
    rng = np.random.default_rng(s.seed)
    for layer in range(X.shape[1]):
        shuffled[layer, train] = rng.permutation(y[layer, train])
    control = _gact_probe(ctx, n_classes)
    control.fit(X, shuffled, split=(probe.train_idx_, probe.val_idx_))
    _, val_scores = control.split_scores(X, y, ~is_off)
    rows += [(accuracy_metric("shuffled", "val"), layer, float(v), None) for layer, v in enumerate(val_scores)]
    return rows


def _gact_probe(ctx: Context, n_classes: int) -> GactProbe:
    s = ctx.settings
    return GactProbe(n_classes, lr=s.probe_lr, weight_decay=s.probe_weight_decay, epochs=s.probe_epochs,
                     val_fraction=s.val_fraction, random_state=s.seed)


def probe(ctx: Context, learned: Learned) -> StageResult:
    s = ctx.settings
    X, y, groups, is_off = probe_data(ctx, learned)
    n_classes = s.k + int(is_off.any())
    advance = ctx.tick("probe", 4)
    gact = _gact_probe(ctx, n_classes).fit(X, y, groups=groups)
    advance()
    sklearn = SklearnProbe(n_classes, C=s.sklearn_C, val_fraction=s.val_fraction, random_state=s.seed).fit(X, y, groups=groups)
    advance()
    probes = {"gact": gact, "sklearn": sklearn}
    tensors = {probe_tensors(name): (p.state_tensors(), ctx.meta(kind="probe", method=name, k=s.k))
               for name, p in probes.items()}
    rows = [row for name, p in probes.items() for row in accuracy_rows(ctx, name, p, X, y, groups, is_off)]
    rows += _baseline_rows(ctx, gact, X, y, is_off, n_classes)
    advance()
    n = len(ctx.prompts)  # the first rows are the neutral prompts, in task order: report those
    report = [(f"{name}_prediction", r["layer"], r["confidence"], r)
              for name, p in probes.items() for r in p.report(X[:n], y[:, :n], ctx.prompts.ids)]
    condition, condition_rows = _condition(ctx, learned)
    advance()
    if condition is not None:
        tensors[CONDITION] = (condition.state_tensors(), ctx.meta(kind="condition"))
    return StageResult(tensors=tensors, metrics={"probe": rows + condition_rows, "probe_report": report})


def _condition(ctx: Context, learned: Learned) -> tuple[PromptCondition | None, list[tuple]]:
    """The condition fitted on the prompts the run read: the neutral prompts and paraphrases
    ("open"), the target's and every other language's explicit prompts; with its validation
    accuracy per layer and the layer it reads (None where no other language was read)."""
    s, acts = ctx.settings, learned.tensors(ACTIVATIONS)
    n = len(ctx.prompts)
    parts = [("neutral", OPEN), ("target", s.target)]
    parts += [(k, OPEN) for k in sorted(acts) if k.startswith("paraphrase_")]
    parts += [(k, k.removeprefix(EXPLICIT)) for k in sorted(acts) if k.startswith(EXPLICIT)]
    if not any(k.startswith(EXPLICIT) for k, _ in parts):
        return None, []
    X = torch.cat([acts[k] for k, _ in parts])
    labels = [label for k, label in parts for _ in range(len(acts[k]))]
    groups = np.concatenate([acts[f"index_{k}"].numpy() if f"index_{k}" in acts else np.arange(n) for k, _ in parts])
    unseen = np.concatenate([np.full(len(acts[k]), k.startswith("paraphrase_")) for k, _ in parts])
    condition = PromptCondition(s.target, val_fraction=s.val_fraction, random_state=s.seed, hook_point=s.hook_point,
                                position=s.position, answer_prefix=s.answer_prefix).fit(X, labels, groups, unseen)
    rows = [(accuracy_metric(CONDITION, "val"), layer, float(v), None) for layer, v in enumerate(condition.val_accuracy_)]
    rows.append((CONDITION_LAYER, condition.layer_, float(condition.val_accuracy_[condition.layer_]),
                 {"classes": condition.classes_}))
    return condition, rows
