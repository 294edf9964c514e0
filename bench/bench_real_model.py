"""The engine on a real code model (Qwen2.5-Coder-0.5B-Instruct by default), each figure a ratio of
two things timed side by side in one run, in turn, medians of ``--repeats``:

1. Steerscope's ``generate`` against ``transformers``' ``generate`` on the same model object, same
   prompts, same number of greedy tokens, batch 1 and 16, unsteered and G-ACT-steered (the
   transformers side gets the same steering function as a plain torch forward hook): CPU time
   (process time, all threads) and wall time;
2. extraction of all layers' residual stream against one plain forward pass (with logits) of the
   same batch;
3. one sweep cell: before (a prefill and 4 generated tokens per prompt, the old tag test) and
   after (two forward tokens per prompt on a cached prompt prefix);
4. with ``--pipeline``, the whole pipeline on the 46 shipped tasks, with each stage's time.

    python bench/bench_real_model.py [--model PATH.gguf] [--repeats 3] [--pipeline runs/qwen-bench]

The model defaults to ``$STEERSCOPE_REAL_MODEL`` or the file ``../shared/tools/fetch-real-model``
writes. Steering uses a synthetic G-ACT steerer (random unit cluster vectors, a probe fitted on
random activations) on two middle layers: the cost of steering does not depend on what it learned.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, no install

from steering.code.prompts import PromptSet
from steering.engine.activations import extract_activations
from steering.engine.forward import encode_prompts, positions_of
from steering.engine.generation import GenerationConfig, generate
from steering.engine.models import load_model
from steering.engine.prefix import PromptPrefix, tag_success
from steering.methods.probes import GactProbe
from steering.methods.steer import GactSteerer, SteeringSpec

DEFAULT_MODEL = os.environ.get("STEERSCOPE_REAL_MODEL",
                               str(Path.home() / ".cache/steerscope/models/qwen2.5-coder-0.5b-instruct.gguf"))


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def side_by_side(fns: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each function, run in turn ``repeats`` times."""
    runs = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            runs[name].append(timed(fn))
    return {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)) for name, rs in runs.items()}


def synthetic_steerer(model, layers: tuple[int, ...], k: int = 3) -> GactSteerer:
    generator = torch.Generator().manual_seed(0)
    vectors = torch.randn(model.n_layers, k, model.d_model, generator=generator)
    vectors = vectors / vectors.norm(dim=-1, keepdim=True)
    X = torch.randn(60, model.n_layers, model.d_model, generator=generator)
    y = torch.randint(0, k + 1, (model.n_layers, 60), generator=generator).numpy()
    probe = GactProbe(k + 1, epochs=20).fit(X, y)
    return GactSteerer(SteeringSpec(layers, (2.0,) * len(layers), "gact"), vectors=vectors, probe=probe)


