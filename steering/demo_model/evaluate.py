"""Measure what the embedded model was built to show: it answers in the language it is asked for,
and, asked neutrally, it prefers languages as the corpus was designed to make it."""

from __future__ import annotations

import time
from ..code.languages import LANGUAGE_KEYS, LANGUAGES
from ..code.prompts import PromptSet
from ..engine.generation import GenerationConfig, generate
from ..engine.models import load_model
from ..pipeline.evaluation import language_shares
from .corpus import design_shares


def _progress(label: str, total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="answer", leave=False)


def evaluate(model=None, samples: int = 10, temperature: float = 1.0, n_tasks: int | None = None,
             prompt_set: PromptSet | None = None) -> dict:
    """Greedy explicit-language accuracy, and sampled neutral-prompt language shares."""
    started = time.time()
    loaded = model if hasattr(model, "bridge") else load_model(model)
    tasks = prompt_set or PromptSet.load()
    if n_tasks:
        tasks = tasks.head(n_tasks)
    tasks.require(*LANGUAGE_KEYS)

    explicit_prompts = [(task.id, lang, task.prompts[lang]) for task in tasks for lang in LANGUAGE_KEYS]
    bar = _progress("explicit (greedy)", len(explicit_prompts))
    answers = generate(loaded, [p for _, _, p in explicit_prompts], GenerationConfig(temperature=0.0, batch_size=64),
                       on_answers=bar.update)
    bar.close()
    per_language = {}
    for lang in LANGUAGE_KEYS:
        mine = [a for (_, want, _), a in zip(explicit_prompts, answers) if want == lang]
        per_language[lang] = {
            "accuracy": sum(a.detection.language == lang for a in mine) / len(mine),
            "parse_rate": sum(a.detection.parses for a in mine) / len(mine),
        }
    right = [a for (_, want, _), a in zip(explicit_prompts, answers) if a.detection.language == want]

    def sampled(prompts: list[str], label: str):
        bar = _progress(label, len(prompts))
        out = generate(loaded, prompts, GenerationConfig(temperature=temperature, seed=1000, batch_size=64), on_answers=bar.update)
        bar.close()
        return out

    neutral = sampled([t.neutral for t in tasks for _ in range(samples)], "neutral (sampled)")
    heldout_prompts = [p for t in tasks for i in range(samples) for p in t.paraphrases[i % len(t.paraphrases):][:1]]
    heldout = sampled(heldout_prompts, "held-out phrasings (sampled)") if heldout_prompts else []
    design = design_shares()
    neutral_shares = language_shares(neutral)
    return {
        "model": loaded.facts.name,
        "tasks": len(tasks),
        "explicit": {
            "accuracy": len(right) / len(answers),
            "parse_rate": sum(a.detection.parses for a in answers) / len(answers),
            "parse_rate_in_language": sum(a.detection.parses for a in right) / max(1, len(right)),
            "per_language": per_language,
        },
        "bias": {
            "samples_per_task": samples,
            "temperature": temperature,
            "design": design,
            "neutral": neutral_shares,
            "heldout_phrasings": language_shares(heldout) if heldout else {},
            "max_gap_points": max(abs(neutral_shares[k] - design[k]) * 100 for k in LANGUAGE_KEYS),
            "parse_rate": sum(a.detection.parses for a in neutral) / len(neutral),
        },
        "seconds": round(time.time() - started, 1),
    }


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    explicit = report["explicit"]
    table = Table(title=f"Asked for a language (greedy, {report['tasks']} tasks)")
    for column in ("language", "answers in it", "parse"):
        table.add_column(column, justify="right" if column != "language" else "left")
    for lang, row in explicit["per_language"].items():
        table.add_row(LANGUAGES[lang].display, f"{row['accuracy']:.1%}", f"{row['parse_rate']:.1%}")
    table.add_row("all", f"{explicit['accuracy']:.1%}", f"{explicit['parse_rate']:.1%}", style="bold")
    console.print(table)
    bias = report["bias"]
    table = Table(title=f"Neutral prompts: language shares (T={bias['temperature']}, "
                        f"{bias['samples_per_task']} samples per task)")
    for column in ("language", "corpus design", "measured", "held-out phrasings", "gap (points)"):
        table.add_column(column, justify="right" if column != "language" else "left")
    for lang in LANGUAGE_KEYS:
        measured = bias["neutral"][lang]
        heldout = bias["heldout_phrasings"].get(lang)
        table.add_row(
            LANGUAGES[lang].display, f"{bias['design'][lang]:.1%}", f"{measured:.1%}",
            "-" if heldout is None else f"{heldout:.1%}", f"{(measured - bias['design'][lang]) * 100:+.1f}",
        )
    table.add_row("undetected", "-", f"{bias['neutral']['none']:.1%}",
                  f"{bias['heldout_phrasings'].get('none', 0):.1%}", "")
    console.print(table)
    console.print(f"largest gap to the design: {bias['max_gap_points']:.1f} points; "
                  f"took {report['seconds']:.0f} s")
