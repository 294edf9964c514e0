"""The table of limits (``steering.core.limits``): each bound declared once, checked where a value
enters, refused in one line that names the input; GGUF headers walked within the file's size;
worker counts and Ray addresses refused before anything starts; the Steer page's address read
parameter by parameter."""

from __future__ import annotations

import re
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from steering.core.limits import LIMITS, LimitError, check, limits_page, shown
from steering.engine.gguf import GGUFError, inspect_gguf
from steering.engine.gguf_layout import GGUFLayoutError, check_layout
from steering.interface.address import parse_steer_address
from steering.interface.cli.main import main
from steering.methods.registry import alpha_limits
from steering.pipeline.control_vectors import ControlVector
from steering.store.storage import StorageError

ROOT = Path(__file__).resolve().parent.parent


def _string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _header(entries: list[bytes], tensors: list[bytes] = ()) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(entries)) + b"".join(entries) + b"".join(tensors)


def _array(key: bytes, item_type: int, count: int) -> bytes:
    return _string(key) + struct.pack("<IIQ", 9, item_type, count)


def test_the_limits_page_is_generated_from_the_code():
    """docs/limits.md is what ``python -m steering limits`` prints, so the page cannot drift."""
    assert (ROOT / "docs" / "limits.md").read_text() == limits_page(alpha_limits())


def test_a_refusal_names_the_input_its_value_and_the_range():
    with pytest.raises(LimitError, match=r"^--seed must be an integer from 0 to 4,294,967,295, got 100,000,000,000,000,000,000,000$"):
        check("seed", 10**23, "--seed")
    with pytest.raises(LimitError, match=r"scale must be a finite number from -100 to 100, got nan"):
        check("control_vector_scale", float("nan"), "scale")
    with pytest.raises(LimitError, match=r"\(this machine's cores\), got 9"):
        check("workers", 9, "--workers", high=2, because="this machine's cores")
    assert check("seed", np.uint64(128)) == 128 and type(check("seed", np.uint64(128))) is int
    assert shown(np.uint64(128)) == "128"  # not np.uint64(128)
    assert shown("x" * 10_000).endswith("(10,000 characters)") and len(shown("x" * 10_000)) < 60
    for limit in LIMITS.values():  # every bound is a real range
        assert limit.high is None or limit.low <= limit.high, limit.name


@pytest.mark.parametrize("item_type", [0, 8, 12])  # uint8, string, float64
def test_a_gguf_array_of_two_to_the_forty_entries_is_refused_in_under_a_second_and_100_mb(tmp_path, item_type):
    """Issue 31: a 69-byte file declaring 2^40 entries grew past 4 GiB in gguf's reader. Each
    reader (the header walk, the control vector reader, the checkpoint inspector) now refuses it
    by the field's name, in bounded time and memory."""
    path = tmp_path / "hostile.gguf"
    path.write_bytes(_header([_array(b"tokenizer.ggml.tokens", item_type, 2**40)]))
    for read, error in ((check_layout, GGUFLayoutError), (ControlVector.read, StorageError), (inspect_gguf, GGUFError)):
        tracemalloc.start()
        start = time.perf_counter()
        with pytest.raises(error, match="'tokenizer.ggml.tokens'.*1,099,511,627,776"):
            read(path)
        seconds, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert seconds < 1 and peak < 100 * 2**20, (read, seconds, peak)


@pytest.mark.parametrize("data, words", [
    (b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0), "the tensor count"),
    (b"GGUF" + struct.pack("<IQQ", 3, 0, 2**40), "the metadata count"),
    (b"GGUF" + struct.pack("<IQQ", 9, 0, 0), "version 9"),
    (b"GGML" + struct.pack("<IQQ", 3, 0, 0), "does not start with 'GGUF'"),
    (_header([_string(b"k") + struct.pack("<IQ", 8, 2**62)]), "the length of 'k'"),
    (_header([_string(b"k") + struct.pack("<IQ", 8, 1000)]), "needs 1,000 bytes"),
    (_header([_string(b"k") + struct.pack("<I", 77)]), "unknown type 77"),
    (_header([_array(b"k", 4, 1000)]), "the 1,000 entries of 'k'"),
    (_header([_array(b"k", 8, 1000)]), "the 1,000 entries of 'k'"),
    (_header([], [_string(b"w") + struct.pack("<I", 9)]), "the rank of 'w'"),
    (_header([], [_string(b"w") + struct.pack("<IQQIQ", 2, 2**40, 2**40, 0, 0)]), "declares shape"),
    (b"GGUF" + b"\0" * 10, "a GGUF header takes 24 (truncated or corrupt)"),
])
def test_each_gguf_header_field_is_checked_against_the_file(tmp_path, data, words):
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(GGUFLayoutError, match=re.escape(words)) as raised:
        check_layout(path)
    assert "\n" not in str(raised.value) and "bad.gguf" in str(raised.value)


