"""The table of limits (``steering.core.limits``): each bound declared once, checked where a value
enters, refused in one line that names the input; GGUF headers walked within the file's size;
worker counts and Ray addresses refused before anything starts; the Steer page's address read
parameter by parameter."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from steering.core.limits import LIMITS, LimitError, check, limits_page, shown
from steering.interface.cli.main import main
from steering.methods.registry import alpha_limits

ROOT = Path(__file__).resolve().parent.parent


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
