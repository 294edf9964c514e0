"""How sure is a rate? Bootstrap intervals over tasks, paired comparisons, and the baseline a
probe must beat.

Validation and evaluation sets here are small (a few dozen tasks, sometimes several rows per
task), so a rate alone says little. The unit resampled is the task: rows of one task (several
phrasings or samples) are not independent. Per row a measure is a number, or NaN where it does
not count (``compiles`` of an answer with no fenced target code). A paired comparison resamples
the same tasks for both conditions, so its interval is much narrower than the two rates'
intervals suggest when the conditions move together. ``majority_accuracy`` is what always
answering the most frequent training class scores.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

N_BOOTSTRAP = 1000


LEVEL = 0.95


def bootstrap_interval(correct, groups=None, level: float = LEVEL, n_boot: int = N_BOOTSTRAP,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean of ``correct`` (booleans), resampling ``groups`` (e.g. the
    task of each row; default: rows) with replacement; ``(nan, nan)`` without rows."""
    correct = np.asarray(correct, dtype=float)
    groups = np.arange(len(correct)) if groups is None else np.asarray(groups)
    _, low, high = rate_interval(correct, groups, seed=seed, n=n_boot, level=level)
    return (float("nan"), float("nan")) if low is None else (low, high)


def _task_sums(values, tasks) -> tuple[np.ndarray, np.ndarray, list]:
    """Per task: the sum of the counted values and how many were counted."""
    values = np.asarray(values, dtype=float)
    order, index = np.unique(np.asarray(tasks), return_inverse=True)
    counted = ~np.isnan(values)
    sums = np.bincount(index[counted], weights=values[counted], minlength=len(order))
    counts = np.bincount(index[counted], minlength=len(order)).astype(float)
    return sums, counts, list(order)


def _resamples(n_tasks: int, seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_tasks, size=(n, n_tasks))


def _ratio(sums: np.ndarray, counts: np.ndarray, draws: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[draws].sum(-1) / counts[draws].sum(-1)


def _interval(point: float, replicates: np.ndarray, level: float = LEVEL) -> tuple[float | None, float | None, float | None]:
    if not np.isfinite(point):
        return None, None, None
    replicates = replicates[np.isfinite(replicates)]
    if not len(replicates):
        return float(point), None, None
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(replicates, [tail, 100 - tail])
    return float(point), float(lo), float(hi)


def rate_interval(values: Sequence[float], tasks: Sequence, seed: int = 0, n: int = N_BOOTSTRAP,
                  level: float = LEVEL) -> tuple[float | None, float | None, float | None]:
    """``(rate, low, high)``: the mean of the counted values and its bootstrap 95% interval over
    tasks (None where nothing counts)."""
    if len(values) != len(tasks):
        raise ValueError(f"{len(values)} values but {len(tasks)} task ids")
    sums, counts, order = _task_sums(values, tasks)
    if not counts.sum():
        return None, None, None
    point = sums.sum() / counts.sum()
    return _interval(point, _ratio(sums, counts, _resamples(len(order), seed, n)), level)


def paired_interval(a: Sequence[float], b: Sequence[float], tasks: Sequence[str], kind: str = "difference",
                    seed: int = 0, n: int = N_BOOTSTRAP) -> tuple[float | None, float | None, float | None]:
    """``(statistic, low, high)`` of rate(a) - rate(b) (``kind="difference"``) or rate(a) / rate(b)
    (``"ratio"``), with answer ``i`` of ``a`` and of ``b`` from the same task ``tasks[i]`` and the
    same tasks resampled for both."""
    if not len(a) == len(b) == len(tasks):
        raise ValueError(f"paired values must align: {len(a)}, {len(b)} values and {len(tasks)} task ids")
    if kind not in ("difference", "ratio"):
        raise ValueError(f"unknown comparison {kind!r}; expected difference or ratio")
    sa, ca, order = _task_sums(a, tasks)
    sb, cb, _ = _task_sums(b, tasks)
    if not ca.sum() or not cb.sum():
        return None, None, None
    draws = _resamples(len(order), seed, n)
    ra, rb = _ratio(sa, ca, draws), _ratio(sb, cb, draws)
    pa, pb = sa.sum() / ca.sum(), sb.sum() / cb.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "difference":
            return _interval(pa - pb, ra - rb)
        return _interval(pa / pb if pb else np.nan, np.where(rb > 0, ra / np.where(rb > 0, rb, 1), np.nan))


def unpaired_difference(a: Sequence[tuple], b: Sequence[tuple], seed: int = 0,
                        n: int = N_BOOTSTRAP) -> tuple[float | None, float | None, float | None]:
    """``(statistic, low, high)`` of the mean over layers of rate(a) - rate(b), where ``a`` and
    ``b`` hold one ``(values, tasks)`` per layer, read on different rows (two probes validated on
    their own splits): each side's tasks are resampled on their own, with one draw per replicate
    for all its layers (a task's rows move together across layers; a layer none of whose tasks
    a replicate draws is left out of that replicate's mean). One layer each: that layer's
    difference."""
    if len(a) != len(b) or not len(a):
        raise ValueError(f"one (values, tasks) per layer on each side: got {len(a)} and {len(b)}")

    def side(layers, seed):
        order = sorted({t for _, tasks in layers for t in tasks}, key=str)
        where = {t: i for i, t in enumerate(order)}
        weights = np.stack([np.bincount(d, minlength=len(order)) for d in _resamples(len(order), seed, n)])
        points, replicates = [], []
        for values, tasks in layers:
            sums, counts, mine = _task_sums(values, tasks)
            full_sums, full_counts = np.zeros(len(order)), np.zeros(len(order))
            index = [where[t] for t in mine]
            full_sums[index], full_counts[index] = sums, counts
            points.append(full_sums.sum() / full_counts.sum() if full_counts.sum() else np.nan)
            with np.errstate(invalid="ignore", divide="ignore"):
                replicates.append(weights @ full_sums / (weights @ full_counts))
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a replicate may draw no task of a layer: skipped there
            return np.nanmean(points), np.nanmean(replicates, axis=0)

    pa, ra = side(a, seed)
    pb, rb = side(b, seed + 1)
    return _interval(pa - pb, ra - rb)


def excludes_zero(interval: tuple, null: float = 0.0) -> bool:
    """Whether an interval ``(statistic, low, high)`` lies wholly on one side of ``null``."""
    _, lo, hi = interval
    return lo is not None and hi is not None and (lo > null or hi < null)


def majority_accuracy(train_labels, val_labels) -> float:
    """Accuracy on ``val_labels`` of always predicting the most frequent training label."""
    train_labels, val_labels = np.asarray(train_labels), np.asarray(val_labels)
    if not len(val_labels) or not len(train_labels):
        return float("nan")
    values, counts = np.unique(train_labels, return_counts=True)
    return float((val_labels == values[counts.argmax()]).mean())
