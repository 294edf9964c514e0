"""Runs that user input cannot reach around: names confined to the runs folder, user folders
never taken over, files written with the umask's mode."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DASHBOARD_RUN, hashes
from steering.interface.cli.main import main
from steering.pipeline.results import RunResults
from steering.pipeline.stages import STAGES
from steering.store.schema import is_evaluation
from steering.store.storage import Run, RunLockedError, StorageError, run_in


def test_run_refuses_a_folder_of_user_files(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "prompts.jsonl").write_text("my own notes\n")
    (folder / "data.csv").write_text("a,b\n")
    before = hashes(folder)
    assert main(["run", "--out", str(folder)]) == 2
    assert "is not a Steerscope run" in capsys.readouterr().out
    assert hashes(folder) == before


def test_a_prompt_longer_than_the_context_is_refused_before_anything_is_written(embedded, tmp_path):
    import json

    from steering.code.prompts import PromptSet
    from steering.pipeline.runner import Pipeline

    rows = [task.to_json() for task in PromptSet.load().head(4)]
    long = rows[1]
    long["paraphrases"] = ["Write a function. " * 5000]  # about 100,000 characters
    prompts = PromptSet.from_text("\n".join(json.dumps(row) for row in rows))
    with pytest.raises(ValueError, match=f"task '{long['id']}' has a prompt of [0-9]+ tokens .* context is 512 tokens"):
        Pipeline(embedded, prompts, Run(tmp_path / "run", create=True))
    assert not (tmp_path / "run").exists()


# --- crashes and concurrent writers: real processes, killed with SIGKILL ---

ROOT = Path(__file__).resolve().parent.parent


def _start(*args) -> subprocess.Popen:
    env = {**os.environ, "STEERSCOPE_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "steering", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _records(run_dir: Path) -> dict:
    try:
        return Run(run_dir).stage_records() if (run_dir / "settings.json").is_file() else {}
    except StorageError:  # the database is being created
        return {}


def _kill_when(process: subprocess.Popen, run_dir: Path, ready) -> dict:
    """SIGKILL ``process`` as soon as ``ready(records)``; the records it left."""
    deadline = time.monotonic() + 600
    while not ready(_records(run_dir)):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return _records(run_dir)


def _assert_consistent(run_dir: Path) -> list[str]:
    """Done stages are a prefix of the pipeline's order (no stage reported done over a later
    one's absence), each recorded with the run's inputs, and their files are readable."""
    results = RunResults(run_dir)  # verifies every file
    named = {"eval" if is_evaluation(s) else s for s in results.done_stages}  # eval_gact, heldout_gact: "eval"
    done = [s for s in STAGES if s in named]
    assert done == list(STAGES[:len(done)]), done
    assert [s for s in STAGES if results.has(s)] == done  # what the dashboard shows as done
    assert not results.stale_stages
    return done


@pytest.fixture
def small_prompts(tmp_path):
    from steering.code.prompts import PromptSet

    path = tmp_path / "four.jsonl"
    path.write_text(PromptSet.load().head(4).to_jsonl())
    return path


def test_killed_runs_resume_and_never_report_mixed_stages(dashboard_runs, small_prompts, tmp_path):
    earlier = tmp_path / "runs" / "earlier"
    shutil.copytree(dashboard_runs / DASHBOARD_RUN, earlier)
    before = hashes(earlier)
    run_dir = tmp_path / "runs" / "killed"
    args = ["run", "--prompts", str(small_prompts), "--out", str(run_dir)]

    # Killed during bias (nothing done), during cluster/probe (after extract), during refine (after sweep).
    moments = [lambda r: (run_dir / "settings.json").is_file(), lambda r: "extract" in r, lambda r: "sweep" in r]
    finished = {}
    for ready in moments:
        process = _start(*args)
        _kill_when(process, run_dir, ready)
        done = _assert_consistent(run_dir)
        assert all(finished[s] == _records(run_dir)[s]["finished"] for s in finished if s in done)  # not redone
        finished = {s: _records(run_dir)[s]["finished"] for s in done}
        assert hashes(earlier) == before

    process = _start(*args)  # resumes: says what is already done, redoes none of it
    out, _ = process.communicate(timeout=900)
    assert process.returncode == 0, out
    assert f"already done: {', '.join(finished)}" in out
    records = _records(run_dir)
    assert all(records[s]["finished"] == finished[s] for s in finished)
    assert _assert_consistent(run_dir) == list(STAGES)
    assert not list(run_dir.rglob(".*.tmp"))  # what the kills left was cleaned
    assert hashes(earlier) == before


def test_a_second_writer_gets_the_lock_error_and_nothing_is_lost(small_prompts, tmp_path):
    run_dir = tmp_path / "shared"
    first = _start("run", "--prompts", str(small_prompts), "--out", str(run_dir))
    deadline = time.monotonic() + 300
    while not (run_dir / "settings.json").is_file():  # the first writer holds the lock from its first write
        assert first.poll() is None and time.monotonic() < deadline, first.stdout.read()
        time.sleep(0.02)
    second = subprocess.run([sys.executable, "-m", "steering", "run", "--prompts", str(small_prompts), "--out",
                             str(run_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2
    assert "is being written by another process or session" in second.stdout
    with pytest.raises(RunLockedError):  # the same from Python, in this process
        with Run(run_dir).writing():
            pass
    out, _ = first.communicate(timeout=900)
    assert first.returncode == 0, out
    assert _assert_consistent(run_dir) == list(STAGES)  # the first writer's run is whole


def test_a_run_from_before_stage_records_keeps_its_stages_when_written_again(dashboard_runs, embedded, tmp_path):
    import sqlite3

    from steering.pipeline.runner import Pipeline

    run_dir = tmp_path / "old"
    shutil.copytree(dashboard_runs / DASHBOARD_RUN, run_dir)
    with sqlite3.connect(run_dir / "run.sqlite") as db:  # as a run written before the table existed
        db.execute("DROP TABLE stages")
    old = RunResults(run_dir)
    assert old.has("probe") and old.has("eval") and "eval_gact" in old.legacy_stages()
    Pipeline.reopen(run_dir, embedded).run_stage("cluster")
    now = RunResults(run_dir)
    assert now.has("cluster") and now.has("bias") and now.has("extract")  # adopted, not hidden
    assert not now.has("probe") and not now.has("eval")  # after the rewritten clusters: no longer done


def test_runs_are_known_by_their_marker_and_links_in_the_runs_folder_are_refused(dashboard_runs, tmp_path):
    """Issue 18: a folder with another program's settings.json is no run; a link in the runs
    folder opens nothing outside it; a run's files are written only by its own writer."""
    from steering.core.files import WriteRefused, atomic_write_bytes, is_run
    from steering.pipeline.results import list_runs

    root = tmp_path / "runs"
    shutil.copytree(dashboard_runs / DASHBOARD_RUN, root / "real")
    (root / "theirs").mkdir()
    (root / "theirs" / "settings.json").write_text('{"theme": "dark"}')
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(dashboard_runs / DASHBOARD_RUN, elsewhere)
    (root / "escape").symlink_to(elsewhere)
    assert is_run(root / "real") and is_run(elsewhere) and not is_run(root / "theirs")
    assert list_runs(root) == [root / "real"]
    with pytest.raises(StorageError, match="is a link"):
        run_in(root, "escape")
    with pytest.raises(StorageError, match="not a Steerscope run"):
        Run(root / "theirs")
    before = hashes(root / "real")
    with pytest.raises(WriteRefused, match="inside run 'real'"):
        atomic_write_bytes(root / "real" / "tensors" / "new.safetensors", b"x")
    assert hashes(root / "real") == before


