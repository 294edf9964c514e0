"""The training corpus: every task's prompts, rendered in many phrasings, answered with code.

Code lives in ``assets/corpus/<language>/<task id>.<ext>``; ``assets/corpus/tasks.json`` holds
each task's description, family and function names. Neutral prompts are answered in a language
drawn from the task family's bias (``FAMILY_BIAS``), in exact quotas, so the bias the model learns
is the bias designed here.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache

from ..code.languages import LANGUAGE_KEYS, LANGUAGES
from ..code.prompts import ASSETS, DEFAULT_PROMPT_SET, PromptSet, Task
from ..core.files import atomic_write_bytes

CORPUS_DIR = ASSETS / "corpus"

# Neutral phrasings. The last two are held out of training, for evaluation (a fifth of them).
NEUTRAL_TEMPLATES = (
    "Write a function that {desc}.",
    "Implement a function that {desc}.",
    "I need a routine that {desc}.",
    "Can you code a function that {desc}?",
    "Please write code that {desc}.",
    "Create a function which {desc}.",
    "Give me a function that {desc}.",
    "Write a program that {desc}.",
    "Could you implement a routine that {desc}?",
    "Show me code that {desc}.",
)
N_HELDOUT = 2
TRAIN_NEUTRAL = NEUTRAL_TEMPLATES[:-N_HELDOUT]
HELDOUT_NEUTRAL = NEUTRAL_TEMPLATES[-N_HELDOUT:]

EXPLICIT_TEMPLATES = (
    "Write a {lang} function that {desc}.",
    "Implement a function in {lang} that {desc}.",
    "In {lang}, write code that {desc}.",
    "Using {lang}, create a function which {desc}.",
    "Give me {lang} code that {desc}.",
    "I need a {lang} routine that {desc}.",
)

# The designed preference for neutral prompts, per task family, in percent. Linear algebra leans
# to C++, statistics to Python and Julia, sorting to Python and Java (as the paper saw in real
# models); over the 46 shipped tasks this gives about Python 54, Java 20, Julia 16, C++ 9.
FAMILY_BIAS: dict[str, dict[str, int]] = {
    "linear_algebra": {"python": 45, "java": 15, "julia": 18, "cpp": 22},
    "ode": {"python": 52, "java": 15, "julia": 27, "cpp": 6},
    "calculus": {"python": 60, "java": 20, "julia": 15, "cpp": 5},
    "signal": {"python": 55, "java": 20, "julia": 17, "cpp": 8},
    "monte_carlo": {"python": 60, "java": 25, "julia": 10, "cpp": 5},
    "sorting": {"python": 55, "java": 35, "julia": 5, "cpp": 5},
    "statistics": {"python": 62, "java": 10, "julia": 25, "cpp": 3},
    "number_theory": {"python": 60, "java": 25, "julia": 10, "cpp": 5},
}
NEUTRAL_PER_TASK = 40  # neutral answers per task, split between languages by the family's bias
# Answers per task and explicitly asked language (every phrasing, then drawn). Verbose languages
# need more exposures to be written correctly: with 8 each, C++ answers parsed 67% of the time.
EXPLICIT_PER_LANGUAGE = {"python": 7, "cpp": 12, "java": 9, "julia": 6}
VARIANT_RATE = 0.1  # chance of each surface change (name, comments, indentation) in an answer


@dataclass(frozen=True)
class Example:
    task_id: str
    prompt: str
    language: str
    answer: str  # a fenced code block (for neutral prompts, only its opening: see build_examples)
    neutral: bool


@lru_cache(maxsize=None)
def load_tasks() -> tuple[dict, ...]:
    return tuple(json.loads((CORPUS_DIR / "tasks.json").read_text()))


def load_code(task_id: str, language: str) -> str:
    return (CORPUS_DIR / language / f"{task_id}.{LANGUAGES[language].extension}").read_text()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _pascal(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def _rename(code: str, language: str, old: str, new: str) -> str:
    pairs = [(_camel(old), _camel(new)), (_pascal(old), _pascal(new))] if language == "java" else [(old, new)]
    for a, b in pairs:
        code = re.sub(rf"\b{re.escape(a)}\b", b, code)
    return code


def render_variant(code: str, language: str, task: dict, rng: random.Random) -> str:
    """One surface variant of ``code``: the function name, comments and indentation vary."""
    if rng.random() < VARIANT_RATE:
        code = _rename(code, language, task["names"][0], rng.choice(task["names"][1:]))
    if rng.random() < VARIANT_RATE:
        marker = LANGUAGES[language].comment
        code = "".join(line for line in code.splitlines(True) if not line.lstrip().startswith(marker))
    if language != "python" and rng.random() < VARIANT_RATE:
        code = re.sub(r"^((?:    )+)", lambda m: "  " * (len(m.group(1)) // 4), code, flags=re.M)
    return code


def fence(code: str, language: str) -> str:
    return f"```{language}\n{code.rstrip()}\n```"


def opening(code: str, language: str) -> str:
    """The start of a fenced answer: the fence line and the code's first line."""
    return f"```{language}\n{code.splitlines()[0]}\n"


