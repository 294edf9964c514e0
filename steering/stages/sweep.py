"""Sweep: single-layer success for every layer and alpha; then the best layers together, at the
common scale of their alphas that steers best (or the best layer alone, if that is better);
then, per layer, the causal test of the probe."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..evaluation import assigned_cluster_success, best_layers, layer_alpha_sweep, scale_sweep
from ..methods import METHODS
from ..schema import ACTIVATIONS, CHOSEN_ALPHA, CLUSTERS, causal_metric
from ..steer import GactSteerer, SteeringSpec
from .base import Context, Learned, StageResult

COMBINE_SCALES = (0.5, 0.75, 1.0)  # common scales tried for the chosen layers' alphas together


def sweep(ctx: Context, learned: Learned) -> StageResult:
    s, model = ctx.settings, ctx.model
    layers = list(range(model.n_layers))
    advance = ctx.tick("sweep", len(layers) * (len(s.sweep_alphas) + 1) + len(COMBINE_SCALES))

    # The learned state (vectors, probe), read once; each cell only changes the spec.
    base = METHODS["gact_unrefined"].steerer(learned, s, model, SteeringSpec((0,), (1.0,), "gact", hook_point=s.hook_point))

    def make(chosen, alphas):
        return replace(base, spec=SteeringSpec(tuple(chosen), tuple(alphas), "gact", hook_point=s.hook_point))

    grid, batches = layer_alpha_sweep(model, ctx.neutral_prompts, lambda layer, alpha: make([layer], [alpha]),
                                      layers, s.sweep_alphas, s.target, advance)
    chosen_layers, chosen_alphas = best_layers(grid, layers, s.sweep_alphas, n=s.n_best_layers)
    combined = {}
    if len(chosen_layers) > 1:
        combined = scale_sweep(batches, make, chosen_layers, chosen_alphas, s.target, COMBINE_SCALES)
        scale = min(combined, key=lambda c: (-combined[c], c))
        if combined[scale] >= grid.max():
            chosen_alphas = [a * scale for a in chosen_alphas]
        else:
            chosen_layers, chosen_alphas = best_layers(grid, layers, s.sweep_alphas, n=1)
    advance(len(COMBINE_SCALES))
    rows = [("success", layer, grid[i, j], {"alpha": float(a)}) for i, layer in enumerate(layers)
            for j, a in enumerate(s.sweep_alphas)]
    rows += [("combined_success", None, v, {"scale": c}) for c, v in combined.items()]
    rows += _causal_rows(ctx, learned, base, grid, batches, advance)
    rows += [(CHOSEN_ALPHA, int(layer), float(alpha), None) for layer, alpha in zip(chosen_layers, chosen_alphas)]
    return StageResult(metrics={"sweep": rows})


def _causal_rows(ctx: Context, learned: Learned, base: GactSteerer, grid: np.ndarray, batches, advance) -> list[tuple]:
    """Does the probe pick the right vector? Per layer, steering with the cluster vector the
    probe picks for each prompt, a random cluster's, and the prompt's own cluster's (the
    oracle), at the sweep's alpha where that layer's success is nearest 50% (most room)."""
    s = ctx.settings
    acts = learned.tensors(ACTIVATIONS)
    labels = learned.tensors(CLUSTERS)["labels"].numpy()
    k = base.vectors.shape[1]
    picked = base.probe.predict_proba(acts["neutral"])[..., :k].argmax(-1)  # [layers, tasks]
    rng = np.random.default_rng(s.seed)
    rows = []
    for layer in range(ctx.model.n_layers):
        alpha = float(s.sweep_alphas[int(np.argmin(np.abs(grid[layer] - 0.5)))])
        spec = SteeringSpec((layer,), (alpha,), hook_point=s.hook_point)
        for name, assignment in (("probe", picked[layer]), ("random", rng.integers(0, k, len(ctx.prompts))),
                                 ("oracle", labels[layer])):
            success = assigned_cluster_success(batches, s.target, base.vectors, spec, assignment)
            rows.append((causal_metric(name), layer, success, {"alpha": alpha}))
        advance()
    return rows
