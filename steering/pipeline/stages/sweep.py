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

A candidate is a margin, a schedule and the method's options (``Method.options``: G-ACT's "off"
class, weight or gate, unless the settings fix it). Not every candidate is tried: every schedule
and option at the largest margin (where they differ most), then smaller margins only for the
ways among the finalists, each until its share drops. Share usually rises with the margin, so
what is skipped could win only where it does not. Where the share is still rising at the largest
margin, the margin doubles (``_upward``) while it rises and the code stays near the asked answers'
quality, up to the method's alpha limit.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ...code.fences import from_fence
from ...code.languages import FENCE_ALIASES
from ...engine.generation import REPEAT_ROWS, GenerationConfig, generate, generate_each
from ...engine.prefix import PromptPrefix
from ...methods.registry import METHODS
from ...methods.steer import GactSteerer, SteeringSpec
from ...store.schema import ACTIVATIONS, BASE_ALPHA, CHOSEN_ALPHA, CHOSEN_SCHEDULE, CLUSTERS, causal_metric
from ..evaluation import assigned_cluster_success, best_layers, layer_alpha_sweep, scale_sweep
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
    options = {name: {"options": METHODS[name].options(s)} for name in selecting}
    advance = ctx.tick("sweep", CELL_COST * cells + n_read * (1 + _planned_from(s, len(selecting), 0, options)))

    def cell(n: int = 1) -> None:
        advance(n * CELL_COST)

    grid, batches, base, (chosen_layers, chosen_alphas), combined = layer_grid(ctx, learned, cell)
    rows = [("success", layer, grid[i, j], {"alpha": float(a)}) for i, layer in enumerate(layers)
            for j, a in enumerate(s.sweep_alphas)]
    rows += [("combined_success", None, v, {"scale": c}) for c, v in combined.items()]
    rows += [(BASE_ALPHA, int(layer), float(alpha), None) for layer, alpha in zip(chosen_layers, chosen_alphas)]
    rows += _causal_rows(ctx, learned, base, grid, batches, cell)
    # Each selecting method's candidates read the base choice as the run will have stored it.
    with_choice = learned.with_result(StageResult(metrics={"sweep": [r for r in rows if r[0] == BASE_ALPHA]}))
    makers, ways = {}, {}
    for name in selecting:
        entry = METHODS[name]
        layers_, alphas_ = entry.base(with_choice, s)

        # Candidates steer every open prompt (the selection reads none that names a language).
        def make_candidate(margin, schedule, options, entry=entry, layers_=layers_, alphas_=alphas_):
            tried = replace(s, schedule=schedule, conditional=False, **options)
            return entry.steerer(with_choice, tried, model, entry.make_spec(layers_, [a * margin for a in alphas_], tried))

        makers[name] = make_candidate
        ways[name] = {"options": [tuple(sorted(o.items())) for o in entry.options(s)],
                      "limit": entry.alpha_limit / max(max(abs(a) for a in alphas_), 1e-12)}
    tried = _select(ctx, _reading(ctx, advance), makers, advance, ways) if makers else {}
    choices = {}
    for name, candidates in tried.items():
        rows += [(CANDIDATE, None, c["success"], {"method": name, **{k: v for k, v in c.items() if k != "success"}})
                 for c in candidates]
        choices[name] = best = _choice(candidates)
        rows.append((CHOSEN_SCHEDULE, None, best["margin"], {"method": name, "schedule": best["schedule"], **best["options"],
                                                             "success": best["success"], "why": _why(best, candidates)}))
    margin = choices.get("gact_unrefined", {"margin": 1.0})["margin"]
    rows += [(CHOSEN_ALPHA, int(layer), float(alpha * margin), None) for layer, alpha in zip(chosen_layers, chosen_alphas)]
    return StageResult(metrics={"sweep": rows})


def layer_grid(ctx: Context, learned: Learned, cell=lambda n=1: None):
    """The sweep's first part, without the selection: single-layer tag success for every layer
    and alpha (``grid``), the prompt prefixes it read, the G-ACT steerer it varied, the layers
    and alphas it picks (``n_best_layers``, scaled together where that steers at least as well
    as the best single layer, else the best one alone), and the scales' successes."""
    s, model = ctx.settings, ctx.model
    layers = list(range(model.n_layers))
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
    return grid, batches, base, (chosen_layers, chosen_alphas), combined


def _selecting(learned: Learned) -> list[str]:
    """The methods whose margin and schedule the selection chooses (those the run has fitted: ACT may not be)."""
    names = dict.fromkeys(m.selection for m in METHODS.values() if m.selection)
    return [n for n in names if METHODS[n].fitted(learned)]


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


def _select(ctx: Context, reading: dict, makers: dict, advance, ways: dict | None = None) -> dict[str, list[dict]]:
    """Each method's candidates tried (see the module), all methods' decoded together: every
    schedule and option (``ways[name]["options"]``, tuples of setting pairs) at the largest margin,
    then, for the ways among a method's finalists, smaller margins, level by level, each way until
    its share falls below its method's best so far; then larger margins (``_upward``)."""
    s = ctx.settings
    margins = sorted(s.sweep_margins, reverse=True)
    ways = {name: {"options": [()], "limit": math.inf, **(ways or {}).get(name, {})} for name in makers}
    out = {name: [] for name in makers}
    going = {name: [(schedule, options) for schedule in _schedules(s) for options in ways[name]["options"]]
             for name in makers}
    n = len(reading["prompts"])
    for level, margin in enumerate(margins):
        level_tried = [(name, margin, *way) for name in makers for way in going[name]]
        advance.replan(n * (len(level_tried) - _planned(s, len(makers), level, ways)))  # the plan, now known
        if not level_tried:
            advance.replan(-n * _planned_from(s, len(makers), level + 1, ways))
            break
        measured = _screened(ctx, reading, makers, level_tried, advance)
        for name in makers:
            mine = [c for c in measured if c["method"] == name]
            out[name] += mine
            read = [c for c in out[name] if not c["screened"]]
            if level == 0:
                going[name] = list(dict.fromkeys(_way(c) for c in _finalists(read)[1]))
            else:
                best = max(c["success"] for c in read)
                going[name] = [_way(c) for c in mine if not c["screened"] and c["success"] >= best - TOLERANCE]
    _upward(ctx, reading, makers, out, ways, advance)
    return {name: [{k: v for k, v in c.items() if k != "method"} for c in candidates] for name, candidates in out.items()}


