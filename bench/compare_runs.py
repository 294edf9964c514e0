"""Are two runs the same? Table by table: settings, prompts, stage records (without times),
every metric (floats to 1e-6), every generation, and every tensor file (values to 1e-6,
metadata equal). Used to show that a refactor left the pipeline's behaviour unchanged:

    python -m steering run --out A        # on the commit before
    python -m steering run --out B        # on the commit after
    python bench/compare_runs.py A B

Prints one line per table and exits 1 at the first difference it reports (it reports them all).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from steering.store.storage import Run  # noqa: E402

TOLERANCE = 1e-6


def _close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_close, a, b))
    return a == b


def _key(row: dict) -> str:
    return json.dumps({k: v for k, v in row.items() if k not in ("value", "confidence")}, sort_keys=True, default=str)


def compare(a: Run, b: Run) -> list[str]:
    """The differences between runs ``a`` and ``b``, one line each (empty: the same)."""
    problems = []
    if a.settings != b.settings:
        problems.append("settings.json differs")
    if (a.dir / "prompts.jsonl").read_text() != (b.dir / "prompts.jsonl").read_text():
        problems.append("prompts.jsonl differs")
    records = [{s: r["inputs"] for s, r in run.stage_records().items()} for run in (a, b)]
    if records[0] != records[1]:
        problems.append(f"stage records differ: {sorted(records[0].items())} vs {sorted(records[1].items())}")
    for table in ("metrics", "generations"):
        rows = [getattr(run, table)() for run in (a, b)]
        for stage in sorted({r["stage"] for r in rows[0]} | {r["stage"] for r in rows[1]}):
            mine, theirs = ([r for r in side if r["stage"] == stage] for side in rows)
            mine, theirs = sorted(mine, key=_key), sorted(theirs, key=_key)
            if len(mine) != len(theirs) or not all(_close(x, y) for x, y in zip(mine, theirs)):
                problems.append(f"{table} of {stage!r} differ ({len(mine)} rows vs {len(theirs)})")
    names = [sorted(p.stem for p in (run.dir / "tensors").glob("*.safetensors")) for run in (a, b)]
    if names[0] != names[1]:
        problems.append(f"tensor files differ: {names[0]} vs {names[1]}")
    for name in sorted(set(names[0]) & set(names[1])):
        (ta, ma), (tb, mb) = a.load(name), b.load(name)
        if ma != mb or ta.keys() != tb.keys():
            problems.append(f"tensors {name!r}: metadata or names differ")
            continue
        for key in ta:
            same = ta[key].shape == tb[key].shape and (torch.equal(ta[key], tb[key]) or torch.allclose(
                ta[key].double(), tb[key].double(), rtol=TOLERANCE, atol=TOLERANCE, equal_nan=True))
            if not same:
                problems.append(f"tensors {name!r}/{key} differ")
    return problems


def main(argv: list[str]) -> int:
    a, b = Run(argv[0]), Run(argv[1])
    problems = compare(a, b)
    counts = {table: len(getattr(a, table)()) for table in ("metrics", "generations")}
    tensors = len(list((a.dir / "tensors").glob("*.safetensors")))
    for line in problems:
        print("DIFFERENT:", line)
    print(f"{'same' if not problems else 'different'}: {counts['metrics']} metric rows, {counts['generations']} "
          f"generations, {tensors} tensor files, {len(a.stage_records())} stage records compared")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
