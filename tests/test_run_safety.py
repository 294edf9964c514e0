"""Runs that user input cannot reach around: names confined to the runs folder, user folders
never taken over, files written with the umask's mode."""

from __future__ import annotations

import hashlib
import os

import pytest

from steering.cli import main
from steering.storage import Run, StorageError, atomic_write_bytes, run_in


def tree_hashes(root) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


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


def test_written_files_keep_the_umask_mode(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    atomic_write_bytes(tmp_path / "f.json", b"{}")
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temporary file left


def test_run_refuses_a_folder_of_user_files(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "prompts.jsonl").write_text("my own notes\n")
    (folder / "data.csv").write_text("a,b\n")
    before = tree_hashes(folder)
    assert main(["run", "--out", str(folder)]) == 2
    assert "is not a Steerscope run" in capsys.readouterr().out
    assert tree_hashes(folder) == before


def test_a_prompt_longer_than_the_context_is_refused_before_anything_is_written(embedded, tmp_path):
    import json

    from steering.pipeline import Pipeline
    from steering.prompts import PromptSet

    rows = [task.to_json() for task in PromptSet.load().head(4)]
    long = rows[1]
    long["paraphrases"] = ["Write a function. " * 5000]  # about 100,000 characters
    prompts = PromptSet.from_text("\n".join(json.dumps(row) for row in rows))
    with pytest.raises(ValueError, match=f"task '{long['id']}' has a prompt of [0-9]+ tokens .* context is 512 tokens"):
        Pipeline(embedded, prompts, Run(tmp_path / "run", create=True))
    assert not (tmp_path / "run").exists()
