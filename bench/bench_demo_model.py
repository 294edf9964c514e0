"""Embedded model figures: size, training time (from its training record), greedy tokens/s.

    python bench/bench_demo_model.py

Generation is timed in one run, batch 1 and batch 16 side by side, so the ratio between them
holds even on a noisy machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install

from steering.code.prompts import PromptSet
from steering.engine.generation import GenerationConfig, generate
from steering.engine.models import EMBEDDED_MODEL_DIR, load_model, model_card


def tokens_per_second(model, prompts, batch_size: int, repeats: int = 3) -> float:
    config = GenerationConfig(batch_size=batch_size)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        answers = generate(model, prompts, config)
        elapsed = time.perf_counter() - start
        best = max(best, sum(a.n_tokens for a in answers) / elapsed)
    return best


def main() -> None:
    torch.set_num_threads(2)
    model = load_model()
    card = model_card()
    size = sum(f.stat().st_size for f in EMBEDDED_MODEL_DIR.iterdir()) / 2**20
    prompts = [t.prompts["python"] for t in PromptSet.load().head(16)]
    single = tokens_per_second(model, prompts[:4], batch_size=1)
    batched = tokens_per_second(model, prompts, batch_size=16)
    print(f"model: {model.facts.n_params / 1e6:.2f}M parameters, {size:.1f} MiB on disk "
          f"({model.facts.n_layers} layers, d_model {model.facts.d_model})")
    print(f"training: {card.get('train_seconds', float('nan')) / 60:.1f} min "
          f"({card.get('settings', {}).get('epochs')} epochs, {card.get('tokens_per_epoch')} tokens/epoch)")
    print(f"greedy generation, batch 1:  {single:7.1f} tokens/s")
    print(f"greedy generation, batch 16: {batched:7.1f} tokens/s  ({batched / single:.1f}x batch 1)")


if __name__ == "__main__":
    main()