def _upward(ctx: Context, reading: dict, makers: dict, out: dict, ways: dict, advance) -> None:
    """Past the largest of ``sweep_margins``, the margin doubles for each method while its best
    share at the top margin is short of every paraphrase, above its best at every smaller margin
    (still rising), and that candidate's code stays within ``select_quality_drop`` nats per token
    of the asked answers' quality; never past the method's alpha limit (``ways[name]["limit"]``,
    as a margin). Each new level tries the ways near the top margin's best share. A candidate
    whose quality falls below that bound is kept in the table but can never be chosen."""
    s, n = ctx.settings, len(reading["prompts"])
    floor = reading["reference"] - s.select_quality_drop
    top = max(s.sweep_margins)
    while True:
        level_tried = []
        for name in makers:
            read = [c for c in out[name] if not c["screened"] and c.get("eligible", True)]
            at_top = [c for c in read if c["margin"] == top]
            below = [c["success"] for c in read if c["margin"] < top]
            if not at_top or 2 * top > ways[name]["limit"] + 1e-9:
                continue
            best = max(at_top, key=lambda c: (c["success"], _score(c)))
            rising = not below or best["success"] > max(below) + TOLERANCE
            if best["success"] < 1 - TOLERANCE and rising and _score(best) >= floor:
                level_tried += [(name, 2 * top, *_way(c)) for c in at_top if c["success"] >= best["success"] - TOLERANCE]
        if not level_tried:
            return
        advance.replan(n * len(level_tried))  # a level the plan could not know of
        for c in _screened(ctx, reading, makers, level_tried, advance):
            c["eligible"] = bool(_score(c) >= floor)
            out[c["method"]].append(c)
        top *= 2


def _way(candidate: dict) -> tuple:
    """A candidate's schedule and options: what a smaller or larger margin of it keeps."""
    return candidate["schedule"], tuple(sorted(candidate["options"].items()))


def _planned(settings, n_methods: int, level: int, ways: dict | None = None) -> int:
    """The candidates planned at ``level``: every schedule (and option) at the first, then one per
    method at each smaller margin (each level keeps the ways near its method's best: most often
    one; the plan is corrected as each level is formed; larger margins are added when tried)."""
    if level:
        return n_methods
    options = [len(w.get("options", [()])) for w in (ways or {}).values()] or [1]
    return len(_schedules(settings)) * (sum(options) + n_methods - len(options))


def _planned_from(settings, n_methods: int, level: int, ways: dict | None = None) -> int:
    """The candidates planned at ``level`` and every later one."""
    return sum(_planned(settings, n_methods, later, ways) for later in range(level, len(settings.sweep_margins)))


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
        method, margin, schedule, *options = c["tried"]
        out.append({"method": method, "margin": float(margin), "schedule": schedule,
                    "options": dict(options[0]) if options else {}, "success": float(np.mean(opened)),
                    "quality": _quality(logprobs), "asked_quality": reading["reference"],
                    "screened": 0 if extra or not rest else len(first)})
    return out


def _candidates(ctx: Context, reading: dict, makers: dict, tried: list[tuple], rows: list[int], advance) -> list[dict]:
    """Each candidate ``(method, margin, schedule, options)`` read on the paraphrases ``rows``: which
    continuations open the target's fence, and the log-probability of their code as the answer
    to the task asked explicitly. They decode side by side (``generate_each``), at most
    ``REPEAT_ROWS`` times a batch's rows at once (a candidate until the fence rides along with
    its every-token twin: it forks from it at the fence line, ``generate_each``); the code is
    scored against the asked prompts' prompt pass, run once (``_reading``)."""
    prompts = [reading["prompts"][i] for i in rows]
    config, out = reading["config"], {}
    group = max(1, REPEAT_ROWS * config.batch_size // max(len(prompts), 1))
    for chunk in _chunks(tried, group):
        steerers = [makers[name](margin, schedule, dict(options[0]) if options else {})
                    for name, margin, schedule, *options in chunk]
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
    name, margin, schedule, *options = candidate
    return (name, margin, "all", *options) if schedule == "fence" else None


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
    whose code could not be scored counts as the worst); screened-out candidates, and those past
    the margins given whose quality fell too far (``_upward``), never are."""
    candidates = [c for c in candidates if not c.get("screened") and c.get("eligible", True)]
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
    options = "".join(f", {k.replace('_', ' ')} {v}" for k, v in best.get("options", {}).items())
    too_far = sum(not c.get("eligible", True) for c in candidates)
    return (f"{best['schedule']}{options} at {best['margin']:g}x its base alphas (the grid's smallest that steer the neutral prompts; ACT: its own): "
            f"{best['success']:.0%} of the held-in continuations open the target's fence; {len(near)} of the "
            f"{len(candidates)} candidates tried ({sum(bool(c.get('screened')) for c in candidates)} left out after a "
            f"first share of the paraphrases" + (f"; {too_far} past the margins given whose code fell too far below the "
                                                 "asked answers'" if too_far else "") +
            f") came within {TOLERANCE:.0%} of the best share, {len(good)} of those within "
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
