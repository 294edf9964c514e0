"""The Steer page's address, read parameter by parameter: a bad one named and dropped, the good ones kept."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from steering.interface.address import parse_steer_address


ADDRESS = dict(n_layers=8, methods=["gact", "mean_diff"], tasks={"sort"}, default_method="gact")


@pytest.mark.parametrize("query, kept, words", [
    (dict(layers="99,-1,a", alphas="1,1,1", seed="3"), dict(seed=3), "layers: item 3, 'a', is not an integer"),
    (dict(layers="99,-1", alphas="1,1"), {}, "layers: 99, -1 out of range; this run's model has layers 0 to 7"),
    (dict(layers="2,3", alphas="0.5,0.25", seed="²"), dict(steering={2: 0.5, 3: 0.25}), "seed must be an integer"),
    (dict(layers="1", alphas="1", seed="99999999999999999999"), dict(steering={1: 1.0}), "got 99,999,999,999,999,999,999"),
    (dict(layers="6,6,6", alphas="1,2,3", task="sort"), dict(task="sort"), "layers: a layer is listed twice"),
    (dict(layers="1", alphas="9", method="mean_diff"), dict(method="mean_diff"), "layer 1's alpha 9.0 is out of range"),
    (dict(layers="1,2", alphas="1"), {}, "alphas: 1 given for 2 layers"),
    (dict(task="nope", method="telepathy", seed="7"), dict(seed=7), "task: 'nope' is not a task"),
    (dict(method="telepathy"), {}, "method: 'telepathy' is not one this run can steer with"),
])
def test_the_steer_address_is_read_parameter_by_parameter(query, kept, words):
    """Issue 31: a bad parameter is named and dropped, the good ones kept."""
    got = parse_steer_address(query, **ADDRESS)
    assert {k: v for k, v in vars(got).items() if k != "problems" and v is not None} == kept
    assert any(words in problem for problem in got.problems), got.problems


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["method", "layers", "alphas", "task", "seed", "run"]),
                       st.text(max_size=30) | st.lists(st.integers(-5, 12).map(str) | st.floats().map(str), max_size=4)
                       .map(",".join)))
def test_any_steer_address_gives_values_that_fit_or_named_problems(query):
    got = parse_steer_address(query, **ADDRESS)
    assert all("\n" not in p and len(p) < 300 for p in got.problems)
    if got.steering is not None:
        assert all(0 <= layer < 8 and abs(alpha) <= 8 for layer, alpha in got.steering.items())
        assert len(got.steering) == len(query["layers"].split(",")) if query["layers"].strip() else not got.steering
    assert got.seed is None or 0 <= got.seed < 2**32
    assert got.method in (None, "gact", "mean_diff") and got.task in (None, "sort")
