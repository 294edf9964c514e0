"""Engine overheads, each measured as a ratio of two things timed side by side in one run:

1. steered (G-ACT probes live on the steered layers) against unsteered generation, per decoding
   step, same prompts, same greedy settings, same number of steps;
2. activation extraction through hooks against a plain forward pass over the same batches;
3. batched G-ACT probe training over all layers against the scikit-learn loop (ACT).

    python bench/bench_engine.py [--repeats 5]

The two sides of each ratio alternate, repeats times, and the median of each side is kept.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install

from steering.code.prompts import PromptSet
from steering.engine.activations import extract_activations
from steering.engine.forward import encode_prompts
from steering.engine.generation import GenerationConfig, generate
from steering.engine.models import load_model
from steering.methods.probes import SklearnProbe, GactProbe
from steering.pipeline.runner import Pipeline, PipelineSettings
from steering.store.storage import Run


def alternate(first, second, repeats: int) -> tuple[float, float]:
    """Median seconds of ``first()`` and ``second()``, run in turn ``repeats`` times each."""
    times: tuple[list, list] = ([], [])
    for _ in range(repeats):
        for fn, bucket in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def generation_step_time(model, prompts, hooks, config) -> float:
    """Seconds per decoding step (all batches), counted through ``on_token``."""
    steps = [0]

    def count(_tokens):
        steps[0] += 1

    start = time.perf_counter()
    generate(model, prompts, config, fwd_hooks=hooks, on_token=count)
    return (time.perf_counter() - start) / steps[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = load_model()
    prompts = PromptSet.load()
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(model, prompts, Run(Path(tmp) / "run", create=True), PipelineSettings())
        pipeline.run_all(("extract", "cluster", "probe", "sweep"))
        steerer = pipeline.steerer("gact_unrefined")
        X, y, groups, _ = pipeline.probe_data()

    neutral = [t.neutral for t in prompts]
    config = GenerationConfig(max_new_tokens=64, batch_size=16, stop="none")
    hooks = steerer.hooks(model)
    runs = ([], [])
    for _ in range(args.repeats):
        runs[0].append(generation_step_time(model, neutral, (), config))
        runs[1].append(generation_step_time(model, neutral, hooks, config))
    plain_step, steered_step = statistics.median(runs[0]), statistics.median(runs[1])

    batches = [neutral[i : i + 16] for i in range(0, len(neutral), 16)]

    @torch.no_grad()
    def plain_forward():
        for chunk in batches:
            ids, mask = encode_prompts(model, chunk, "```")
            model.hf_model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0))

    def hooked_extraction():
        extract_activations(model, neutral, continuation="```", batch_size=16, cache_dir=None)

    plain_fwd, hooked = alternate(plain_forward, hooked_extraction, args.repeats)

    k = int(y.max()) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gact_fit, act_fit = alternate(lambda: GactProbe(k).fit(X, y, groups=groups),
                                      lambda: SklearnProbe(k).fit(X, y, groups=groups), args.repeats)

    print(f"model: embedded, {model.n_layers} layers, d_model {model.d_model}; {len(neutral)} neutral prompts; "
          f"{args.repeats} repeats, medians")
    print(f"1. generation, ms per decoding step (batch 16, 64 steps): unsteered {1e3 * plain_step:.1f}, "
          f"steered G-ACT on layers {list(steerer.spec.layers)} {1e3 * steered_step:.1f}  -> ratio {steered_step / plain_step:.3f}")
    print(f"2. extraction over {len(batches)} batches: plain forward {1e3 * plain_fwd:.0f} ms, "
          f"with hooks (all {model.n_layers} layers kept) {1e3 * hooked:.0f} ms  -> ratio {hooked / plain_fwd:.3f}")
    print(f"3. probe training, {X.shape[0]} samples x {X.shape[1]} layers: G-ACT batched {1e3 * gact_fit:.0f} ms, "
          f"ACT scikit-learn loop {1e3 * act_fit:.0f} ms  -> G-ACT takes {gact_fit / act_fit:.2f}x the time "
          f"({act_fit / gact_fit:.1f}x faster)")


if __name__ == "__main__":
    main()
