"""``python -m steering``: the engine from the command line.

One error boundary (``main``): every failure ends in one plain-text ``error: ...`` line, status 2
for bad input and 1 for anything unexpected (its traceback only with ``--debug``); Ctrl-C says
what is kept and how to resume.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table
from rich.text import Text

from ...code.languages import LANGUAGE_KEYS, LANGUAGES
from ...code.prompts import DEFAULT_PROMPT_SET, PromptSetError
from ...core.errors import one_line
from ...core.limits import parser_type
from ...engine.models import ModelLoadError
from ...engine.parallel import ADDRESS_VAR, WorkerError, check_workers, workers
from ...pipeline.stages import PIPELINE, STAGES
from ...reports.summary import console, table
from ...store.schema import DEFAULT_METHOD, PROMPT_SETS
from ...store.storage import StorageError
from .common import load, model_args, open_pipeline, setting_args
from .vectors import add_vector_parsers


def cmd_model(args) -> int:
    model = load(args)
    facts = model.facts
    table = Table(title=f"Model {facts.name}", show_header=False)
    for key, value in facts.as_dict().items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    if model.placement:
        table.add_row("placement", model.placement)
    console.print(table)
    return 0


def cmd_prompts(args) -> int:
    from ...code.prompts import PromptSet

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
    from ...engine.generation import GenerationConfig, generate

    config = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    vector = steerer = None
    if args.control_vector is not None:  # a bad file is refused before the model loads
        from ...pipeline.control_vectors import ControlVector, import_control_vector

        vector = ControlVector.read(args.control_vector)
    model = load(args)
    if vector is not None:
        steerer = import_control_vector(args.control_vector, model, args.control_vector_scale, vector).steerer
    answer = generate(model, args.prompt, config, steerer=steerer)[0]
    console.print(answer.text, highlight=False)
    d = answer.detection
    console.print(f"{answer.n_tokens} tokens · language {d.language or 'unknown'} ({d.confidence:.0%}, from {d.source}) · "
                  f"{'parses' if d.parses else 'does not parse'}", style="dim", highlight=False)
    if answer.stop_reason:
        console.print(f"warning: {answer.stop_reason}", style="yellow", highlight=False, soft_wrap=True)
    return 0


def cmd_limits(args) -> int:
    from ...core.limits import limits_page
    from ...methods.registry import alpha_limits

    print(limits_page(alpha_limits()), end="")
    return 0


def cmd_detect(args) -> int:
    from ...code.detect import detect_language

    if args.file.exists() and not args.file.is_file():  # a pipe or a device would block the read forever
        raise ValueError(f"{args.file.name} is not a regular file: give the path of a code file")
    d = detect_language(args.file.read_text(encoding="utf-8"))
    console.print(f"{d.language or 'unknown'}\tconfidence {d.confidence:.2f}\t"
                  f"{'parses' if d.parses else 'does not parse'}\t(from {d.source})")
    return 0


def cmd_compare(args) -> int:
    from ...reports.compare import Comparison
    from ...core.files import atomic_write_bytes, check_target
    from ...reports.report import build_comparison_report
    from ...reports.summary import print_comparison

    if args.report:
        check_target(args.report, replace=args.force)  # before the runs are read
    comparison = Comparison.of(args.runs)
    if args.set and args.set not in comparison.prompt_sets():
        raise ValueError(f"prompt set {args.set!r} is not evaluated in any of these runs; evaluated: "
                         f"{', '.join(comparison.prompt_sets()) or 'none'}")
    if args.task and args.task not in comparison.runs[0].prompts.ids:
        raise ValueError(f"task {args.task!r} is not in the runs' prompt set")
    print_comparison(comparison, args.set, args.method, args.task)
    if args.report:
        atomic_write_bytes(args.report, build_comparison_report(comparison, args.set, args.method, args.task).encode(),
                           replace=args.force)
        console.print(f"wrote {args.report}", highlight=False, soft_wrap=True)
    return 0


# --- the G-ACT pipeline -----------------------------------------------------------------------


def cmd_stage(args) -> int:
    from ...methods.registry import METHODS
    from ...pipeline.results import RunResults
    from ...store.schema import PROMPT_SETS
    from ...reports.summary import print_one_off, print_summary

    check_workers(args.workers)  # before the model loads
    pipeline = open_pipeline(args, new_run=args.command in ("run", "bias", "extract"))
    asked = getattr(args, "method", [DEFAULT_METHOD])
    methods = list(METHODS) if "all" in asked else asked
    prompt_sets = {None: list(pipeline.settings.eval_sets), "both": list(PROMPT_SETS)}.get(
        getattr(args, "prompt_set", None), [getattr(args, "prompt_set", None)])
    one_off = []
    try:
        with pipeline.writing(), workers(pipeline.model, pipeline.model_ref, args.workers):  # one lock for every stage
            if args.command == "run":
                done = pipeline.done_stages()
                if done:
                    console.print(f"resuming run {pipeline.run.dir.name!r}: already done: {', '.join(done)}")
                pipeline.run_all(resume=True)
            for name in methods if args.command == "eval" else []:
                for prompt_set in prompt_sets:
                    result = pipeline.run_stage("eval", method=name, prompt_set=prompt_set)
                    if pipeline.one_off:
                        one_off.append(result)
            if args.command not in ("run", "eval"):
                pipeline.run_stage(args.command)
    finally:
        pipeline.progress.stop()
    if pipeline.one_off:
        print_one_off(one_off, pipeline.one_off)
        return 0
    print_summary(RunResults(pipeline.run.dir))
    seconds = pipeline.stage_seconds()
    table("Time per stage", ["stage", "seconds"], [[stage, f"{value:.1f}"] for stage, value in seconds.items()]
           + [["total", f"{sum(seconds.values()):.1f}"]])
    console.print(f"run saved in {pipeline.run.dir}")
    return 0


def cmd_steer(args) -> int:
    from ...pipeline.evaluation import side_by_side
    from ...engine.generation import GenerationConfig

    pipeline = open_pipeline(args, new_run=False)
    pipeline.progress.stop()
    steerer = pipeline.steerer(args.method)
    config = GenerationConfig(temperature=args.temperature, seed=pipeline.settings.seed,
                              max_new_tokens=pipeline.settings.max_new_tokens)
    base, steered = side_by_side(pipeline.model, args.prompt, steerer, config)
    for title, answer in (("baseline", base), (f"steered ({args.method}, layers {list(steerer.spec.layers)})", steered)):
        d = answer.detection
        console.rule(f"{title}: {d.language or 'unknown'} ({d.confidence:.0%}), "
                     f"{'parses' if d.parses else 'does not parse'}, {answer.n_tokens} tokens")
        console.print(answer.text, highlight=False)
        if answer.stop_reason:
            console.print(f"note: this answer {answer.stop_reason}", soft_wrap=True)
    return 0


def _stage_parsers(sub) -> None:
    """One subcommand per stage, and ``run`` for them all."""
    from ...methods.registry import METHODS

    stage_help = {"run": "run the whole pipeline (" + ", ".join(STAGES) + ") and print a summary",
                  **{s.name: s.help for s in PIPELINE}}
    for name, text in stage_help.items():
        p = sub.add_parser(name, help=text, description=text)
        if name in ("run", "bias", "extract"):
            p.add_argument("--prompts", type=Path, default=DEFAULT_PROMPT_SET, help="JSONL prompt set (default: the shipped set)")
            p.add_argument("--out", type=Path, required=True, help="run directory to create, or a run to resume with the same settings")
            p.add_argument("--overwrite", action="store_true", help="clear a run made with other settings, model or prompts and start it again")
            setting_args(p, "new")
        else:
            p.add_argument("run_dir", type=Path, help="an existing run directory")
        model_args(p)
        p.add_argument("--workers", type=parser_type("workers"), default=None, metavar="N",
                       help=f"decode on N Ray replicas of the model (a local cluster, or ${ADDRESS_VAR}'s); default: here")
        setting_args(p, "tune")
        if name == "eval":
            p.add_argument("--method", default=[DEFAULT_METHOD], nargs="+", choices=[*METHODS, "all"],
                           help="; ".join(f"{m.name}: {m.label}" for m in METHODS.values())
                           + "; all: each in turn (default: %(default)s)")
            p.add_argument("--prompt-set", default=None, choices=["neutral", "heldout", "both"],
                           help="the neutral prompts, or phrasings no stage fitted on (default: the run's eval_sets, both)")
        p.set_defaults(func=cmd_stage)


def build_parser() -> argparse.ArgumentParser:
    from ...methods.registry import DEFAULT_METHOD, steering_methods

    parser = argparse.ArgumentParser(prog="python -m steering", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="on an error, raise it with its traceback")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("model", help="load a model and print its facts")
    model_args(p)
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("prompts", help="validate a JSONL prompt set and summarise it")
    p.add_argument("file", nargs="?", type=Path, default=DEFAULT_PROMPT_SET, help="prompt file (default: the shipped set)")
    p.set_defaults(func=cmd_prompts)

    p = sub.add_parser("generate", help="answer one prompt and detect the answer's language")
    p.add_argument("prompt", help="the prompt text")
    model_args(p)
    p.add_argument("--temperature", type=float, default=0.0, help="0 for greedy (default: %(default)s)")
    p.add_argument("--seed", type=parser_type("seed"), default=0, help="sampling seed (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=320, help="(default: %(default)s)")
    p.add_argument("--control-vector", type=Path, default=None, metavar="FILE.gguf",
                   help="steer with a llama.cpp or repeng control vector, as llama.cpp does (every position)")
    p.add_argument("--control-vector-scale", type=parser_type("control_vector_scale"), default=1.0, metavar="S", help="its strength (default: 1)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("limits", help="print the bound of every count, size and address a user can give (docs/limits.md)")
    p.set_defaults(func=cmd_limits)

    p = sub.add_parser("detect", help="detect the language of a code file and check its syntax")
    p.add_argument("file", type=Path, help="the file to check")
    p.set_defaults(func=cmd_detect)

    _stage_parsers(sub)

    p = sub.add_parser("steer", help="answer one prompt with and without steering, side by side")
    p.add_argument("run_dir", type=Path, help="an existing run directory (after the sweep)")
    p.add_argument("--prompt", required=True, help="the prompt text")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=steering_methods(), help="steering method (default: %(default)s)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 for greedy (default: %(default)s)")
    model_args(p)
    setting_args(p, "tune")
    p.set_defaults(func=cmd_steer)

    p = sub.add_parser("compare", help="runs of different models side by side, by relative depth (the Compare page)")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="two or more runs with the same prompt set and target")
    p.add_argument("--set", choices=PROMPT_SETS, default=None, help="the evaluation to show (default: every one all runs have)")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=steering_methods(), help="whose answers --task shows (default: %(default)s)")
    p.add_argument("--task", default=None, help="print this task's stored answers from every model")
    p.add_argument("--report", type=Path, default=None, metavar="FILE.html", help="also write the comparison as an HTML report")
    p.add_argument("--force", action="store_true", help="replace the report file if it exists")
    p.set_defaults(func=cmd_compare)

    add_vector_parsers(sub)
    return parser


def reference(width: int = 100) -> str:
    """``docs/cli.md``: every command's ``--help``, from the parser itself (a test keeps the page equal to it),
    wrapped at ``width`` columns whatever the terminal (as argparse wraps at ``$COLUMNS``, less 2)."""
    from functools import partial

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for each in (parser, *commands.values()):
        each.formatter_class = partial(argparse.HelpFormatter, width=width - 2)
    parts = ["# Command line\n\nGenerated from the parser (`python -c \"from steering.interface.cli.main import reference; "
             "print(reference(), end='')\" > docs/cli.md`); `python -m steering COMMAND --help` prints the same.\n",
             "```text\n" + parser.format_help() + "```\n"]
    parts += [f"## {name}\n\n```text\n{sub.format_help()}```\n" for name, sub in commands.items()]
    return "\n".join(parts)


# What a user can cause: refused with status 2. (RecursionError: a JSON file nested thousands deep.)
BAD_INPUT = (ModelLoadError, PromptSetError, StorageError, ValueError, OSError, RecursionError)
def _say_error(message: str) -> None:
    # Text, not markup: a path or a field holding "[/red]" is printed as it is.
    console.print(Text("error: ", style="red") + Text(message), highlight=False, soft_wrap=True)


def _interrupted(args) -> str:
    """What Ctrl-C leaves: the stages a run records as done, and the command that resumes."""
    from ...store.storage import Run

    run_dir = getattr(args, "out", None) or getattr(args, "run_dir", None)
    try:
        done = list(Run(run_dir).stage_records()) if run_dir else []
    except (StorageError, OSError):
        done = []
    kept = f"stages done and kept: {', '.join(done)}" if done else "no stage finished"
    return f"interrupted; {kept}. The same command resumes where it stopped."


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyboardInterrupt, Exception) as err:  # the boundary: one line, the traceback only with --debug
        if args.debug:
            raise
        if isinstance(err, KeyboardInterrupt):
            _say_error(_interrupted(args))
            return 130
        if isinstance(err, BAD_INPUT):
            _say_error(one_line(err))
            return 2
        if isinstance(err, WorkerError):
            _say_error(one_line(err))
            return 1
        _say_error(f"unexpected {type(err).__name__}: {one_line(err)} (a bug: rerun with --debug for the traceback)")
        return 1
