"""Sweep: single-layer success for every layer and alpha on the neutral prompts; the best
layers together, at the common scale of their alphas that steers best (or the best layer alone);
then the selection of a margin on those alphas and a schedule, by what users want; and, per
layer, the causal test of the probe.

The grid chooses on the neutral prompts; the selection reads the other held-in phrasing, the
paraphrases the probes train on (``probe_paraphrases``), so a margin that other phrasings need
shows there. The held-out phrasings, on which the evaluation reports, are never read. For each
selecting method (``Method.selection``: G-ACT, mean difference, ACT when fitted), and each
candidate (a margin of ``sweep_margins`` and a schedule of ``sweep_schedules``), it steers a
greedy continuation of every such prompt until its fence has named a language and
``select_tokens`` of code follow (instruct models may write up to ``select_prose`` tokens of
prose first, and choose the language there). Candidates within ``TOLERANCE`` of the best share
that opens the target's fence compete on quality: the mean log-probability of their code as the
answer to the task asked explicitly (does the steered code read like the code the model writes
when asked?). Of those within ``TOLERANCE`` nats per token of the best quality, the smallest
margin wins (the least intervention), then the better quality.

Not every candidate is tried: every schedule at the largest margin (where schedules differ
most), then smaller margins only for the schedules among the finalists, each until its share
drops. Share usually rises with the margin, so what is skipped could win only where it does not.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..evaluation import assigned_cluster_success, best_layers, layer_alpha_sweep, scale_sweep
from ..fences import from_fence
from ..generation import REPEAT_ROWS, GenerationConfig, generate, generate_each
from ..languages import FENCE_ALIASES
from ..methods import METHODS
from ..prefix import PromptPrefix
from ..schema import ACT, ACTIVATIONS, BASE_ALPHA, CHOSEN_ALPHA, CHOSEN_SCHEDULE, CLUSTERS, causal_metric
from ..steer import GactSteerer, SteeringSpec
from .base import Context, Learned, StageResult

COMBINE_SCALES = (0.5, 0.75, 1.0)  # common scales tried for the chosen layers' alphas together
# A grid cell's cost in the selection's continuations (the sweep's unit of progress), as measured
# on Qwen2.5-Coder-0.5B in bfloat16 (2 CPU cores): the 123 cells of the grid, the causal test and the
# scales took about 2 minutes, a continuation about 0.6 s. At 0.5 the first estimate was 2.4x the truth.
CELL_COST = 1.5
TOLERANCE = 0.02  # fenced share, and log-probability per token, within which candidates count as equal
CANDIDATE = "candidate"  # a selection candidate's fenced share (``extra``: margin, schedule, quality)


def sweep(ctx: Context, learned: Learned) -> StageResult:
    s, model = ctx.settings, ctx.model
    layers = list(range(model.n_layers))
    selecting = _selecting(learned)
    n_read = len(ctx.heldin_prompts(neutral=False)[1]) if selecting else 0
    cells = len(layers) * (len(s.sweep_alphas) + 1) + len(COMBINE_SCALES)  # the grid, the causal test, the scales
    # Progress in continuations of the selection (its cost), a cell weighted by what it decodes;
    # the candidates as planned (``_planned``), the plan corrected level by level.
    advance = ctx.tick("sweep", CELL_COST * cells + n_read * (1 + _planned_from(s, len(selecting), 0)))

    def cell(n: int = 1) -> None:
        advance(n * CELL_COST)

    # The learned state (vectors, probe), read once; each cell only changes the spec.
    base = METHODS["gact_unrefined"].steerer(learned, s, model, SteeringSpec((0,), (1.0,), "gact", hook_point=s.hook_point))

    def make(chosen, alphas):
        return replace(base, spec=METHODS["gact_unrefined"].make_spec(chosen, alphas, replace(s, schedule="all")))

    grid, batches = layer_alpha_sweep(model, ctx.neutral_prompts, lambda layer, alpha: make([layer], [alpha]),
                                      layers, s.sweep_alphas, s.target, cell)
    chosen_layers, chosen_alphas = best_layers(grid, layers, s.sweep_alphas, n=s.n_best_layers)
    combined = {}
    if len(chosen_layers) > 1:
        combined = scale_sweep(batches, make, chosen_layers, chosen_alphas, s.target, COMBINE_SCALES)
        scale = min(combined, key=lambda c: (-combined[c], c))
        if combined[scale] >= grid.max():
            chosen_alphas = [a * scale for a in chosen_alphas]
        else:
            chosen_layers, chosen_alphas = best_layers(grid, layers, s.sweep_alphas, n=1)
    cell(len(COMBINE_SCALES))
    rows = [("success", layer, grid[i, j], {"alpha": float(a)}) for i, layer in enumerate(layers)
            for j, a in enumerate(s.sweep_alphas)]
    rows += [("combined_success", None, v, {"scale": c}) for c, v in combined.items()]
    rows += [(BASE_ALPHA, int(layer), float(alpha), None) for layer, alpha in zip(chosen_layers, chosen_alphas)]
    rows += _causal_rows(ctx, learned, base, grid, batches, cell)
    # Each selecting method's candidates read the base choice as the run will have stored it.
    with_choice = learned.with_result(StageResult(metrics={"sweep": [r for r in rows if r[0] == BASE_ALPHA]}))
    makers = {}
    for name in selecting:
        entry = METHODS[name]
        layers_, alphas_ = entry.base(with_choice, s)

        def make_candidate(margin, schedule, entry=entry, layers_=layers_, alphas_=alphas_):
            spec = entry.make_spec(layers_, [a * margin for a in alphas_], replace(s, schedule=schedule))
            return entry.steerer(with_choice, replace(s, schedule=schedule), model, spec)

        makers[name] = make_candidate
    tried = _select(ctx, _reading(ctx, advance), makers, advance) if makers else {}
    choices = {}
    for name, candidates in tried.items():
        rows += [(CANDIDATE, None, c["success"], {"method": name, **{k: v for k, v in c.items() if k != "success"}})
                 for c in candidates]
        choices[name] = best = _choice(candidates)
        rows.append((CHOSEN_SCHEDULE, None, best["margin"], {"method": name, "schedule": best["schedule"],
                                                             "why": _why(best, candidates)}))
    margin = choices.get("gact_unrefined", {"margin": 1.0})["margin"]
    rows += [(CHOSEN_ALPHA, int(layer), float(alpha * margin), None) for layer, alpha in zip(chosen_layers, chosen_alphas)]
    return StageResult(metrics={"sweep": rows})


def _selecting(learned: Learned) -> list[str]:
    """The methods whose margin and schedule the selection chooses (ACT only when fitted)."""
    names = dict.fromkeys(m.selection for m in METHODS.values() if m.selection)
    return [n for n in names if n != "act" or learned.has(ACT)]


def _reading(ctx: Context, advance) -> dict:
    """What every candidate is read against, computed once: the training paraphrases, the task
    asked explicitly for each, the decoding, and the asked answers' own quality."""
    s, model = ctx.settings, ctx.model
    ids, prompts = ctx.heldin_prompts(neutral=False)
    config = GenerationConfig(max_new_tokens=s.select_prose + s.select_tokens, seed=s.seed, stop="tag",
                              after_tag=s.select_tokens, batch_size=max(s.batch_size, len(prompts)))
    explicit = {t.id: t.prompts[s.target] for t in ctx.prompts}
    asked_prompts = [explicit[i] for i in ids]
    asked = generate(model, asked_prompts, config, on_answers=advance)
    scorer = PromptPrefix(model, asked_prompts)  # the asked prompts run once for every candidate's code
    reference = _quality(scorer.logprob([from_fence(a.text) for a in asked]))
    # A candidate's continuation that opens another language's fence ends there: its code is not read.
    return {"prompts": prompts, "scorer": scorer, "reference": reference, "config": replace(config, after_tag_only=s.target)}


