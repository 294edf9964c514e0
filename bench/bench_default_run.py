"""The default run before and after a change, per stage, side by side: the same ``run`` command
from the code of git revision ``--before`` (unpacked with ``git archive``) and from this working
tree, one after the other on the same machine, with every stage's seconds as each run recorded
them, and whether the two runs' tables are equal.

    python bench/bench_default_run.py --before REV [--model MODEL.gguf] [--tasks N] [--keep DIR [--reuse-before]]

On Qwen2.5-Coder-0.5B-Instruct each run takes about 40 minutes on 2 cores: leave the machine
alone meanwhile, or the ratios measure the neighbours.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from steering.prompts import PromptSet  # noqa: E402
from steering.schema import CHOSEN_ALPHA, CONDITIONS, eval_metric  # noqa: E402
from steering.storage import Run  # noqa: E402
from test_parallel import _tables  # noqa: E402


def unpack(rev: str, where: Path) -> Path:
    """The tree of ``rev`` (its ``steering`` and ``assets``), unpacked at ``where``."""
    archive = subprocess.run(["git", "archive", rev, "steering", "assets"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    return where


def run(tree: Path, model: str | None, prompts: Path, out: Path, log: Path) -> float:
    command = [sys.executable, "-m", "steering", "run", "--prompts", str(prompts), "--out", str(out)]
    start = time.perf_counter()
    with open(log, "w") as handle:
        subprocess.run(command + (["--model", model] if model else []), cwd=tree, check=True, stdout=handle,
                       stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def _outcomes(run_dir: Path) -> dict[str, str]:
    """What a run found, for runs whose tables differ (another dtype, say): the model's dtype,
    the chosen layers and alphas, and each evaluation's shares per condition."""
    run = Run(run_dir)
    out = {"dtype": run.settings.get("model", {}).get("dtype", "?")}
    chosen = [(m["layer"], m["value"]) for m in run.metrics("sweep") if m["name"] == CHOSEN_ALPHA]
    out["chosen layers"] = ",".join(str(layer) for layer, _ in chosen)
    out["chosen alphas"] = ",".join(f"{value:g}" for _, value in chosen)
    for stage in [s for s in run.stage_records() if s.startswith(("eval_", "heldout_"))]:
        values = {m["name"]: m["value"] for m in run.metrics(stage)}
        for condition in CONDITIONS:
            for measure in ("fenced_target", "success", "compiles"):
                value = values.get(eval_metric(condition, measure))
                if value is not None:
                    out[f"{stage} {condition} {measure}"] = f"{value:.0%}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the git revision to compare with")
    parser.add_argument("--model", default=None, help="default: the embedded model")
    parser.add_argument("--tasks", type=int, default=None, help="the first N tasks (default: all)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs and logs here")
    parser.add_argument("--reuse-before", action="store_true",
                        help="with --keep: use the before run kept there by an earlier call (its wall time included)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        prompts = work / "tasks.jsonl"
        tasks = PromptSet.load()
        prompts.write_text((tasks.head(args.tasks) if args.tasks else tasks).to_jsonl())
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
    print(f"{'stage':<22}{'before':>10}{'after':>10}{'after/before':>14}")
    for stage in dict.fromkeys([*stages["before"], *stages["after"]]):
        b, a = stages["before"].get(stage, float("nan")), stages["after"].get(stage, float("nan"))
        print(f"{stage:<22}{b:>9.1f}s{a:>9.1f}s{a / b:>13.2f}x")
    b, a = sum(stages["before"].values()), sum(stages["after"].values())
    print(f"{'all stages':<22}{b:>9.1f}s{a:>9.1f}s{a / b:>13.2f}x")
    print(f"{'whole command':<22}{walls['before']:>9.1f}s{walls['after']:>9.1f}s{walls['after'] / walls['before']:>13.2f}x")
    print(f"tables equal: {equal}")
    print(f"\n{'what the run found':<40}{'before':>16}{'after':>16}")
    for key in dict.fromkeys([*outcomes["before"], *outcomes["after"]]):
        print(f"{key:<40}{outcomes['before'].get(key, '-'):>16}{outcomes['after'].get(key, '-'):>16}")


if __name__ == "__main__":
    main()
