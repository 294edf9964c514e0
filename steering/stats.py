"""How sure is a probe accuracy? Bootstrap intervals and the baselines it must beat.

Validation sets here are small (a few dozen rows, several per task), so an accuracy alone says
little: ``bootstrap_interval`` resamples whole tasks (rows of one task are not independent),
``majority_accuracy`` is what always answering the most frequent training class scores.
"""

from __future__ import annotations

import numpy as np

N_BOOTSTRAP = 1000


def bootstrap_interval(correct, groups=None, level: float = 0.95, n_boot: int = N_BOOTSTRAP,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean of ``correct`` (booleans), resampling ``groups`` (e.g. the
    task of each row; default: rows) with replacement; ``(nan, nan)`` without rows."""
    correct = np.asarray(correct, dtype=float)
    if not len(correct):
        return float("nan"), float("nan")
    groups = np.arange(len(correct)) if groups is None else np.asarray(groups)
    unique, inverse = np.unique(groups, return_inverse=True)
    hits = np.bincount(inverse, weights=correct, minlength=len(unique))
    sizes = np.bincount(inverse, minlength=len(unique))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(unique), size=(n_boot, len(unique)))
    means = hits[draws].sum(1) / sizes[draws].sum(1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def majority_accuracy(train_labels, val_labels) -> float:
    """Accuracy on ``val_labels`` of always predicting the most frequent training label."""
    train_labels, val_labels = np.asarray(train_labels), np.asarray(val_labels)
    if not len(val_labels) or not len(train_labels):
        return float("nan")
    values, counts = np.unique(train_labels, return_counts=True)
    return float((val_labels == values[counts.argmax()]).mean())
