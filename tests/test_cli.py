"""The command line's help and its refusals."""

from __future__ import annotations

import json

import pytest

from steering.interface.cli.main import main


def test_command_line_help_documents_every_option(capsys):
    for command in ("run", "extract", "cluster", "probe", "sweep", "refine", "steer", "eval"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        for line in out.splitlines():
            if line.strip().startswith("--") and "  " in line.strip():
                assert line.strip().split("  ", 1)[1].strip(), f"{command}: option without help: {line}"


def test_command_line_rejects_bad_input_clearly(tmp_path, capsys):
    bad = tmp_path / "dup.jsonl"
    row = {"id": "a", "neutral": "x", "prompts": {"cpp": "y"}}
    bad.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    assert main(["run", "--prompts", str(bad), "--out", str(tmp_path / "r")]) == 2
    out = capsys.readouterr().out
    assert "duplicate id" in out and "Traceback" not in out
