"""``python -m steering``: the engine from the command line.

Every subcommand prints a clear ``error: ...`` line and exits with status 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .languages import LANGUAGE_KEYS, LANGUAGES
from .models import ModelLoadError
from .prompts import DEFAULT_PROMPT_SET, PromptSetError

console = Console()


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="Hugging Face id or local directory (default: the embedded model)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when present)")
    parser.add_argument("--dtype", default=None, help="float32, float16, bfloat16 (default: bfloat16 on CUDA, else float32)")


def _load(args):
    from .models import load_model

    with console.status("loading the model…"):
        return load_model(args.model, device=args.device, dtype=args.dtype)


def cmd_model(args) -> int:
    facts = _load(args).facts
    table = Table(title=f"Model {facts.name}", show_header=False)
    for key, value in facts.as_dict().items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)
    return 0


def cmd_prompts(args) -> int:
    from .prompts import PromptSet

    prompts = PromptSet.load(args.file)
    table = Table(title=f"{prompts.name}: {len(prompts)} tasks")
    table.add_column("category")
    table.add_column("tasks", justify="right")
    for lang in LANGUAGE_KEYS:
        table.add_column(LANGUAGES[lang].display, justify="right")
    for category in prompts.categories:
        tasks = [t for t in prompts if t.category == category]
        table.add_row(category, str(len(tasks)), *(str(sum(lang in t.prompts for t in tasks)) for lang in LANGUAGE_KEYS))
    console.print(table)
    console.print(f"valid; fingerprint {prompts.fingerprint()}")
    return 0


def cmd_generate(args) -> int:
    from .generation import GenerationConfig, generate

    model = _load(args)
    config = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    answer = generate(model, args.prompt, config)[0]
    console.print(answer.text, markup=False, highlight=False)
    d = answer.detection
    console.print(
        f"[dim]{answer.n_tokens} tokens · language {d.language or 'unknown'} "
        f"({d.confidence:.0%}, from {d.source}) · {'parses' if d.parses else 'does not parse'}[/dim]"
    )
    return 0


def cmd_detect(args) -> int:
    from .detect import detect_language

    d = detect_language(args.file.read_text(encoding="utf-8"))
    console.print(f"{d.language or 'unknown'}\tconfidence {d.confidence:.2f}\t"
                  f"{'parses' if d.parses else 'syntax errors'}\t(from {d.source})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m steering", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("model", help="load a model and print its facts")
    _model_args(p)
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("prompts", help="validate a JSONL prompt set and summarise it")
    p.add_argument("file", nargs="?", type=Path, default=DEFAULT_PROMPT_SET, help="prompt file (default: the shipped set)")
    p.set_defaults(func=cmd_prompts)

    p = sub.add_parser("generate", help="answer one prompt and detect the answer's language")
    p.add_argument("prompt", help="the prompt text")
    _model_args(p)
    p.add_argument("--temperature", type=float, default=0.0, help="0 for greedy (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=320, help="(default: %(default)s)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("detect", help="detect the language of a code file and check its syntax")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_detect)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ModelLoadError, PromptSetError, ValueError, OSError) as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        return 2
