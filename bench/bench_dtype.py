"""The default run in float32 and in bfloat16, one after the other, from this working tree: do
the verdicts agree within their bootstrap intervals? (They need not agree token for token.)

    python bench/bench_dtype.py [--model MODEL.gguf] [--tasks N] [--keep DIR]

Prints the CPU, each run's wall time and stages, and what each found (choices, and the
evaluations' fenced, compiling and cut-off shares with intervals) with whether the intervals
overlap.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_default_run import ROOT, _outcomes, _overlap, cpu_model, run  # noqa: E402
from steering.prompts import PromptSet  # noqa: E402
from steering.storage import Run  # noqa: E402

DTYPES = ("float32", "bfloat16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
        walls = {d: run(ROOT, args.model, prompts, work / f"{d}-run", work / f"{d}.log", ("--dtype", d)) for d in DTYPES}
        stages = {d: {s: r["seconds"] for s, r in Run(work / f"{d}-run").stage_records().items()} for d in DTYPES}
        outcomes = {d: _outcomes(work / f"{d}-run") for d in DTYPES}
    print(f"CPU: {cpu_model()}")
    print(f"{'stage':<22}{'float32':>10}{'bfloat16':>10}{'ratio':>8}")
    for stage in stages["float32"]:
        a, b = stages["float32"][stage], stages["bfloat16"].get(stage, float("nan"))
        print(f"{stage:<22}{a:>9.1f}s{b:>9.1f}s{b / a:>7.2f}x")
    print(f"{'whole command':<22}{walls['float32']:>9.1f}s{walls['bfloat16']:>9.1f}s{walls['bfloat16'] / walls['float32']:>7.2f}x")
    print(f"\n{'what the run found':<48}{'float32':>26}{'bfloat16':>26}  intervals overlap")
    none = ("-", None, None)
    for key in dict.fromkeys([*outcomes["float32"], *outcomes["bfloat16"]]):
        a, b = outcomes["float32"].get(key, none), outcomes["bfloat16"].get(key, none)
        print(f"{key:<48}{a[0]:>26}{b[0]:>26}  {_overlap(a, b)}")


if __name__ == "__main__":
    main()
