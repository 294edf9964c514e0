"""The evaluation's decoding on a real model: baseline and steered answers as two calls, beside
``generate_pairs`` (each batch with its steered twins), timed in turn in one run; the answers
must be the same.

    python bench/bench_pairs.py --model MODEL.gguf --run runs/qwen-cpp [--prompts 16] [--tokens 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steering.engine.generation import GenerationConfig, generate, generate_pairs  # noqa: E402
from steering.engine.models import load_model  # noqa: E402
from steering.pipeline.runner import Pipeline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--method", default="mean_diff")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    model = load_model(args.model)
    pipeline = Pipeline.reopen(args.run, model)
    steerer = pipeline.steerer(args.method)
    prompts = [t.neutral for t in pipeline.prompts][: args.prompts]
    config = GenerationConfig(max_new_tokens=args.tokens, temperature=pipeline.settings.eval_temperature,
                              seed=pipeline.settings.seed, batch_size=pipeline.settings.batch_size)
    start = time.perf_counter()
    plain = generate(model, prompts, config)
    steered = generate(model, prompts, config, steerer=steerer)
    apart = time.perf_counter() - start
    start = time.perf_counter()
    pair_plain, pair_steered = generate_pairs(model, prompts, config, steerer)
    together = time.perf_counter() - start
    same = [a.tokens for a in plain + steered] == [a.tokens for a in pair_plain + pair_steered]
    print(f"{model.facts.name}: {len(prompts)} prompts, budget {args.tokens}, {args.method} on layers "
          f"{list(steerer.spec.layers)}, temperature {config.temperature}")
    print(f"two calls {apart:.1f} s, pairs {together:.1f} s: {together / apart:.2f}x; same answers: {same}")


if __name__ == "__main__":
    main()
