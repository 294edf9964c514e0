"""Ablations of the choices Steerscope makes where the paper is silent, each on vs off.

Every variant is a whole pipeline run (its own folder under ``--out``) with one setting changed
from the defaults, evaluated with G-ACT on the neutral prompts and on the held-out phrasings.

    python bench/ablations.py --out /tmp/ablations                 # the embedded model, ~1 min a variant
    python bench/ablations.py --out /tmp/abl --model "$(../shared/tools/fetch-real-model)" --variants default adaptive_off
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from steering.code.prompts import PromptSet  # noqa: E402
from steering.engine.models import load_model  # noqa: E402
from steering.pipeline.results import RunResults  # noqa: E402
from steering.pipeline.runner import Pipeline, PipelineSettings  # noqa: E402
from steering.store.storage import Run  # noqa: E402

# name -> (what it turns off or changes, the settings that do it)
VARIANTS = {
    "default": ("all defaults", {}),
    "adaptive_off": ("no 'off' class: the probe steers everywhere at full weight", {"adaptive": False}),
    "argmax": ("the probe's top cluster only, not the soft mixture", {"selection": "argmax"}),
    "read_at_prompt_end": ("activations read at the prompt's end, not after the opening fence", {"answer_prefix": ""}),
    "per_layer_clusters": ("k-means per layer instead of one shared labelling", {"cluster_mode": "per_layer"}),
    "no_refine_gain": ("refinement learns the probe only, no per-layer gain", {"refine_gains": False}),
}
STAGES = ("extract", "cluster", "probe", "sweep", "refine", "eval")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="a folder for the variants' runs")
    parser.add_argument("--model", default=None, help="model path (default: the embedded model)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    model = load_model(args.model)
    prompts = PromptSet.load()
    rows = []
    for name in args.variants:
        what, overrides = VARIANTS[name]
        started = time.perf_counter()
        pipeline = Pipeline(model, prompts, Run(args.out / name, create=True), PipelineSettings(**overrides),
                            model_ref=args.model)
        for stage in STAGES:
            pipeline.run_stage(stage)
        results = RunResults(args.out / name)
        probe = results.probe_accuracy()
        mean_acc = probe[probe["probe"] == "G-ACT"]["val"].mean()
        tables = {s: results.method_table(s).loc["gact"] for s in ("neutral", "heldout")}
        rows.append([name, what, mean_acc, *[tables[s][k] for s in ("neutral", "heldout")
                                               for k in ("fenced_target", "success", "compiles", "repeated_ngrams")],
                     time.perf_counter() - started])
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    print(f"\nmodel {model.facts.name}, {len(prompts)} tasks, target {PipelineSettings().target}\n")
    print("| variant | what changes | G-ACT probe val acc | neutral: fenced C++ | parses | compiles | rep. 4-grams "
          "| held-out: fenced C++ | parses | compiles | rep. 4-grams | seconds |")
    print("|---" * 12 + "|")
    for row in rows:
        cells = [f"{v:.1%}" if isinstance(v, float) and not np.isnan(v) else ("n/a" if isinstance(v, float) else str(v))
                 for v in row[:-1]]
        print(f"| {' | '.join(cells)} | {row[-1]:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
