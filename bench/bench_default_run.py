"""The default run before and after a change, per stage, side by side: the same ``run`` command
from the code of git revision ``--before`` (unpacked with ``git archive``) and from this working
tree, one after the other on the same machine, with every stage's seconds as each run recorded
them, and whether the two runs' tables are equal.

    python bench/bench_default_run.py --before REV [--model MODEL.gguf] [--tasks N] [--keep DIR]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the git revision to compare with")
    parser.add_argument("--model", default=None, help="default: the embedded model")
    parser.add_argument("--tasks", type=int, default=None, help="the first N tasks (default: all)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs and logs here")
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
            walls[label] = run(tree, args.model, prompts, work / f"{label}-run", work / f"{label}.log")
            stages[label] = {s: r["seconds"] for s, r in Run(work / f"{label}-run").stage_records().items()}
        equal = _tables(work / "before-run") == _tables(work / "after-run")
    print(f"{'stage':<22}{'before':>10}{'after':>10}{'after/before':>14}")
    for stage in dict.fromkeys([*stages["before"], *stages["after"]]):
        b, a = stages["before"].get(stage, float("nan")), stages["after"].get(stage, float("nan"))
        print(f"{stage:<22}{b:>9.1f}s{a:>9.1f}s{a / b:>13.2f}x")
    b, a = sum(stages["before"].values()), sum(stages["after"].values())
    print(f"{'all stages':<22}{b:>9.1f}s{a:>9.1f}s{a / b:>13.2f}x")
    print(f"{'whole command':<22}{walls['before']:>9.1f}s{walls['after']:>9.1f}s{walls['after'] / walls['before']:>13.2f}x")
    print(f"tables equal: {equal}")


if __name__ == "__main__":
    main()
