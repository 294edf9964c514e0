"""The default run in float32 and in bfloat16, one after the other, from this working tree: do
the verdicts agree within their bootstrap intervals? (They need not agree token for token.)

    python bench/bench_dtype.py [--model MODEL.gguf] [--tasks N] [--keep DIR]

Prints the CPU, each run's wall time and stages, and what each found (choices, and the
evaluations' fenced, compiling and cut-off shares with intervals) with whether the intervals
overlap.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_default_run import ROOT, _outcomes, print_comparison, run, run_arguments, workspace  # noqa: E402
from steering.store.storage import Run  # noqa: E402

DTYPES = ("float32", "bfloat16")


def main() -> None:
    args = run_arguments(__doc__).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work, prompts = workspace(args.keep or Path(tmp), args.tasks)
        walls = {d: run(ROOT, args.model, prompts, work / f"{d}-run", work / f"{d}.log", ("--dtype", d)) for d in DTYPES}
        stages = {d: {s: r["seconds"] for s, r in Run(work / f"{d}-run").stage_records().items()} for d in DTYPES}
        outcomes = {d: _outcomes(work / f"{d}-run") for d in DTYPES}
    print_comparison(DTYPES, stages, walls, outcomes)

if __name__ == "__main__":
    main()
