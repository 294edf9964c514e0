"""The sweep's layer choice alone, for a run whose full sweep does not fit the machine's time.

    python bench/sweep_grid.py RUN [--model MODEL] [--alphas A [A ...]] [--json FILE]

The sweep stage first reads every layer steered alone at every alpha (the grid: G-ACT's fenced
tag after a forced fence) and picks the layers to steer from it; then its selection decodes
continuations to choose a margin and schedule per method, which on a 2-core CPU takes hours for a
1.5B model. This runs the first part exactly as the stage does (``stages.sweep.layer_grid``) and
prints each layer's best single-layer success with its relative depth and the layers it picks.
Nothing is written to the run: the Compare page shows a sweep only once the stage has run.
``--alphas`` reads other alphas than the run's ``sweep_alphas`` (a question about the model, not
the run's choice).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install

from steering.engine.models import load_model  # noqa: E402
from steering.pipeline.runner import Pipeline  # noqa: E402
from steering.pipeline.stages.sweep import layer_grid  # noqa: E402
from steering.reports.compare import depth  # noqa: E402
from steering.store.storage import Run  # noqa: E402


def cpu() -> str:
    """The CPU's model name, as ``lscpu`` shows it."""
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--model", default=None, help="default: the run's own model")
    parser.add_argument("--alphas", type=float, nargs="+", default=None, help="default: the run's sweep_alphas")
    parser.add_argument("--json", type=Path, default=None, help="also write the grid and the choice here")
    args = parser.parse_args()
    start = time.perf_counter()
    model = load_model(args.model or Run(args.run).settings.get("model_ref"))
    pipeline = Pipeline.reopen(args.run, model)
    if args.alphas:
        pipeline.context.settings = replace(pipeline.settings, sweep_alphas=tuple(args.alphas))
    cells = [0]

    def cell(n: int = 1) -> None:
        cells[0] += n
        print(f"\r{cells[0]} cells · {time.perf_counter() - start:.0f} s", end="", file=sys.stderr, flush=True)

    grid, _, _, (layers, alphas), combined = layer_grid(pipeline.context, pipeline.learned, cell)
    seconds = time.perf_counter() - start
    n_layers, sweep_alphas = model.n_layers, pipeline.context.settings.sweep_alphas
    print(f"\n## {args.run.name}: {model.facts.name}, {n_layers} layers, target {pipeline.settings.target} "
          f"({seconds / 60:.1f} min on {cpu()})")
    print("| layer | depth | " + " | ".join(f"alpha {a:g}" for a in sweep_alphas) + " | best |")
    print("| ---: | ---: |" + " ---: |" * (len(sweep_alphas) + 1))
    for layer in range(n_layers):
        print(f"| {layer} | {depth(layer, n_layers):.2f} | " + " | ".join(f"{v:.0%}" for v in grid[layer])
              + f" | {grid[layer].max():.0%} |")
    print(f"picked: layers {layers} (depths {[round(depth(l, n_layers), 2) for l in layers]}) at alphas "
          f"{[round(a, 4) for a in alphas]}; together at scales {({k: round(v, 3) for k, v in combined.items()})}")
    if args.json:
        args.json.write_text(json.dumps({"run": args.run.name, "model": model.facts.name, "n_layers": n_layers,
                                         "alphas": list(sweep_alphas), "grid": grid.tolist(), "layers": layers,
                                         "layer_alphas": alphas, "combined": combined, "seconds": seconds}, indent=1))


if __name__ == "__main__":
    main()