def _control_vector_bytes(width: int, blocks: list[int]) -> bytes:
    return ControlVector({b: torch.linspace(-1, 1, width) for b in blocks}, "llama", {"steerscope.method": "mean_diff"}).to_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_corrupted_control_vector_is_read_or_refused_in_one_line(tmp_path, data):
    """Hypothesis: a valid control vector, then one field's bytes overwritten (any offset, any
    value, possibly truncated): the reader returns a vector or a StorageError, never another
    exception, a hang or a large allocation."""
    good = _control_vector_bytes(data.draw(st.sampled_from([4, 16, 128])), data.draw(st.lists(
        st.integers(1, 30), min_size=1, max_size=3, unique=True)))
    offset = data.draw(st.integers(0, len(good) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=9) | st.sampled_from(
        [struct.pack("<Q", 2**40), struct.pack("<Q", 2**63 - 1), struct.pack("<I", 9), b"\xff" * 8]))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(good))))
    bad = (good[:offset] + patch + good[offset + len(patch):])[:cut]
    path = tmp_path / "cv.gguf"
    path.write_bytes(bad)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        ControlVector.read(path)
    except StorageError as err:
        assert "\n" not in str(err) and len(str(err)) < 1000
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - start < 2 and peak < 100 * 2**20


def test_the_header_walk_passes_a_file_gguf_wrote(tmp_path):
    path = tmp_path / "ok.gguf"
    path.write_bytes(_control_vector_bytes(128, [1, 5, 7]))
    assert check_layout(path) == {"version": 3, "tensors": 3, "metadata": 4}  # architecture, hint, count, method
    assert set(ControlVector.read(path).directions) == {1, 5, 7}


def test_more_workers_than_cores_are_refused_before_ray_starts(monkeypatch, tmp_path, capsys):
    import ray

    monkeypatch.delenv("STEERSCOPE_RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started"))
    assert main(["run", "--workers", "10000", "--out", str(tmp_path / "new")]) == 2
    out = capsys.readouterr()
    assert "--workers must be an integer from 1 to" in (out.out + out.err).splitlines()[-1]
    assert not (tmp_path / "new").exists()


def test_a_ray_address_where_nothing_listens_is_refused_within_ten_seconds(monkeypatch, tmp_path, capsys):
    import socket

    import ray

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("STEERSCOPE_RAY_ADDRESS", f"127.0.0.1:{port}")
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started"))
    start = time.monotonic()
    assert main(["run", "--workers", "2", "--out", str(tmp_path / "new")]) == 2
    assert time.monotonic() - start < 10
    out = capsys.readouterr()
    assert f"STEERSCOPE_RAY_ADDRESS=127.0.0.1:{port}: no Ray cluster answered within 5 s" in out.out + out.err
    assert not (tmp_path / "new").exists()


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


def test_generate_says_why_an_answer_stopped_and_prints_no_markup(monkeypatch, capsys):
    """Issue 31: ``--control-vector-scale 1e308`` gave an empty answer, "0 tokens" and no reason
    (the scale is now refused; any non-finite stop is said), and the footer printed ``[dim]``."""
    import steering.engine.generation as generation

    real = generation.generate

    def stopped(*args, **kwargs):
        answers = real(*args, **kwargs)
        answers[0].stop_reason = "stopped after 0 tokens: the model's next-token scores became NaN or infinite"
        return answers

    monkeypatch.setattr(generation, "generate", stopped)
    assert main(["generate", "Sort a list.", "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert "[dim]" not in out and "4 tokens" in out
    assert "warning: stopped after 0 tokens: the model's next-token scores became NaN or infinite" in out