def _confined(script: str) -> subprocess.CompletedProcess:
    """``script`` (sh) in a mount namespace of its own, where it may mount a read-only or a small
    disk that nothing outside sees; skipped where the machine does not allow it."""
    allowed = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True)
    if allowed.returncode != 0:
        pytest.skip("this machine does not let a test mount a disk of its own (unshare -m)")
    env = {**os.environ, "STEERSCOPE_THREADS": "1", "PY": sys.executable}
    return subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, env=env, text=True, capture_output=True,
                          timeout=300)


@pytest.mark.parametrize("disk, words", [("read-only", "cannot be written (Read-only file system)"),
                                         ("nearly-full", "MiB free; a stage needs at least 64 MiB")])
def test_a_run_that_cannot_be_written_is_refused_before_any_stage(dashboard_runs, tmp_path, disk, words):
    """Issue 18: a read-only run or a full disk ended in SQLite's traceback after minutes of
    generation. The run's lock now checks that its files can be written, and that the disk has
    room, before any stage starts: one line, exit 2, nothing changed."""
    run = tmp_path / "disk" / "run"
    mount = {"read-only": f"cp -r {dashboard_runs / DASHBOARD_RUN} {run} && mount --bind {run} {run} && "
                          f"mount -o remount,ro,bind {run} {run}",
             "nearly-full": f"mount -t tmpfs -o size=48m tmpfs {run.parent} && cp -r {dashboard_runs / DASHBOARD_RUN} {run}"}
    run.parent.mkdir()
    snapshot = "find {0} -type f | sort | xargs sha256sum".format(run)
    done = _confined(f"{mount[disk]} && {snapshot} > {tmp_path}/before && $PY -m steering cluster {run}; "
                     f"code=$?; {snapshot} > {tmp_path}/after; exit $code")
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2 and words in lines[-1] and lines[-1].startswith("error:"), done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert (tmp_path / "before").read_text() == (tmp_path / "after").read_text() != ""


def test_a_run_written_to_a_log_says_when_each_stage_starts_and_ends(small_prompts, tmp_path, monkeypatch, capsys):
    """Issue 19: outside a terminal, bars print nothing until the end; the CLI prints a line when
    each stage starts and ends, with times, and progress lines between (every 30 s; here every
    report, so that a short run shows them)."""
    import re

    import steering.interface.cli.common as cli

    monkeypatch.setattr(cli, "LOG_EVERY", 0.0)
    assert main(["run", "--prompts", str(small_prompts), "--out", str(tmp_path / "r")]) == 0
    lines = capsys.readouterr().out.splitlines()
    stamp = r"^\[\d+ (s|min \d\d s)\] "
    for stage in ("bias", "extract", "sweep"):
        assert any(re.match(stamp + stage + r": started$", line) for line in lines), lines
        assert any(re.match(stamp + stage + r": done in \d+", line) for line in lines), lines
    assert any(re.match(stamp + r"\S+: \d+/\d+ · \d+ s elapsed", line) for line in lines), lines


def test_a_log_times_each_stage_from_its_own_start_under_a_shared_label(monkeypatch, capsys):
    """Both evaluations report as "eval": the second's elapsed time starts at its own start."""
    from types import SimpleNamespace

    import steering.interface.cli.common as cli

    now = [0.0]
    monkeypatch.setattr(cli, "time", SimpleNamespace(monotonic=lambda: now[0]))
    report = cli.log_progress()
    for start, stage in ((0.0, "eval_gact"), (100.0, "heldout_gact")):
        now[0] = start
        report.stage(stage)
        report("eval", 0, 10)
        now[0] = start + 40
        report("eval", 5, 10)
        report.stage(stage, 50.0)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("] ")[1] for line in lines if "5/10" in line] == ["eval: 5/10 · 40 s elapsed · about 40 s left"] * 2, lines
