"""Ray's overhead on one machine: the same pipeline run in this process, on 1 Ray replica and on
2, per stage, side by side (on 2 cores two replicas share the cores the one process had: a
measure of overhead, not of speed-up). Every run's tables must be equal.

    python bench/bench_ray.py [--tasks 16]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from steering.code.prompts import PromptSet  # noqa: E402
from steering.store.storage import Run  # noqa: E402
from test_parallel import _tables  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prompts = Path(tmp) / "tasks.jsonl"
        prompts.write_text(PromptSet.load().head(args.tasks).to_jsonl())
        walls, stages = {}, {}
        for label, extra in (("in process", []), ("1 worker", ["--workers", "1"]), ("2 workers", ["--workers", "2"])):
            out = Path(tmp) / label.replace(" ", "-")
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "steering", "run", "--prompts", str(prompts), "--out", str(out), *extra],
                           cwd=ROOT, check=True, capture_output=True)
            walls[label] = time.perf_counter() - start
            stages[label] = {s: r["seconds"] for s, r in Run(out).stage_records().items()}
        equal = len({repr(_tables(Path(tmp) / label.replace(" ", "-"))) for label in walls}) == 1
    labels = list(walls)
    print(f"{'stage':<22}" + "".join(f"{label:>14}" for label in labels) + "   1 worker / in process   2 workers / in process")
    for stage in stages[labels[0]]:
        row = [stages[label].get(stage, float("nan")) for label in labels]
        print(f"{stage:<22}" + "".join(f"{v:>13.1f}s" for v in row) + f"{row[1] / row[0]:>24.2f}x{row[2] / row[0]:>24.2f}x")
    row = [walls[label] for label in labels]
    print(f"{'whole command':<22}" + "".join(f"{v:>13.1f}s" for v in row) + f"{row[1] / row[0]:>24.2f}x{row[2] / row[0]:>24.2f}x")
    print(f"tables equal across the three runs: {equal}")


if __name__ == "__main__":
    main()