def _select(ctx: Context, reading: dict, makers: dict, advance) -> dict[str, list[dict]]:
    """Each method's candidates tried (see the module), all methods' decoded together: every
    schedule at the largest margin, then, for the schedules among a method's finalists, smaller
    margins, level by level, each schedule until its share falls below its method's best so far."""
    margins, schedules = sorted(ctx.settings.sweep_margins, reverse=True), _schedules(ctx.settings)
    out = {name: [] for name in makers}
    going = {name: list(schedules) for name in makers}
    n = len(reading["prompts"])
    for level, margin in enumerate(margins):
        level_tried = [(name, margin, schedule) for name in makers for schedule in going[name]]
        advance.replan(n * (len(level_tried) - _planned(ctx.settings, len(makers), level)))  # the plan, now known
        if not level_tried:
            advance.replan(-n * _planned_from(ctx.settings, len(makers), level + 1))
            break
        measured = _screened(ctx, reading, makers, level_tried, advance)
        for name in makers:
            mine = [c for c in measured if c["method"] == name]
            out[name] += mine
            read = [c for c in out[name] if not c["screened"]]
            if level == 0:
                going[name] = list(dict.fromkeys(c["schedule"] for c in _finalists(read)[1]))
            else:
                best = max(c["success"] for c in read)
                going[name] = [c["schedule"] for c in mine if not c["screened"] and c["success"] >= best - TOLERANCE]
    return {name: [{k: v for k, v in c.items() if k != "method"} for c in candidates] for name, candidates in out.items()}


