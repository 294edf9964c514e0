"""The probe tables: each line's mean over layers, as the Probes page and the summary read it."""

from __future__ import annotations

import pytest


def test_probe_means_are_the_lines_means_over_layers(results):
    """The Probes page's and the CLI summary's means, read from the run once."""
    accuracy = results.probe_accuracy()
    means, early = results.probe_means(), results.probe_means(first=2)
    for label, rows in accuracy.groupby("probe"):
        assert means[label] == pytest.approx(rows["val"].mean(), nan_ok=True)
        first_two = rows[rows["layer"].isin(sorted(set(accuracy["layer"]))[:2])]["val"]
        assert early[label] == pytest.approx(first_two.mean(), nan_ok=True)
    assert set(means) == set(accuracy["probe"])
