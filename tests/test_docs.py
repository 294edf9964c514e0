"""The README is a front door and docs/ the manual: every command they show parses with the CLI's
own parser, every link resolves, the command-line page is the parser's own help, and the README
stays short."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from steering.interface.cli.main import build_parser, reference

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MANUAL = ["guide", "cli", "python-api", "methods", "architecture", "llama-cpp", "scaling", "development", "limits"]


def commands(text: str) -> list[str]:
    """``python -m steering ...`` lines of the page's shell blocks (fenced ``bash``/``sh``/untagged,
    or indented), joined across ``\\`` continuations."""
    blocks, current, fence = [], None, None
    for line in text.splitlines():
        if line.startswith("```"):
            if fence is None:
                fence = line[3:].strip()
                current = [] if fence in ("", "bash", "sh", "shell") else None
            else:
                if current is not None:
                    blocks.append("\n".join(current))
                fence, current = None, None
        elif current is not None:
            current.append(line)
    blocks += ["\n".join(line[4:] for line in block.splitlines())
               for block in re.findall(r"(?:^|\n\n)((?: {4}.*\n?)+)", re.sub(r"```.*?```", "", text, flags=re.S))]
    found = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            start = line.find("python -m steering ")
            if start >= 0 and not line.startswith("#"):
                found.append(line[start:])
    return found


def argv(command: str) -> list[str]:
    command = re.sub(r'"\$\([^)]*\)"|\$\([^)]*\)|"\$\w+"|\$\w+', "VALUE", command)  # shell values as placeholders
    words = shlex.split(command, comments=True)
    for stop in ("|", "&&", ";", ">", "2>"):
        if stop in words:
            words = words[: words.index(stop)]
    return words[3:]


def test_the_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert not re.search(r"\bissue \d+", text, re.I)  # no history: that lives in docs/results
    for page in MANUAL:
        assert (ROOT / "docs" / f"{page}.md").is_file(), page
        assert f"docs/{page}.md" in text, page
    assert any((ROOT / "docs" / "results").glob("20*.md"))


def test_the_command_line_page_is_the_parsers_help():
    assert (ROOT / "docs" / "cli.md").read_text() == reference()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_shown_parses(page):
    parser = build_parser()
    for command in commands(page.read_text()):
        if argv(command)[:1] == ["VALUE"]:  # the subcommand is a shell loop's variable
            continue
        try:
            parser.parse_args(argv(command))
        except SystemExit as exit_:
            assert exit_.code == 0, f"{page.name}: {command}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        assert (page.parent / target.split("#")[0]).exists(), f"{page.name}: {target}"


def test_the_reader_finds_commands_in_both_kinds_of_block():
    text = "```bash\npython -m steering run --out runs/a \\\n  --target java  # note\n```\n\n    python -m steering limits\n"
    assert commands(text) == ["python -m steering run --out runs/a    --target java  # note", "python -m steering limits"]
    assert argv(commands(text)[0]) == ["run", "--out", "runs/a", "--target", "java"]
