"""A run on disk: names confined to the runs folder, one writer at a time, SQLite errors as one StorageError."""

from __future__ import annotations

import pytest

from steering.store.storage import Run, RunLockedError, StorageError, run_in


@pytest.mark.parametrize("name", ["../outside", "/etc", "a/b", "..", ".hidden", "x" * 300, "", "run name", "a\\b"])
def test_run_names_are_plain_names(tmp_path, name):
    with pytest.raises(StorageError, match="is not a run name") as err:
        run_in(tmp_path, name)
    assert str(tmp_path) not in str(err.value) and len(str(err.value)) < 200


def test_a_good_name_stays_in_the_runs_folder(tmp_path):
    assert run_in(tmp_path, "cpp-2026.11_22") == tmp_path / "cpp-2026.11_22"
    with pytest.raises(StorageError, match="'nothing' is not a Steerscope run") as err:
        Run(tmp_path / "nothing")
    assert str(tmp_path) not in str(err.value)


def test_two_threads_cannot_write_one_run_at_once(tmp_path):
    run = Run(tmp_path / "run", create=True)
    with run.writing():
        with pytest.raises(RunLockedError, match="'run' is being written"):
            with Run(tmp_path / "run", create=True).writing():
                pass
        with run.writing():  # the holder may nest
            run.write_settings({"x": 1})
    with Run(tmp_path / "run").writing():  # released
        pass
    with pytest.raises(RuntimeError, match="outside Run.writing"):
        run.write_settings({"x": 2})


def test_an_sqlite_error_while_a_stage_writes_is_one_storage_error(tmp_path, monkeypatch):
    """Issue 18: a write SQLite refuses (here through a read-only connection, as a read-only file
    gives one) is a StorageError naming the run, not sqlite3's OperationalError."""
    run = Run(tmp_path / "r", create=True)
    with run.writing():
        run.replace_metrics("bias", [("share", None, 0.5, None)])
        monkeypatch.setattr(run, "_connect", lambda write=True, real=run._connect: real(write=False))
        with pytest.raises(StorageError, match="cannot write run.sqlite of run 'r': attempt to write a readonly database"):
            run.replace_metrics("bias", [("share", None, 0.7, None)])
    assert [m["value"] for m in run.metrics("bias")] == [0.5]
