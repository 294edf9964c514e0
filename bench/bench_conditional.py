"""What conditional steering costs against plain steering, side by side in one run (issue 30).

Conditional steering reads each prompt once more before decoding (``condition.PromptCondition``:
one prompt pass up to the condition's layer), then decodes as plain steering does, with the
rows the condition leaves alone unsteered.

    python bench/bench_conditional.py RUN [--model MODEL] [--tokens 64] [--repeats 3]

``RUN``: a finished run (its condition, its mean-difference vectors and chosen layers); the
model is the run's own unless ``--model`` names it. The prompts are the run's neutral prompts
and its tasks asked in Python (half open, half naming another language). Each pair alternates,
``repeats`` times, and the median of each side is kept.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install

from bench_engine import alternate  # noqa: E402

from steering.engine.generation import GenerationConfig, generate  # noqa: E402
from steering.engine.models import load_model  # noqa: E402
from steering.methods.registry import METHODS  # noqa: E402
from steering.pipeline.runner import Pipeline  # noqa: E402
from steering.store.storage import Run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = load_model(args.model or Run(args.run).settings.get("model_ref"))
    pipeline = Pipeline.reopen(args.run, model)
    settings, learned = pipeline.settings, pipeline.learned
    plain = METHODS["mean_diff"].steerer(learned, replace(settings, conditional=False), model)
    conditional = METHODS["mean_diff"].steerer(learned, replace(settings, conditional=True), model)
    prompts = [t.neutral for t in pipeline.prompts] + [t.prompts["python"] for t in pipeline.prompts]
    config = GenerationConfig(max_new_tokens=args.tokens, stop="none", batch_size=settings.batch_size)
    steered = conditional.steered_rows(model, prompts)
    times = alternate(lambda: generate(model, prompts, config, steerer=plain),
                      lambda: generate(model, prompts, config, steerer=conditional), args.repeats)
    print(f"{model.facts.name}, {len(prompts)} prompts x {args.tokens} tokens, mean difference on layers "
          f"{list(plain.spec.layers)}; the condition (layer {conditional.condition.layer_}) steers "
          f"{sum(steered)} of them")
    print(f"  conditional / plain: {times[1] / times[0]:.3f}x ({times[1]:.2f} s vs {times[0]:.2f} s)")


if __name__ == "__main__":
    main()
