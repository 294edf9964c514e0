"""The default run before and after a change, per stage, side by side: the same ``run`` command
from the code of git revision ``--before`` (unpacked with ``git archive``) and from this working
tree, one after the other on the same machine, with every stage's seconds as each run recorded
them, and whether the two runs' tables are equal.

    python bench/bench_default_run.py --before REV [--model MODEL.gguf] [--tasks N] [--keep DIR [--reuse-before]]

It prints the CPU (figures hold for one CPU model), each run's dtype and why, every stage's
seconds, each selecting method's choice, and the evaluations' fenced, compiling and cut-off
shares with their bootstrap intervals, and whether before's and after's intervals overlap (runs
in different dtypes need not be equal token for token). Leave the machine alone meanwhile, or
the ratios measure the neighbours.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from steering.code.prompts import PromptSet  # noqa: E402
from steering.pipeline.eval_tables import format_interval  # noqa: E402
from steering.pipeline.results import RunResults  # noqa: E402
from steering.store.schema import CHOSEN_ALPHA  # noqa: E402
from steering.store.storage import Run  # noqa: E402
from test_parallel import _tables  # noqa: E402


def unpack(rev: str, where: Path) -> Path:
    """The tree of ``rev`` (its ``steering`` and ``assets``), unpacked at ``where``."""
    archive = subprocess.run(["git", "archive", rev, "steering", "assets"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    return where


def run(tree: Path, model: str | None, prompts: Path, out: Path, log: Path, extra: tuple = ()) -> float:
    command = [sys.executable, "-m", "steering", "run", "--prompts", str(prompts), "--out", str(out), *extra]
    start = time.perf_counter()
    with open(log, "w") as handle:
        subprocess.run(command + (["--model", model] if model else []), cwd=tree, check=True, stdout=handle,
                       stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` gives it (figures hold for one CPU), and its bfloat16 units."""
    from steering.engine.models import cpu_bf16_units

    name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), platform.processor() or "unknown CPU")
    return f"{name}, {os.cpu_count()} cores, bfloat16 units: {cpu_bf16_units() or 'none'}"


MEASURES = ("fenced_target", "compiles", "cut_off")


def _outcomes(run_dir: Path) -> dict[str, tuple]:
    """What a run found, for runs whose tables differ (another dtype, say): the model's dtype
    and why, the chosen layers and alphas, each selecting method's choice, and each evaluation's
    fenced, compiling and cut-off shares with their bootstrap 95% intervals over tasks, as
    ``(text, low, high)`` (the bounds None where there are none)."""
    results = RunResults(run_dir)
    model = results.settings.get("model", {})
    out = {"dtype": (model.get("dtype", "?"), None, None), "dtype because": (model.get("dtype_reason", "-"), None, None)}
    chosen = [(m["layer"], m["value"]) for m in Run(run_dir).metrics("sweep") if m["name"] == CHOSEN_ALPHA]
    out["chosen layers"] = (",".join(str(layer) for layer, _ in chosen), None, None)
    out["chosen alphas"] = (",".join(f"{value:g}" for _, value in chosen), None, None)
    for method, choice in results.selection().items():
        out[f"selection {method}"] = (f"{choice['schedule']} {choice['margin']:g}x", None, None)
    for prompt_set in ("neutral", "heldout"):
        for row, values in results.method_table(prompt_set, intervals=True).iterrows():
            for measure in MEASURES:
                value, low, high = values[measure]
                out[f"{prompt_set} {row} {measure}"] = (format_interval((value, low, high)), low, high)
    return out


def _overlap(before: tuple, after: tuple) -> str:
    """Whether two intervals overlap ("yes"/"NO"), "" where either has none."""
    if None in (before[1], before[2], after[1], after[2]):
        return ""
    return "yes" if before[1] <= after[2] and after[1] <= before[2] else "NO"


def run_arguments(doc: str) -> argparse.ArgumentParser:
    """The arguments every default-run bench takes: the model, how many tasks, where to keep runs."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="default: the embedded model")
    parser.add_argument("--tasks", type=int, default=None, help="the first N tasks (default: all)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs and logs here")
    return parser


def workspace(work: Path, n_tasks: int | None) -> tuple[Path, Path]:
    """``work``, made, and the shipped tasks (the first ``n_tasks``) written there as JSONL."""
    work.mkdir(parents=True, exist_ok=True)
    tasks = PromptSet.load()
    (work / "tasks.jsonl").write_text((tasks.head(n_tasks) if n_tasks else tasks).to_jsonl())
    return work, work / "tasks.jsonl"


def main() -> None:
    parser = run_arguments(__doc__)
    parser.add_argument("--before", required=True, help="the git revision to compare with")
    parser.add_argument("--reuse-before", action="store_true",
                        help="with --keep: use the before run kept there by an earlier call (its wall time included)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work, prompts = workspace(args.keep or Path(tmp), args.tasks)
        trees = {"before": unpack(args.before, Path(tmp) / "before-code"), "after": ROOT}
        walls, stages = {}, {}
        for label, tree in trees.items():
            wall = work / f"{label}.wall"
            if label == "before" and args.reuse_before and wall.exists():
                walls[label] = float(wall.read_text())
            else:
                walls[label] = run(tree, args.model, prompts, work / f"{label}-run", work / f"{label}.log")
                wall.write_text(f"{walls[label]:.1f}")
            stages[label] = {s: r["seconds"] for s, r in Run(work / f"{label}-run").stage_records().items()}
        equal = _tables(work / "before-run") == _tables(work / "after-run")
        outcomes = {label: _outcomes(work / f"{label}-run") for label in trees}
    print_comparison(("before", "after"), stages, walls, outcomes)
    print(f"tables equal: {equal}")


def print_comparison(labels: tuple[str, str], stages: dict, walls: dict, outcomes: dict) -> None:
    """The CPU, two runs' seconds per stage and whole command side by side, and what each found
    (``_outcomes``) with whether the intervals overlap."""
    first, second = labels
    print(f"CPU: {cpu_model()}; torch {torch.__version__}")
    print(f"{'stage':<22}{first:>10}{second:>10}{'ratio':>8}")
    for stage in dict.fromkeys([*stages[first], *stages[second]]):
        a, b = stages[first].get(stage, float("nan")), stages[second].get(stage, float("nan"))
        print(f"{stage:<22}{a:>9.1f}s{b:>9.1f}s{b / a:>7.2f}x")
    a, b = sum(stages[first].values()), sum(stages[second].values())
    print(f"{'all stages':<22}{a:>9.1f}s{b:>9.1f}s{b / a:>7.2f}x")
    print(f"{'whole command':<22}{walls[first]:>9.1f}s{walls[second]:>9.1f}s{walls[second] / walls[first]:>7.2f}x")
    print(f"\n{'what the run found':<48}{first:>26}{second:>26}  intervals overlap")
    none = ("-", None, None)
    for key in dict.fromkeys([*outcomes[first], *outcomes[second]]):
        a, b = outcomes[first].get(key, none), outcomes[second].get(key, none)
        print(f"{key:<48}{a[0]:>26}{b[0]:>26}  {_overlap(a, b)}")

if __name__ == "__main__":
    main()
