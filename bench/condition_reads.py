"""What a run's condition reads, and what the current code's condition would read, on the
prompts conditional steering is judged on: the share of open prompts (neutral, held-out
phrasings) it steers and the share of the other languages' explicit prompts it leaves alone.

    python bench/condition_reads.py RUN [RUN ...] [--model MODEL]

With greedy decoding a conditional answer is the plain steered answer where the condition
steers and the unsteered answer where it does not, so these shares say what conditional
steering would score without decoding. The current code's condition is refitted from the run's
stored activations exactly as the probe stage fits it (``stages.probe._condition``); nothing is
written to the run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install

from steering.engine.models import load_model  # noqa: E402
from steering.pipeline.runner import Pipeline  # noqa: E402
from steering.pipeline.stages.probe import _condition  # noqa: E402
from steering.store.storage import Run  # noqa: E402


def shares(condition, model, pipeline) -> dict[str, float]:
    target = pipeline.settings.target
    tasks = pipeline.prompts.tasks
    explicit = [t.prompts[lang] for t in tasks for lang in sorted(t.prompts) if lang != target]
    out = {}
    for name in pipeline.settings.eval_sets:
        _, prompts = pipeline.eval_prompts(name)
        out[f"{name}: steered"] = sum(condition.steers(model, prompts)) / len(prompts)
    out["explicit, other languages: left alone"] = 1 - sum(condition.steers(model, explicit)) / len(explicit)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    model = None
    for run in args.runs:
        model = model or load_model(args.model or Run(run).settings.get("model_ref"))
        pipeline = Pipeline.reopen(run, model)
        stored = pipeline.learned.condition(pipeline.settings)
        refitted, _ = _condition(pipeline.context, pipeline.learned)
        rows = {label: (c.layer_, shares(c, model, pipeline)) for label, c in (("the run's", stored),
                                                                                ("the current code's", refitted))}
        columns = list(rows["the run's"][1])
        print(f"## {run.name} (target {pipeline.settings.target})")
        print("| condition | layer | " + " | ".join(columns) + " |")
        print("| --- | ---: |" + " ---: |" * len(columns))
        for label, (layer, row) in rows.items():
            print(f"| {label} | {layer} | " + " | ".join(f"{row[c]:.1%}" for c in columns) + " |")


if __name__ == "__main__":
    main()
