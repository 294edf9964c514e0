"""Does gradient refinement move steering? Success before and after, at a weak strength.

On a finished run: the chosen G-ACT layers are scaled down until the fenced-tag success on the
training prompts is in 20-60% (room to move either way). Refinement then runs on the training
tasks' neutral prompts, once per seed, and success is read on prompts it never saw: the
held-out phrasings of the validation tasks (unseen task, unseen wording) and of every task
(unseen wording). Two variants: the probe alone (what refinement could learn before) and the
probe with a per-layer gain (the default). Controls at the same strength: a random probe, and
each prompt steered by its own task's cluster vector (the oracle).

    python bench/bench_refine.py --run runs/demo
    python bench/bench_refine.py --run runs/qwen --model "$(../shared/tools/fetch-real-model)"
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from steering.engine.models import load_model  # noqa: E402
from steering.engine.prefix import PromptPrefix, prefixes, tag_success  # noqa: E402
from steering.methods.refine import refine_steering  # noqa: E402
from steering.pipeline.evaluation import assigned_cluster_success  # noqa: E402
from steering.pipeline.runner import Pipeline  # noqa: E402
from steering.store.storage import Run  # noqa: E402

SCALES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a run after its sweep stage")
    parser.add_argument("--model", default=None, help="the run's model (default: the one it records)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="refinement steps (default: the run's)")
    args = parser.parse_args()
    started = time.perf_counter()
    model = load_model(args.model or Run(args.run).settings.get("model_ref"))
    pipeline = Pipeline.reopen(args.run, model)
    s = pipeline.settings
    tasks = pipeline.prompts.tasks
    base = pipeline.steerer("gact_unrefined")
    spec = base.spec
    _, _, groups, _ = pipeline.probe_data()
    train = sorted(set(groups[base.probe.train_idx_].tolist()))
    val = sorted(set(range(len(tasks))) - set(train))
    held = [(i, p) for i, t in enumerate(tasks) for p in t.paraphrases[s.probe_paraphrases:]]
    if not held:
        raise SystemExit("no held-out phrasings in this prompt set")
    train_prefix = PromptPrefix(model, [tasks[i].neutral for i in train])
    sets = {"held-out phrasings, validation tasks": [(i, p) for i, p in held if i in val],
            "held-out phrasings, all tasks": held}
    batches = {name: prefixes(model, [p for _, p in rows]) for name, rows in sets.items() if rows}
    labels = pipeline.run.load("clusters")[0]["labels"].numpy()

    scaled = {c: replace(base, spec=replace(spec, alphas=tuple(a * c for a in spec.alphas))) for c in SCALES}
    train_success = {c: tag_success([train_prefix], s.target, st) for c, st in scaled.items()}
    room = [c for c in SCALES if 0.2 <= train_success[c] <= 0.6]
    scale = min(room, key=lambda c: abs(train_success[c] - 0.4)) if room else min(SCALES, key=lambda c: abs(train_success[c] - 0.4))
    weak = scaled[scale]
    print(f"model {model.facts.name}; layers {list(spec.layers)}, alphas {list(spec.alphas)}; scale {scale} "
          f"(training success {train_success[scale]:.0%}; by scale: "
          + ", ".join(f"{c}: {v:.0%}" for c, v in train_success.items()) + ")")
    if not room:
        print("no scale puts the training success in 20-60%: the nearest to 40% is used")

    def read(steerer) -> dict:
        return {name: tag_success(b, s.target, steerer) for name, b in batches.items()}

    rows = {"G-ACT before refinement": [read(weak)]}
    # Each prompt steered by its own task's cluster vector (one labelling for all layers, as the
    # default shared clustering gives).
    rows["oracle cluster (control)"] = [{name: assigned_cluster_success(
        b, s.target, weak.vectors, weak.spec, [labels[spec.layers[0], i] for i, _ in sets[name]])
        for name, b in batches.items()}]
    for variant, gains in (("refined: probe only", False), ("refined: probe + per-layer gain", True)):
        rows[variant] = []
        for seed in range(args.seeds):
            refined, losses = refine_steering(weak, train_prefix, s.target, steps=args.steps or s.refine_steps,
                                              lr=s.refine_lr, prox=s.refine_prox, fluency=s.refine_fluency,
                                              gains=gains, seed=seed)
            outcome = read(refined)
            if gains:
                outcome["gains"] = [round(float(torch.exp(refined.log_gains[layer])), 2) for layer in spec.layers]
            outcome["loss"] = (round(losses[0], 3), round(losses[-1], 3))
            rows[variant].append(outcome)
    rows["random probe (control)"] = []
    for seed in range(args.seeds):
        generator = torch.Generator().manual_seed(seed)
        probe = base.probe.__class__.from_state_tensors(base.probe.state_tensors())
        probe.coef_ = torch.randn(probe.coef_.shape, generator=generator) * probe.coef_.std()
        probe.intercept_ = torch.zeros_like(probe.intercept_)
        rows["random probe (control)"].append(read(replace(weak, probe=probe)))

    names = list(batches)
    print(f"\n| condition | {' | '.join(names)} | notes |")
    print("|---" * (len(names) + 2) + "|")
    for condition, outcomes in rows.items():
        cells = []
        for name in names:
            values = np.array([o[name] for o in outcomes])
            cells.append(f"{values.mean():.0%}" + (f" ± {values.std():.0%} ({len(values)} seeds)" if len(values) > 1 else ""))
        notes = "; ".join(f"seed {i}: gains {o['gains']}" for i, o in enumerate(outcomes) if "gains" in o)
        notes += "; ".join(f"seed {i}: loss {o['loss'][0]} -> {o['loss'][1]}" for i, o in enumerate(outcomes)
                           if "loss" in o and "gains" not in o)
        print(f"| {condition} | {' | '.join(cells)} | {notes} |")
    print(f"\n{len(train)} training tasks, {len(val)} validation tasks; {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
