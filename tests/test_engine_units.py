"""Unit tests of the engine's pieces on small synthetic data and tiny models."""

import math

import numpy as np
import pytest
import torch

from steering.methods.clustering import SteeringClusters, k_sweep
from steering.methods.probes import SklearnProbe, GactProbe, train_val_split
from steering.methods.steer import GactSteerer, MeanDiffSteerer, SteeringSpec
from steering.pipeline.evaluation import best_layers, repeated_ngram_rate


def blobs(n=60, layers=3, d=8, k=3, seed=0):
    """Deltas with k well-separated clusters in every layer."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    centres = torch.randn(k, layers, d, generator=g) * 5
    return centres[labels] + torch.randn(n, layers, d, generator=g) * 0.3, labels.numpy()


def test_clusters_find_the_blobs_per_layer_and_concatenated():
    deltas, truth = blobs()
    for mode in ("per_layer", "concat"):
        fitted = SteeringClusters(3, mode=mode).fit(deltas)
        assert fitted.labels_.shape == (3, 60) and fitted.vectors_.shape == (3, 3, 8)
        assert (fitted.silhouette_ > 0.8).all()
        for layer in range(3):  # same partition as the truth, up to renaming
            pairs = set(zip(truth.tolist(), fitted.labels_[layer].tolist()))
            assert len(pairs) == 3
    sweep = k_sweep(deltas, range(2, 6))
    assert max(sweep, key=lambda k: sweep[k]["silhouette"]) == 3


def test_cluster_errors():
    deltas, _ = blobs(n=5)
    with pytest.raises(ValueError, match="K=6 is larger than the number of tasks \\(5\\)"):
        SteeringClusters(6).fit(deltas)
    with pytest.raises(ValueError, match="unknown clustering mode"):
        SteeringClusters(2, mode="joint").fit(deltas)


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


def test_spec_validation():
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        SteeringSpec((1,), (math.inf,))
    with pytest.raises(ValueError, match="one alpha per layer"):
        SteeringSpec((1, 2), (1.0,))
    with pytest.raises(ValueError, match="listed twice"):
        SteeringSpec((1, 1), (1.0, 1.0))
    with pytest.raises(ValueError, match="a MeanDiffSteerer steers with method 'mean_diff', not 'gact'"):
        MeanDiffSteerer(SteeringSpec((1,), (1.0,), method="gact"), torch.zeros(2, 4))  # one class per method
    with pytest.raises(TypeError, match="probe"):
        GactSteerer(SteeringSpec((1,), (1.0,), method="gact"), torch.zeros(2, 1, 4))  # its learned state is required


def test_fluency_and_layer_choice_helpers():
    assert repeated_ngram_rate("a b c d e f g".split()) == 0
    assert repeated_ngram_rate(("x y z w " * 10).split()) > 0.8
    # One "word" of gibberish repeats on tokens (here characters), which whitespace words miss.
    assert repeated_ngram_rate("sizesizesizesizesize".split()) == 0
    assert repeated_ngram_rate(list("sizesizesizesizesize")) > 0.7
    grid = np.array([[0.1, 0.2], [0.9, 0.95], [0.95, 0.95]])
    assert best_layers(grid, [0, 1, 2], [1.0, 2.0], n=2) == ([1, 2], [2.0, 1.0])
    # Equal best: the layer that steers at more alphas wins, then the lower layer.
    grid = np.array([[0.0, 1.0], [0.5, 1.0], [0.5, 1.0]])
    assert best_layers(grid, [0, 1, 2], [1.0, 2.0], n=1) == ([1], [2.0])


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


def test_an_off_class_switches_steering_off():
    """A probe with K + 1 classes: weight on the last one steers by the zero vector."""
    probe = GactProbe(3).fit(*blobs(n=30, layers=1, d=4))
    vectors = torch.tensor([[[1.0, 0, 0, 0], [0, 1.0, 0, 0]]])  # K = 2 vectors, 3 probe classes
    h = torch.zeros(5, 4)
    for favoured, expected in ((2, torch.zeros(4)), (0, vectors[0, 0])):
        intercept = torch.full((1, 3), -50.0)
        intercept[0, favoured] = 50.0
        steerer = GactSteerer(SteeringSpec((0,), (1.0,), "gact"), vectors=vectors, probe=probe,
                              probe_params=(torch.zeros(1, 4, 3), intercept))
        assert torch.allclose(steerer.direction(0, h), expected.expand(5, 4), atol=1e-6)
