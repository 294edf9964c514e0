"""The probes: G-ACT's per-layer softmax probe, its scikit-learn ablation, the split they share."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import blobs
from steering.methods.probes import GactProbe, SklearnProbe, train_val_split


def test_split_keeps_groups_together_and_is_shared():
    groups = np.repeat(np.arange(10), 3)
    train, val = train_val_split(30, 0.3, 0, groups)
    assert set(groups[train]).isdisjoint(groups[val]) and len(set(groups[val])) == 3
    assert (train_val_split(30, 0.3, 0, groups)[1] == val).all()


@pytest.mark.parametrize("cls", [GactProbe, SklearnProbe])
def test_probes_learn_separable_labels_and_follow_the_estimator_api(cls):
    X, y = blobs(n=90)
    probe = cls(3).fit(X, y)
    assert probe.val_accuracy_.shape == (3,) and (probe.val_accuracy_ >= 0.9).all()
    proba = probe.predict_proba(X)
    assert proba.shape == (3, 90, 3) and np.allclose(proba.sum(-1), 1)
    assert probe.score(X, y) >= 0.9
    logits = probe.layer_logits(1, X[:4, 1])
    assert torch.allclose(torch.softmax(logits, -1), torch.as_tensor(proba[1, :4], dtype=torch.float32), atol=1e-4)
    again = cls.from_state_tensors(probe.state_tensors())
    assert np.allclose(again.predict_proba(X), proba, atol=1e-6)
    report = probe.report(X, y, [f"t{i}" for i in range(90)])
    assert len(report) == 270 and {"true", "predicted", "confidence", "validation"} <= set(report[0])


def test_act_probe_matches_scikit_learn_probabilities():
    from sklearn.linear_model import LogisticRegression

    X, y = blobs(n=40, layers=1)
    probe = SklearnProbe(3, val_fraction=0.0).fit(X, y)
    reference = LogisticRegression(max_iter=1000).fit(X[:, 0].numpy(), y).predict_proba(X[:, 0].numpy())
    assert np.allclose(probe.predict_proba(X)[0], reference, atol=1e-4)


def test_split_scores_count_only_the_given_rows():
    X, y = blobs(n=40, layers=2)
    probe = GactProbe(3, epochs=50).fit(X, y)
    y_wrong = np.array(y)
    y_wrong[:20] = (y_wrong[:20] + 1) % 3  # the first half mislabelled
    rows = np.arange(40) >= 20
    train, val = probe.split_scores(X, y_wrong, rows)
    assert (train >= 0.9).all() and (val >= 0.9).all()
    assert (probe.split_scores(X, y_wrong)[0] < 0.7).all()
    empty = probe.split_scores(X, y, np.zeros(40, dtype=bool))
    assert np.isnan(empty[0]).all() and np.isnan(empty[1]).all()
