"""What the CLI's commands share: the model flags and loading, the settings' flags (built from
``PipelineSettings``), opening a run, and progress with elapsed time (bars in a terminal, a line
every ``LOG_EVERY`` seconds in a log)."""

from __future__ import annotations

import argparse
import time

from rich.text import Text

from ...engine.placement import DEVICE_MAPS, parse_max_memory
from ...pipeline.settings import cli_settings
from ...reports.summary import console
from ...store.storage import StorageError, is_run


def model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="Hugging Face id or local directory (default: the embedded model)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when present)")
    parser.add_argument("--dtype", default=None, help="float32, float16, bfloat16 (default: bfloat16 on CUDA and, for models from 100M parameters, on CPUs with AMX or AVX-512 BF16; else float32; a run's own when it is reopened). `model` says which and why")
    parser.add_argument("--device-map", default=None, choices=DEVICE_MAPS,
                        help="spread a model too large for one device over the GPUs, CPU memory and disk (accelerate)")
    parser.add_argument("--max-memory", nargs="+", default=None, metavar="DEVICE=SIZE",
                        help="with --device-map, the most each device may hold: cuda:0=20GiB cpu=64GiB")


def load(args):
    from ...engine.models import load_model

    with console.status("loading the model…"):
        return load_model(args.model, device=args.device, dtype=args.dtype, device_map=args.device_map,
                          max_memory=parse_max_memory(args.max_memory))


LOG_EVERY = 30.0  # seconds between progress lines in a log


def log_progress():
    """Progress outside a terminal, where bars print nothing until the end (``LogProgress``)."""
    from ...core.progress import LogProgress

    return LogProgress(lambda text: console.print(text, soft_wrap=True), LOG_EVERY, lambda: time.monotonic())


def progress():
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn

    if not console.is_terminal:
        return log_progress()

    from ...core.progress import duration, estimate_left

    class Left(ProgressColumn):
        """Time left as ``progress.estimate_left`` says it (rich's own carries the first units' pace)."""

        def render(self, task):
            left = estimate_left(task.completed, task.total or 0, task.elapsed or 0.0)
            return Text("" if task.finished else "estimating…" if left is None else f"about {duration(left)} left")

    bars = Progress(TextColumn("{task.description:>8}"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f}"),
                    TimeElapsedColumn(), Left(), console=console, transient=False)
    tasks: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        if not bars.live.is_started:
            bars.start()
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    report.stop = bars.stop  # type: ignore[attr-defined]
    return report


def setting_args(p: argparse.ArgumentParser, group: str) -> None:
    """The ``PipelineSettings`` fields the command line offers in ``group`` (``settings.cli_settings``)."""
    for f in cli_settings(group):
        meta, name = f.metadata, f.name
        flag = meta["flag"] or "--" + name.replace("_", "-")
        shown = "''" if f.default == "" else f.default
        help_text = f"{meta['help']} (default: {shown})".replace("%", "%%")
        kind = str(f.type).split("|")[0].strip()
        if kind == "bool":
            p.add_argument(flag, dest=name, action="store_false" if f.default else "store_true", default=None, help=help_text)
        elif kind == "tuple":
            p.add_argument(flag, dest=name, nargs="+", default=None, help=help_text, metavar=flag[2:].upper(),
                           type=int if name.endswith("layers") else float)
        else:
            p.add_argument(flag, dest=name, default=None, help=help_text, type={"int": int, "float": float}.get(kind, str),
                           choices=getattr(meta["check"], "choices", None))


def open_pipeline(args, new_run: bool):
    from ...pipeline.runner import Pipeline
    from ...code.prompts import PromptSet
    from ...pipeline.settings import PipelineSettings
    from ...store.storage import Run

    overrides = {f.name: getattr(args, f.name) for group in ("new", "tune") for f in cli_settings(group)
                 if getattr(args, f.name, None) is not None}
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    if new_run:
        if args.out.exists() and not args.out.is_dir():
            raise StorageError(f"{args.out} is a file, not a run folder: give a new or empty folder")
        if args.out.is_dir() and any(args.out.iterdir()) and not is_run(args.out):
            raise StorageError(f"{args.out} holds files and is not a Steerscope run: give a new or empty folder")
        prompts = PromptSet.load(args.prompts)
        model = load(args)
        return Pipeline(model, prompts, Run(args.out, create=True), PipelineSettings.from_json(overrides),
                        progress=progress(), model_ref=args.model, overwrite=args.overwrite)
    stored = Run(args.run_dir).settings
    args.model = stored.get("model_ref") if args.model is None else args.model
    args.dtype = args.dtype or stored.get("model", {}).get("dtype")  # a run resumes in the precision it was made in
    return Pipeline.reopen(args.run_dir, load(args), one_off=overrides, progress=progress())
