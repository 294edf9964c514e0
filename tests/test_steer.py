"""SteeringSpec and the steerers: what a spec accepts, and what G-ACT's off class does."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import blobs
from steering.methods.probes import GactProbe
from steering.methods.steer import GactSteerer, MeanDiffSteerer, SteeringSpec


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