def plain_hooks(model, steerer) -> list:
    """The steerer's hook functions as plain torch forward hooks (no thread gate) on the same
    modules: what a user would add to ``transformers``' ``generate``."""
    handles = []
    for name, fn in steerer.hooks(model):
        module, _, point = model.hook_map.resolve(name)
        handles.append(module.register_forward_hook(
            lambda _m, _a, out, fn=fn, point=point: fn(out[0] if isinstance(out, tuple) else out, hook=point)))
    return handles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--pipeline", type=Path, default=None, help="also run the whole pipeline into this new run directory")
    args = parser.parse_args()

    started = time.perf_counter()
    model = load_model(args.model)
    print(f"model {model.facts.name}: {model.n_layers} layers, d_model {model.d_model}, "
          f"{model.facts.n_params / 1e6:.0f}M parameters, {torch.get_num_threads()} threads; "
          f"loaded in {time.perf_counter() - started:.1f} s")
    tasks = PromptSet.load()
    neutral = [t.neutral for t in tasks]
    middle = model.n_layers // 2
    steerer = synthetic_steerer(model, (middle, middle + 1))

    print(f"\n1. generation, {args.tokens} greedy tokens, medians of {args.repeats} (wall s / CPU s)")
    for batch in (1, 16):
        prompts = neutral[:batch]
        ids, mask = encode_prompts(model, prompts)
        config = GenerationConfig(max_new_tokens=args.tokens, batch_size=batch, stop="none")

        def ours(hooks=()):
            answers = generate(model, prompts, config, fwd_hooks=hooks)
            assert all(a.n_tokens == args.tokens for a in answers), "an answer ended early: pick other prompts"

        @torch.no_grad()
        def theirs(steered=False):
            handles = plain_hooks(model, steerer) if steered else []
            try:
                model.hf_model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.tokens,
                                        min_new_tokens=args.tokens, do_sample=False, pad_token_id=model.tokenizer.pad_token_id)
            finally:
                for handle in handles:
                    handle.remove()

        result = side_by_side({"ours": ours, "transformers": theirs,
                               "ours steered": lambda: ours(steerer.hooks(model)),
                               "transformers steered": lambda: theirs(True)}, args.repeats)
        for kind in ("", " steered"):
            (ow, oc), (tw, tc) = result[f"ours{kind}"], result[f"transformers{kind}"]
            print(f"   batch {batch:2d}{kind or ' unsteered'}: Steerscope {ow:.2f} / {oc:.2f}, transformers {tw:.2f} / {tc:.2f}"
                  f"  -> ratio CPU {oc / tc:.3f}, wall {ow / tw:.3f}")

    batch = neutral[:16]
    ids, mask = encode_prompts(model, batch, "```")

    @torch.no_grad()
    def plain_forward():
        model.hf_model(input_ids=ids, attention_mask=mask, position_ids=positions_of(mask))

    def extraction():
        extract_activations(model, batch, continuation="```", batch_size=16, cache_dir=None)

    result = side_by_side({"forward": plain_forward, "extract": extraction}, args.repeats)
    print(f"\n2. extraction of all {model.n_layers} layers, 16 prompts: plain forward {result['forward'][0]:.2f} s wall "
          f"/ {result['forward'][1]:.2f} s CPU, extraction {result['extract'][0]:.2f} / {result['extract'][1]:.2f}"
          f"  -> ratio CPU {result['extract'][1] / result['forward'][1]:.3f}, wall {result['extract'][0] / result['forward'][0]:.3f}")

    cell_steerer = GactSteerer(SteeringSpec((middle,), (2.0,), "gact"), vectors=steerer.vectors, probe=steerer.probe)
    prefix_seconds = time.perf_counter()
    prefix = PromptPrefix(model, batch)
    prefix_seconds = time.perf_counter() - prefix_seconds
    old_config = GenerationConfig(max_new_tokens=4, batch_size=16, stop="none")
    result = side_by_side({
        "before": lambda: generate(model, batch, old_config, fwd_hooks=cell_steerer.hooks(model)),
        "after": lambda: tag_success([prefix], "cpp", cell_steerer),
    }, args.repeats)
    print(f"\n3. one sweep cell, 16 prompts: before (prefill + 4 generated tokens) {result['before'][0]:.2f} s wall, "
          f"after (2 tokens on the cached prefix) {result['after'][0]:.2f} s  -> {result['before'][0] / result['after'][0]:.1f}x faster; "
          f"the prefix itself, once per sweep: {prefix_seconds:.2f} s")

    if args.pipeline:
        from steering.pipeline.runner import Pipeline, PipelineSettings
        from steering.store.storage import Run

        print(f"\n4. the whole pipeline on {len(tasks)} tasks (target C++) into {args.pipeline}")
        pipeline = Pipeline(model, tasks, Run(args.pipeline, create=True), PipelineSettings(), model_ref=args.model)
        pipeline.run_all()
        seconds = pipeline.stage_seconds()
        for stage, value in seconds.items():
            print(f"   {stage:10s} {value:7.1f} s")
        print(f"   {'total':10s} {sum(seconds.values()):7.1f} s ({sum(seconds.values()) / 60:.1f} min)")


if __name__ == "__main__":
    main()
