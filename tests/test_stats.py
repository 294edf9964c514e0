"""Bootstrap intervals over tasks, paired and unpaired differences, the majority baseline."""

from __future__ import annotations

import numpy as np
import pytest

from steering.core.stats import (bootstrap_interval, excludes_zero, majority_accuracy, paired_interval, rate_interval,
                                 unpaired_difference)


def test_bootstrap_interval_resamples_tasks_and_holds_the_mean():
    correct = np.array([1, 1, 1, 1, 0, 0, 1, 1], dtype=bool)
    low, high = bootstrap_interval(correct)
    assert low <= correct.mean() <= high and high - low > 0.1
    # Two tasks of four rows each, one all right and one half wrong: resampling tasks, not rows.
    low_t, high_t = bootstrap_interval(correct, groups=[0, 0, 0, 0, 1, 1, 1, 1])
    assert (low_t, high_t) == (0.5, 1.0)
    assert np.isnan(bootstrap_interval([])[0])
    assert majority_accuracy([0, 0, 1], [0, 1, 1, 1]) == 0.25


def test_rate_interval_known_answers():
    assert rate_interval([1.0] * 10, list("abcdefghij")) == (1.0, 1.0, 1.0)
    assert rate_interval([float("nan")] * 3, list("abc")) == (None, None, None)
    # Two tasks, one always right and one always wrong: resampled means are 0, 0.5 or 1.
    rate, low, high = rate_interval([1, 1, 0, 0], ["a", "a", "b", "b"])
    assert (rate, low, high) == (0.5, 0.0, 1.0)
    # 40 independent tasks at 75%: about the binomial interval, +-1.96 * sqrt(.75 * .25 / 40) = +-0.134.
    rate, low, high = rate_interval([1, 1, 1, 0] * 10, [f"t{i}" for i in range(40)], n=4000)
    assert rate == 0.75 and abs((0.75 - low) - 0.134) < 0.03 and abs((high - 0.75) - 0.134) < 0.03
    # NaN rows do not count; rows of one task move together (fewer units, wider interval).
    assert rate_interval([1, float("nan"), 0, 0], ["a", "a", "b", "c"])[0] == pytest.approx(1 / 3)
    together = rate_interval([float((i // 4) % 4 != 3) for i in range(40)], [f"t{i // 4}" for i in range(40)])
    assert together[2] - together[1] > high - low


def test_paired_interval_known_answers():
    tasks = [f"t{i}" for i in range(20)]
    a = np.array([1.0] * 10 + [0.0] * 10)
    assert paired_interval(a, a, tasks) == (0.0, 0.0, 0.0)
    assert paired_interval(2 * (a + 0.5), a + 0.5, tasks, "ratio") == (2.0, 2.0, 2.0)
    shifted = np.array([1.0] * 15 + [0.0] * 5)  # five more tasks succeed, none fewer
    diff = paired_interval(shifted, a, tasks)
    assert diff[0] == 0.25 and 0 < diff[1] <= diff[2] and excludes_zero(diff)
    # unpaired, the same two rates' intervals overlap: pairing is what makes the difference clear
    assert rate_interval(shifted, tasks)[1] < rate_interval(a, tasks)[2]
    assert not excludes_zero(paired_interval(a, a[::-1], tasks))
    with pytest.raises(ValueError, match="must align"):
        paired_interval(a, a[:5], tasks)


def test_the_difference_of_two_probes_validated_on_their_own_rows_resamples_each_sides_tasks():
    """The paper's headline compares G-ACT's probe with ACT's heads, validated on different rows:
    one layer gives that layer's difference; several, the mean over layers, with each side's
    tasks drawn once per replicate for all its layers."""
    a = ([1, 1, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2])
    b = ([0, 1, 0], ["x", "y", "z"])
    point, low, high = unpaired_difference([a], [b])
    assert point == pytest.approx(5 / 6 - 1 / 3) and low <= point <= high
    same = unpaired_difference([a, a], [b, b])
    assert same[0] == pytest.approx(point) and same[1:] == pytest.approx((low, high))  # one draw for both layers
    assert unpaired_difference([([1, 1], [0, 1])], [([1, 1], [0, 1])]) == (0.0, 0.0, 0.0)
    sparse = unpaired_difference([a, a], [([1], ["x"]), ([0, 1], ["y", "z"])])  # some draws miss task x
    assert np.isfinite(sparse[1:]).all() and sparse[1] <= sparse[0] <= sparse[2]
    with pytest.raises(ValueError, match="one \\(values, tasks\\) per layer"):
        unpaired_difference([a], [b, b])
