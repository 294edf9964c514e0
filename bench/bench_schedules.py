"""What a steering schedule costs per decoding step, each measured against steering every token,
side by side in one run (issue 16).

The schedules multiply the injection by a per-row, per-position mask that the decoding loop
keeps (``steer.StepControl``); the gated one also runs the gate's probe at each steered layer.

    python bench/bench_schedules.py [--run runs/embedded-cpp] [--repeats 5]

``--run``: a finished run on the embedded model (its mean-difference vectors, its chosen layers
and its G-ACT probe as the gate); without it, a fresh one is made in a temporary folder.
Each pair alternates, ``repeats`` times, and the median of each side is kept.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install

from bench_engine import alternate  # noqa: E402

from steering.code.prompts import PromptSet  # noqa: E402
from steering.engine.generation import GenerationConfig, generate  # noqa: E402
from steering.engine.models import load_model  # noqa: E402
from steering.methods.registry import METHODS  # noqa: E402
from steering.pipeline.runner import Pipeline  # noqa: E402
from steering.store.storage import Run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = load_model()
    prompts = PromptSet.load()
    with tempfile.TemporaryDirectory() as tmp:
        if args.run is None:
            args.run = Path(tmp) / "run"
            Pipeline(model, prompts, Run(args.run, create=True)).run_all(("extract", "cluster", "probe", "act", "sweep"))
        pipeline = Pipeline.reopen(args.run, model)
        settings = pipeline.settings
        base = METHODS["mean_diff"].steerer(pipeline.learned, replace(settings, schedule="all"), model)
        batch = [t.neutral for t in prompts]
        config = GenerationConfig(max_new_tokens=64, stop="none", batch_size=len(batch))

        def run(steerer):
            return lambda: generate(model, batch, config, steerer=steerer)

        def with_schedule(name):
            return METHODS["mean_diff"].steerer(pipeline.learned, replace(settings, schedule=name), model,
                                                replace(base.spec, schedule=name))

        plain = alternate(lambda: generate(model, batch, config), run(base), args.repeats)
        print(f"embedded model, {len(batch)} prompts x 64 tokens, mean difference on layers {list(base.spec.layers)}")
        print(f"  every token steered / unsteered: {plain[1] / plain[0]:.3f}x ({plain[1]:.2f} s vs {plain[0]:.2f} s)")
        for name in ("window", "fence", "gated"):
            every, scheduled = alternate(run(base), run(with_schedule(name)), args.repeats)
            print(f"  {name} / every token: {scheduled / every:.3f}x ({scheduled:.2f} s vs {every:.2f} s)")


if __name__ == "__main__":
    main()