def _planned(settings, n_methods: int, level: int) -> int:
    """The candidates planned at ``level``: every schedule at the first, then one per method at
    each smaller margin (each level keeps the schedules near its method's best: most often one;
    the plan is corrected as each level is formed)."""
    return len(_schedules(settings)) * n_methods if level == 0 else n_methods


def _planned_from(settings, n_methods: int, level: int) -> int:
    """The candidates planned at ``level`` and every later one."""
    return sum(_planned(settings, n_methods, later) for later in range(level, len(settings.sweep_margins)))


def _screened(ctx: Context, reading: dict, makers: dict, tried: list[tuple], advance) -> list[dict]:
    """``tried`` read by successive halving: every candidate on ``select_screen`` of the
    paraphrases (every third, across the tasks, by default), and only those within
    ``select_screen_tolerance`` of their method's best share there on the rest; a candidate
    left out keeps its screened share, marked ``screened`` with the number of paraphrases read."""
    s, n = ctx.settings, len(reading["prompts"])
    step = round(1 / s.select_screen)
    first = list(range(0, n, step)) if step > 1 and n >= 2 * step else list(range(n))
    screened = set(first)
    rest = [i for i in range(n) if i not in screened]
    part = _candidates(ctx, reading, makers, tried, first, advance)
    best = {}
    for c in part:
        best[c["method"]] = max(best.get(c["method"], 0.0), float(np.mean(c["opened"])))
    going = [c for c in part if np.mean(c["opened"]) >= best[c["method"]] - s.select_screen_tolerance] if rest else part
    advance.replan(-(len(part) - len(going)) * len(rest))  # the rest those left out are not read on
    more = dict(zip(map(id, going), _candidates(ctx, reading, makers, [c["tried"] for c in going], rest, advance))) if rest else {}
    out = []
    for c in part:
        extra = more.get(id(c))
        opened = c["opened"] + (extra["opened"] if extra else [])
        logprobs = c["logprobs"] + (extra["logprobs"] if extra else [])
        method, margin, schedule = c["tried"]
        out.append({"method": method, "margin": float(margin), "schedule": schedule, "success": float(np.mean(opened)),
                    "quality": _quality(logprobs), "asked_quality": reading["reference"],
                    "screened": 0 if extra or not rest else len(first)})
    return out