def quotas(bias: dict[str, int], total: int) -> dict[str, int]:
    """Split ``total`` answers between languages in proportion to ``bias`` (largest remainder)."""
    raw = {lang: bias[lang] * total / sum(bias.values()) for lang in LANGUAGE_KEYS}
    counts = {lang: int(share) for lang, share in raw.items()}
    for lang in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[: total - sum(counts.values())]:
        counts[lang] += 1
    return counts


def design_shares() -> dict[str, float]:
    """The corpus's overall language shares for neutral prompts, as designed (fractions)."""
    totals = dict.fromkeys(LANGUAGE_KEYS, 0)
    for task in load_tasks():
        for lang, count in quotas(FAMILY_BIAS[task["category"]], NEUTRAL_PER_TASK).items():
            totals[lang] += count
    grand = sum(totals.values())
    return {lang: count / grand for lang, count in totals.items()}


def build_examples(seed: int = 0) -> list[Example]:
    """One epoch of training examples, in a seeded random order.

    Each seed draws new phrasings, code variants and a new assignment of languages to neutral
    prompts (always in the same quotas), so over epochs the model learns the family's language
    mix rather than memorising which phrasing went with which language.

    Neutral examples teach the *choice* of language: their answers stop after the code's first
    line (and have no end token, so nothing is learned about stopping there). The code itself is
    learned from the explicit examples, at least six per task and language; a model trained on
    full neutral answers saw minority-language code too rarely to write it correctly.
    """
    rng = random.Random(seed)
    examples: list[Example] = []
    for task in load_tasks():
        desc = task["description"]
        for lang in LANGUAGE_KEYS:
            code = load_code(task["id"], lang)
            extra = EXPLICIT_PER_LANGUAGE[lang] - len(EXPLICIT_TEMPLATES)
            for template in [*EXPLICIT_TEMPLATES, *rng.choices(EXPLICIT_TEMPLATES, k=max(0, extra))]:
                prompt = template.format(lang=LANGUAGES[lang].display, desc=desc)
                answer = fence(render_variant(code, lang, task, rng), lang)
                examples.append(Example(task["id"], prompt, lang, answer, neutral=False))
        languages = [
            lang
            for lang, count in quotas(FAMILY_BIAS[task["category"]], NEUTRAL_PER_TASK).items()
            for _ in range(count)
        ]
        rng.shuffle(languages)
        for i, lang in enumerate(languages):
            prompt = TRAIN_NEUTRAL[i % len(TRAIN_NEUTRAL)].format(desc=desc)
            answer = opening(render_variant(load_code(task["id"], lang), lang, task, rng), lang)
            examples.append(Example(task["id"], prompt, lang, answer, neutral=True))
    rng.shuffle(examples)
    return examples


def build_prompt_set() -> PromptSet:
    """The shipped task set: canonical neutral and explicit phrasings, held-out paraphrases."""
    tasks = []
    for task in load_tasks():
        desc = task["description"]
        tasks.append(
            Task(
                id=task["id"],
                category=task["category"],
                neutral=TRAIN_NEUTRAL[0].format(desc=desc),
                prompts={lang: EXPLICIT_TEMPLATES[0].format(lang=LANGUAGES[lang].display, desc=desc)
                         for lang in LANGUAGE_KEYS},
                paraphrases=tuple(t.format(desc=desc) for t in HELDOUT_NEUTRAL),
            )
        )
    return PromptSet(DEFAULT_PROMPT_SET.name, tuple(tasks))


def write_prompt_set() -> None:
    atomic_write_bytes(DEFAULT_PROMPT_SET, build_prompt_set().to_jsonl().encode())
