"""A decoding step's cost as the KV cache grows, with eager and SDPA attention, on one model
loaded as the pipeline loads it (bfloat16 on a CPU with AMX): one greedy batch of the neutral
prompts, each twice (92 rows on the shipped tasks, an evaluation's baseline and steered rows),
for 330 steps, timed per step.

    python bench/bench_attention.py --model MODEL.gguf [--steps 330]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steering.code.prompts import PromptSet  # noqa: E402
from steering.engine.forward import encode_prompts, forward, positions_of
from steering.engine.models import load_model  # noqa: E402


def steps(model, prompts: list[str], n: int) -> list[float]:
    ids, mask = encode_prompts(model, prompts)
    times = []
    with torch.no_grad():
        logits, cache = forward(model, ids, mask, positions_of(mask))
        positions = positions_of(mask)[:, -1:]
        for _ in range(n):
            mask, positions = torch.cat([mask, torch.ones_like(mask[:, :1])], 1), positions + 1
            start = time.perf_counter()
            logits, cache = forward(model, logits.argmax(-1)[:, None], mask, positions, cache)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--steps", type=int, default=330)
    args = parser.parse_args()
    model = load_model(args.model)
    prompts = [t.neutral for t in PromptSet.load()] * 2
    for impl in ("eager", "sdpa"):
        model.hf_model.set_attn_implementation(impl)
        t = steps(model, prompts, args.steps)
        print(f"{impl:>6} {model.facts.dtype}, {len(prompts)} rows: first 10 steps {sum(t[:10]) / 10:.3f} s each, "
              f"last 10 {sum(t[-10:]) / 10:.3f} s each, {sum(t):.1f} s in all")


if __name__ == "__main__":
    main()