def _candidates(ctx: Context, reading: dict, makers: dict, tried: list[tuple], rows: list[int], advance) -> list[dict]:
    """Each candidate ``(method, margin, schedule)`` read on the paraphrases ``rows``: which
    continuations open the target's fence, and the log-probability of their code as the answer
    to the task asked explicitly. They decode side by side (``generate_each``), at most
    ``REPEAT_ROWS`` times a batch's rows at once (a candidate until the fence rides along with
    its every-token twin: it forks from it at the fence line, ``generate_each``); the code is
    scored against the asked prompts' prompt pass, run once (``_reading``)."""
    prompts = [reading["prompts"][i] for i in rows]
    config, out = reading["config"], {}
    group = max(1, REPEAT_ROWS * config.batch_size // max(len(prompts), 1))
    for chunk in _chunks(tried, group):
        steerers = [makers[name](margin, schedule) for name, margin, schedule in chunk]
        forks = {k: chunk.index(_twin(candidate)) for k, candidate in enumerate(chunk) if _twin(candidate) in chunk}
        for candidate, answers in zip(chunk, generate_each(ctx.model, prompts, config, steerers, advance, forks)):
            opened = [FENCE_ALIASES.get(a.detection.tag) == ctx.settings.target and a.detection.fenced for a in answers]
            code = [from_fence(a.text) for a, ok in zip(answers, opened) if ok]
            asked = [row for row, ok in zip(rows, opened) if ok]
            out[candidate] = {"tried": candidate, "method": candidate[0], "opened": opened,
                              "logprobs": list(reading["scorer"].logprob(code, asked)) if code else []}
    return [out[candidate] for candidate in tried]


def _twin(candidate: tuple) -> tuple | None:
    """The every-token candidate that ``candidate`` decodes as until its fence line, if it steers until the fence."""
    name, margin, schedule = candidate
    return (name, margin, "all") if schedule == "fence" else None


def _chunks(tried: list[tuple], group: int) -> list[list[tuple]]:
    """``tried`` in chunks of ``group`` candidates, each candidate until the fence placed with its
    every-token twin and not counted (its rows join the batch only at their fence line)."""
    riders = {_twin(c): c for c in tried if _twin(c) in tried}
    leads = [c for c in tried if c not in riders.values()]
    return [[c for lead in leads[i : i + group] for c in (lead, riders.get(lead)) if c is not None]
            for i in range(0, len(leads), group)]


def _quality(logprobs) -> float:
    return float(np.nanmean(logprobs)) if np.isfinite(logprobs).any() else float("nan")


def _finalists(candidates: list[dict]) -> tuple[list[dict], list[dict]]:
    """Those near the best fenced share, and of them those near the best quality (a candidate
    whose code could not be scored counts as the worst); screened-out candidates never are."""
    candidates = [c for c in candidates if not c.get("screened")]
    top = max(c["success"] for c in candidates)
    near = [c for c in candidates if c["success"] >= top - TOLERANCE]
    best = max(_score(c) for c in near)
    return near, [c for c in near if _score(c) >= best - TOLERANCE]


def _score(candidate: dict) -> float:
    return candidate["quality"] if np.isfinite(candidate["quality"]) else -np.inf


def _schedules(settings) -> list[str]:
    """The schedules the selection tries: the gate reads the probes' "off" class, which a run
    without ``adaptive`` has not."""
    return [k for k in settings.sweep_schedules if k != "gated" or settings.adaptive]


def _choice(candidates: list[dict]) -> dict:
    return min(_finalists(candidates)[1], key=lambda c: (c["margin"], -_score(c)))


def _why(best: dict, candidates: list[dict]) -> str:
    near, good = _finalists(candidates)
    return (f"{best['schedule']} at {best['margin']:g}x its base alphas (the grid's smallest that steer the neutral prompts; ACT: its own): "
            f"{best['success']:.0%} of the held-in continuations open the target's fence; {len(near)} of the "
            f"{len(candidates)} candidates tried ({sum(bool(c.get('screened')) for c in candidates)} left out after a "
            f"first share of the paraphrases) came within {TOLERANCE:.0%} of the best share, {len(good)} of those within "
            f"{TOLERANCE} nats/token of the best quality, and this is the smallest margin among them (its code's mean "
            f"log-probability as the asked answer {best['quality']:.3f} per token; the asked answers' own "
            f"{best['asked_quality']:.3f})")


def _causal_rows(ctx: Context, learned: Learned, base: GactSteerer, grid: np.ndarray, batches, advance) -> list[tuple]:
    """Does the probe pick the right vector? Per layer, steering with the cluster vector the
    probe picks for each prompt, a random cluster's, and the prompt's own cluster's (the
    oracle), at the sweep's alpha where that layer's success is nearest 50% (most room). Read
    on the neutral prompts, the first rows of ``batches``."""
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
