import json

import pytest

from steering.code.languages import LANGUAGE_KEYS
from steering.code.prompts import MAX_PROMPT_FILE_BYTES, PromptSet, PromptSetError
from steering.interface.cli.main import main

ROW = {"id": "a", "neutral": "Write a function that adds.", "prompts": {"python": "Write a Python function that adds."}}


def jsonl(*rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_shipped_set_covers_forty_tasks_in_four_languages():
    prompts = PromptSet.load()
    assert len(prompts) >= 40
    prompts.require(*LANGUAGE_KEYS)
    assert len(set(prompts.ids)) == len(prompts)
    assert {"linear_algebra", "ode", "sorting", "statistics", "signal", "monte_carlo"} <= set(prompts.categories)
    for task in prompts:
        assert not any(word in task.neutral for word in ("Python", "C++", "Java", "Julia"))
        assert task.paraphrases, "held-out paraphrases ship with every task"
        assert "C++" in task.prompts["cpp"] and "Julia" in task.prompts["julia"]


def test_any_file_of_the_format_loads(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(jsonl(ROW, {**ROW, "id": "b", "category": "stats", "paraphrases": ["Add them."]}))
    prompts = PromptSet.load(path)
    assert prompts.ids == ["a", "b"]
    assert prompts.task("b").paraphrases == ("Add them.",)
    assert PromptSet.from_text(prompts.to_jsonl()).fingerprint() == prompts.fingerprint()


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("{not json\n", "line 1: not valid JSON"),
        (jsonl(ROW, ROW), "duplicate id 'a'"),
        (jsonl({"id": "a", "prompts": {}}), "missing field(s) neutral"),
        (jsonl({**ROW, "prompts": {"rust": "x"}}), "unknown language(s) rust"),
        (jsonl({**ROW, "neutral": "  "}), "'neutral' must be a non-empty string"),
        (jsonl([1, 2]), "expected a JSON object"),
        (jsonl({**ROW, "paraphrases": "one"}), "'paraphrases' must be a list"),
    ],
)
def test_bad_prompt_files_say_what_is_wrong(text, message):
    with pytest.raises(PromptSetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        PromptSet.from_text(text, "f.jsonl")


def test_non_utf8_and_oversized_files_are_refused(tmp_path):
    with pytest.raises(PromptSetError, match="not UTF-8"):
        PromptSet.from_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(PromptSetError, match="over the"):
        PromptSet.from_bytes(b" " * (MAX_PROMPT_FILE_BYTES + 1))
    with pytest.raises(PromptSetError, match="no prompt file"):
        PromptSet.load(tmp_path / "absent.jsonl")


def test_require_names_tasks_missing_a_language():
    prompts = PromptSet.from_text(jsonl(ROW))
    with pytest.raises(PromptSetError, match="1 task\\(s\\) have no cpp prompt: a"):
        prompts.require("cpp")


def test_head_spreads_over_categories():
    prompts = PromptSet.load()
    small = prompts.head(8)
    assert len(small) == 8
    assert len(set(t.category for t in small)) == 8


def test_command_line_validates_prompt_files(tmp_path, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text(jsonl(ROW))
    assert main(["prompts", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(jsonl(ROW, ROW))
    assert main(["prompts", str(bad)]) == 2
    assert "duplicate id" in capsys.readouterr().out
