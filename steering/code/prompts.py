"""Prompt sets: one coding task per line, asked neutrally and in each language.

A prompt set is a JSONL file. Each line is an object with
``id`` (unique string), ``neutral`` (the task asked without naming a language) and
``prompts`` (a map from ``python``/``cpp``/``java``/``julia`` to the task asked in that language).
Optional: ``category`` (task family, used to colour plots) and ``paraphrases`` (other neutral
phrasings, e.g. held out from the embedded model's training).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..core.limits import LIMITS
from .languages import LANGUAGE_KEYS

ASSETS = Path(__file__).resolve().parents[2] / "assets"
DEFAULT_PROMPT_SET = ASSETS / "prompts" / "scientific.jsonl"
MAX_PROMPT_FILE_BYTES = LIMITS["prompt_file_bytes"].high


class PromptSetError(ValueError):
    """A prompt file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Task:
    id: str
    neutral: str
    prompts: dict[str, str]
    category: str = "uncategorised"
    paraphrases: tuple[str, ...] = ()

    def to_json(self) -> dict:
        row = {"id": self.id, "category": self.category, "neutral": self.neutral, "prompts": self.prompts}
        if self.paraphrases:
            row["paraphrases"] = list(self.paraphrases)
        return row


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PromptSetError(f"{where} must be a non-empty string")
    return value


def _parse_task(row, where: str) -> Task:
    if not isinstance(row, dict):
        raise PromptSetError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [key for key in ("id", "neutral", "prompts") if key not in row]
    if missing:
        raise PromptSetError(f"{where}: missing field(s) {', '.join(missing)}")
    prompts = row["prompts"]
    if not isinstance(prompts, dict) or not prompts:
        raise PromptSetError(f"{where}: 'prompts' must be a non-empty object of language -> prompt")
    unknown = sorted(set(prompts) - set(LANGUAGE_KEYS))
    if unknown:
        raise PromptSetError(
            f"{where}: unknown language(s) {', '.join(unknown)} in 'prompts'; "
            f"expected {', '.join(LANGUAGE_KEYS)}"
        )
    paraphrases = row.get("paraphrases", [])
    if not isinstance(paraphrases, list):
        raise PromptSetError(f"{where}: 'paraphrases' must be a list of strings")
    return Task(
        id=_text(row["id"], f"{where}: 'id'"),
        neutral=_text(row["neutral"], f"{where}: 'neutral'"),
        prompts={lang: _text(text, f"{where}: prompts.{lang}") for lang, text in prompts.items()},
        category=_text(row.get("category", "uncategorised"), f"{where}: 'category'"),
        paraphrases=tuple(_text(p, f"{where}: paraphrase") for p in paraphrases),
    )


@dataclass(frozen=True)
class PromptSet:
    name: str
    tasks: tuple[Task, ...] = field(default_factory=tuple)

    @classmethod
    def from_text(cls, text: str, name: str = "prompts") -> "PromptSet":
        tasks: list[Task] = []
        seen: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{name}, line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise PromptSetError(f"{where}: not valid JSON ({err.msg}: column {err.colno})") from None
            except RecursionError:
                raise PromptSetError(f"{where}: nested too deeply to read") from None
            task = _parse_task(row, where)
            if task.id in seen:
                raise PromptSetError(f"{where}: duplicate id {task.id!r} (first on line {seen[task.id]})")
            seen[task.id] = number
            tasks.append(task)
        if not tasks:
            raise PromptSetError(f"{name}: the prompt set is empty")
        return cls(name=name, tasks=tuple(tasks))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "prompts") -> "PromptSet":
        if len(data) > MAX_PROMPT_FILE_BYTES:
            raise PromptSetError(
                f"{name}: {len(data) / 1e6:.1f} MB is over the {MAX_PROMPT_FILE_BYTES // 2**20} MiB limit"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise PromptSetError(f"{name}: not UTF-8 text (bad byte at offset {err.start})") from None
        return cls.from_text(text, name)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "PromptSet":
        """Load a JSONL prompt set; with no path, the shipped scientific task set."""
        path = Path(path) if path is not None else DEFAULT_PROMPT_SET
        if not path.is_file():
            raise PromptSetError(f"no prompt file at {path}")
        return cls.from_bytes(path.read_bytes(), name=path.name)

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)

    @property
    def ids(self) -> list[str]:
        return [task.id for task in self.tasks]

    @property
    def categories(self) -> list[str]:
        return sorted({task.category for task in self.tasks})

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(f"no task {task_id!r} in {self.name}")

    def require(self, *languages: str) -> "PromptSet":
        """Raise unless every task has a prompt for each of ``languages``; return self."""
        for lang in languages:
            lacking = [task.id for task in self.tasks if lang not in task.prompts]
            if lacking:
                shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
                raise PromptSetError(f"{self.name}: {len(lacking)} task(s) have no {lang} prompt: {shown}")
        return self

    def head(self, n: int) -> "PromptSet":
        """The first ``n`` tasks, spread over categories so a small subset still covers them."""
        if n >= len(self.tasks):
            return self
        by_category: dict[str, list[Task]] = {}
        for task in self.tasks:
            by_category.setdefault(task.category, []).append(task)
        picked: list[Task] = []
        while len(picked) < n:
            for group in by_category.values():
                if group and len(picked) < n:
                    picked.append(group.pop(0))
        order = {task.id: i for i, task in enumerate(self.tasks)}
        return PromptSet(f"{self.name}[:{n}]", tuple(sorted(picked, key=lambda t: order[t.id])))

    def fingerprint(self) -> str:
        """A short hash of the content, for cache keys."""
        blob = json.dumps([task.to_json() for task in self.tasks], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_jsonl(self) -> str:
        return "".join(json.dumps(task.to_json(), ensure_ascii=False) + "\n" for task in self.tasks)
