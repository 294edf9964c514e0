"""Issue 16: steering schedules, the references every evaluation carries, its token budget, and
the intervals and paired comparisons its tables report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import steering.methods.steer as steer_module
from steering.code.fences import fence_written
from steering.code.prompts import PromptSet
from steering.core.stats import excludes_zero, paired_interval, rate_interval, unpaired_difference
from steering.engine.generation import GenerationConfig, generate
from steering.methods.steer import MeanDiffSteerer, SteeringSpec
from steering.pipeline.results import RunResults
from steering.pipeline.runner import Pipeline, PipelineSettings
from steering.pipeline.stages.evaluate import asked_budget
from steering.store.storage import Run

PROMPTS = ["Write a function that sorts an array with merge sort.", "Write a function that computes a dot product."]
LAYER, ALPHA = 4, 6.0


def _vectors(model, seed=0):
    vectors = torch.zeros(model.n_layers, model.d_model)
    vectors[LAYER] = torch.randn(model.d_model, generator=torch.Generator().manual_seed(seed))
    return vectors


def _steerer(model, gate_probe=None, alpha=ALPHA, **spec):
    return MeanDiffSteerer(SteeringSpec((LAYER,), (alpha,), "mean_diff", **spec), _vectors(model), gate_probe=gate_probe)


@pytest.fixture
def steered_positions(monkeypatch):
    """Counts, per generate call, the (row, position) pairs a schedule let through."""
    counts = []
    original = steer_module.schedule_weights

    def counting(spec, control, steered, target_probability=None):
        weights = original(spec, control, steered, target_probability)
        full = torch.ones(steered.shape[:2]) if weights is None else weights[..., 0].cpu()
        counts.append(full.sum(1))  # per row of this pass
        return weights

    monkeypatch.setattr(steer_module, "schedule_weights", counting)
    return counts


CONFIG = GenerationConfig(max_new_tokens=12, stop="none")


@pytest.mark.parametrize("k", [1, 3, 5])
def test_a_window_of_k_tokens_steers_exactly_k_positions(embedded, steered_positions, k):
    [answer] = generate(embedded, PROMPTS[:1], CONFIG, steerer=_steerer(embedded, schedule="window", window=k))
    assert answer.n_tokens == 12
    assert sum(float(c.sum()) for c in steered_positions) == k  # 12 passes, k of them steered
    # The first k tokens are those of steering every token; the rest differ from it.
    [full] = generate(embedded, PROMPTS[:1], CONFIG, steerer=_steerer(embedded))
    [plain] = generate(embedded, PROMPTS[:1], CONFIG)
    assert answer.tokens[:k] == full.tokens[:k]
    assert full.tokens != plain.tokens


def test_window_counts_each_row_in_a_batch(embedded, steered_positions):
    generate(embedded, PROMPTS, CONFIG, steerer=_steerer(embedded, schedule="window", window=4))
    per_row = torch.zeros(2)
    for counts in steered_positions:
        if len(counts) == 2:
            per_row += counts
    assert per_row.tolist() == [4.0, 4.0]


def test_fence_schedule_stops_after_the_fence_line(embedded, steered_positions):
    [answer] = generate(embedded, PROMPTS[:1], CONFIG, steerer=_steerer(embedded, alpha=0.5, schedule="fence"))
    # the tokens up to and including the one that ends the fence line
    through = next(n for n in range(1, answer.n_tokens + 1)
                   if fence_written(embedded.tokenizer.decode(answer.tokens[:n], skip_special_tokens=True)))
    assert sum(float(c.sum()) for c in steered_positions) == through < 12


def test_after_tag_decodes_that_many_tokens_of_code_past_the_fence_line(embedded):
    """The selection's continuations: up to the fence's tag (after any prose), then k tokens of code."""
    at_tag = generate(embedded, PROMPTS, GenerationConfig(max_new_tokens=40, stop="tag"))
    longer = generate(embedded, PROMPTS, GenerationConfig(max_new_tokens=40, stop="tag", after_tag=5))
    for short, long in zip(at_tag, longer):
        assert short.detection.tag and long.tokens[:short.n_tokens] == short.tokens
        assert long.n_tokens - short.n_tokens == 5 or long.text.rstrip().endswith("```")
    with pytest.raises(ValueError, match="only stop 'tag'"):
        GenerationConfig(stop="block", after_tag=5)


def test_after_tag_only_lets_the_named_language_go_on_and_ends_the_others_at_their_tag(embedded):
    """The selection reads code only where the target's fence opened: another fence ends there."""
    prompts = PROMPTS + ["Write a Python function that adds two numbers.", "Write a Java method that adds two numbers."]
    at_tag = generate(embedded, prompts, GenerationConfig(max_new_tokens=40, stop="tag"))
    config = GenerationConfig(max_new_tokens=40, stop="tag", after_tag=5, after_tag_only="python")
    for short, only in zip(at_tag, generate(embedded, prompts, config)):
        if short.detection.tag == "python":
            assert only.n_tokens - short.n_tokens == 5 or only.text.rstrip().endswith("```")
        else:
            assert only.tokens == short.tokens
    assert {a.detection.tag for a in at_tag} >= {"python", "java"}
    with pytest.raises(ValueError, match="after_tag_only must be one of"):
        GenerationConfig(stop="tag", after_tag=5, after_tag_only="c#")


def _fake_reading(monkeypatch, share, quality, n=30):
    """The sweep module with ``_candidates`` replaced: candidate ``(method, margin, schedule)``
    opens the fence on the first ``share`` of each part of the paraphrases it is read on (``share``
    a number, or ``(screened share, share on the rest)``); the levels read and their rows are kept."""
    from types import SimpleNamespace

    from steering.pipeline.stages import sweep  # the module, by its name
    reads = []

    def fake(ctx, reading, makers, tried, rows, advance):
        reads.append((list(tried), list(rows)))
        out = []
        for method, margin, schedule, *_ in tried:
            value = share[method, margin, schedule]
            value = value if isinstance(value, float) else value[0] if rows[0] == 0 else value[1]
            opened = [i < round(value * len(rows)) for i in range(len(rows))]
            out.append({"tried": (method, margin, schedule, ()), "method": method, "opened": opened,
                        "logprobs": [quality[schedule]] * sum(opened)})
            advance(len(rows))
        return out

    monkeypatch.setattr(sweep, "_candidates", fake)
    reading = {"prompts": [f"p{i}" for i in range(n)], "reference": -0.9}
    return sweep, reads, reading, SimpleNamespace


class _Advance:
    """A stage's progress as ``Context.tick`` gives it: units done, and the plan's total."""

    def __init__(self, total):
        self.done, self.total = 0.0, total

    def __call__(self, n=1):
        self.done += n

    def replan(self, delta):
        self.total += delta


def test_selection_tries_every_schedule_at_the_largest_margin_then_smaller_margins_of_the_finalists_level_by_level(monkeypatch):
    """Share by (margin, schedule); quality by schedule. 'window' never comes near the best share,
    so its smaller margins are not tried; 'all' keeps its share down to 1x and wins there. Each
    level's candidates, of every method, are decoded together (on the screened third, then the rest)."""
    share = {("m", 2.0, "all"): 0.9, ("m", 1.5, "all"): 0.9, ("m", 1.0, "all"): 0.9, ("m", 2.0, "fence"): 0.9,
             ("m", 1.5, "fence"): 0.6, ("m", 2.0, "window"): 0.3}
    share.update({("o", *key[1:]): value for key, value in share.items()})  # a second method, as the first
    quality = {"all": -1.0, "fence": -1.01, "window": -0.5}
    sweep, reads, reading, ns = _fake_reading(monkeypatch, share, quality)
    ctx = ns(settings=PipelineSettings(sweep_margins=(1.0, 1.5, 2.0), sweep_schedules=("all", "window", "fence"),
                                       select_screen_tolerance=1.0))  # none left out: the levels alone
    steps = _Advance(30 * sweep._planned_from(ctx.settings, 2, 0))
    assert steps.total == 30 * (2 * 3 + 2 * 2)  # planned: every schedule, then one per method and smaller margin
    tried = sweep._select(ctx, reading, {"m": None, "o": None}, steps)
    levels = [[(margin, schedule) for method, margin, schedule, _ in t if method == "m"] for t, rows in reads[::2]]
    assert levels == [[(2.0, "all"), (2.0, "window"), (2.0, "fence")], [(1.5, "all"), (1.5, "fence")], [(1.0, "all")]]
    assert all({m for m, *_ in t} == {"m", "o"} for t, _ in reads)  # both methods' candidates in one call
    assert [rows for _, rows in reads[:2]] == [list(range(0, 30, 3)), [i for i in range(30) if i % 3]]
    assert steps.done == steps.total == 2 * 6 * 30  # the plan corrected to the 6 candidates each method tried
    for candidates in tried.values():
        assert (sweep._choice(candidates)["margin"], sweep._choice(candidates)["schedule"]) == (1.0, "all")


def test_selection_reads_the_rest_of_the_paraphrases_only_for_candidates_near_the_best_screened_share(monkeypatch):
    """Successive halving: 'window' is 0.3 below the best on the screened third and is left out
    there, with its screened share; 'fence', 0.1 below on the third, is read on the rest, where it
    ties 'all' and wins on quality. What is left out can never be chosen."""
    share = {("m", 2.0, "all"): 0.9, ("m", 2.0, "fence"): (0.8, 0.95), ("m", 2.0, "window"): (0.6, 1.0)}
    quality = {"all": -1.0, "fence": -0.5, "window": -0.1}
    sweep, reads, reading, ns = _fake_reading(monkeypatch, share, quality)
    ctx = ns(settings=PipelineSettings(sweep_margins=(2.0,), sweep_schedules=("all", "window", "fence")))
    steps = _Advance(30 * sweep._planned_from(ctx.settings, 1, 0))
    candidates = sweep._select(ctx, reading, {"m": None}, steps, {"m": {"limit": 2.0}})["m"]  # no larger margin
    assert [t for t, _ in reads] == [[("m", 2.0, "all", ()), ("m", 2.0, "window", ()), ("m", 2.0, "fence", ())],
                                     [("m", 2.0, "all", ()), ("m", 2.0, "fence", ())]]
    by = {c["schedule"]: c for c in candidates}
    assert by["window"]["screened"] == 10 and by["window"]["success"] == 0.6
    assert by["fence"]["screened"] == 0 and by["fence"]["success"] == (8 + 19) / 30
    assert sweep._choice(candidates)["schedule"] == "fence"
    assert steps.done == steps.total == 3 * 30 - 20  # the one left out is not read on the other 20 paraphrases
    assert "1 left out after a first share" in sweep._why(sweep._choice(candidates), candidates)


def test_selection_tries_each_option_and_doubles_the_margin_while_the_share_rises_within_quality(monkeypatch):
    """Issue 30: G-ACT's share was still rising at 2x, the largest margin tried, and its "off"
    class was never a candidate. Every option is tried at the largest margin; past it the margin
    doubles while the share rises: 4x rises (tried, eligible), 8x rises further but its code falls
    more than ``select_quality_drop`` below the asked answers' (-0.9): kept in the table, never
    chosen, and the search stops there although 16x is within the limit."""
    share = {("m", 2.0, "all"): 0.3, ("m", 1.5, "all"): 0.1, ("m", 1.0, "all"): 0.0, ("m", 4.0, "all"): 0.6,
             ("m", 8.0, "all"): 0.9, ("m", 16.0, "all"): 1.0}
    options = [(("off_class", "weight"),), (("off_class", "gate"),)]
    sweep, reads, reading, ns = _fake_reading(monkeypatch, share, {})

    def by_margin(ctx, reading, makers, tried, rows, advance):  # quality falls with the margin; "gate" never opens
        reads.append((list(tried), list(rows)))
        out = []
        for method, margin, schedule, options_ in tried:
            value = 0.0 if dict(options_)["off_class"] == "gate" else share[method, margin, schedule]
            opened = [i < round(value * len(rows)) for i in range(len(rows))]
            out.append({"tried": (method, margin, schedule, options_), "method": method, "opened": opened,
                        "logprobs": [-0.9 - 0.05 * margin] * sum(opened)})
            advance(len(rows))
        return out

    monkeypatch.setattr(sweep, "_candidates", by_margin)
    ctx = ns(settings=PipelineSettings(sweep_margins=(1.0, 1.5, 2.0), sweep_schedules=("all",),
                                       select_screen_tolerance=1.0, select_quality_drop=0.35))
    ways = {"m": {"options": options, "limit": 20.0}}
    steps = _Advance(30 * sweep._planned_from(ctx.settings, 1, 0, ways))
    candidates = sweep._select(ctx, reading, {"m": None}, steps, ways)["m"]
    first = [t for t, rows in reads[::2]][0]
    assert first == [("m", 2.0, "all", options[0]), ("m", 2.0, "all", options[1])]  # both off classes
    tried = [(c["margin"], c["options"]["off_class"]) for c in candidates]
    assert (4.0, "weight") in tried and (8.0, "weight") in tried and all(m < 16 for m, _ in tried)
    assert all(o == "weight" for m, o in tried if m > 2)  # larger margins only for the finalists' way
    by = {(c["margin"], c["options"]["off_class"]): c for c in candidates}
    assert by[4.0, "weight"]["eligible"] and not by[8.0, "weight"]["eligible"]  # -1.3 < -0.9 - 0.35
    best = sweep._choice(candidates)
    assert (best["margin"], best["options"]) == (4.0, {"off_class": "weight"})
    assert "1 past the margins given" in sweep._why(best, candidates)
    assert steps.done == steps.total


class _ConstantProbe:
    """A gate probe whose "off" class (the last) has probability ``p`` everywhere."""

    def __init__(self, p):
        self.logit = math.log(p / (1 - p))

    def layer_logits(self, layer, h, coef=None, intercept=None):
        zeros = torch.zeros(*h.shape[:-1], 2)
        zeros[..., 1] = self.logit
        return zeros


class _ConfidentAfter:
    """A gate probe that becomes confident (p = 0.99) from its ``n``-th reading on."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def layer_logits(self, layer, h, coef=None, intercept=None):
        self.calls += 1
        logits = torch.zeros(*h.shape[:-1], 2)
        logits[..., 1] = 5.0 if self.calls >= self.n else -5.0
        return logits



def test_a_candidate_until_the_fence_decodes_in_the_chunk_of_its_every_token_twin():
    """Issue 29: such a candidate forks from its twin at the fence line (``generate_each``), so
    it is placed with it and does not count against a chunk's size: its rows join late."""
    from steering.pipeline.stages.sweep import _chunks

    tried = [(m, 2.0, s, ()) for m in ("gact", "mean_diff") for s in ("all", "window", "fence", "gated")]
    assert _chunks(tried, 2) == [[("gact", 2.0, "all", ()), ("gact", 2.0, "fence", ()), ("gact", 2.0, "window", ())],
                                 [("gact", 2.0, "gated", ()), ("mean_diff", 2.0, "all", ()), ("mean_diff", 2.0, "fence", ())],
                                 [("mean_diff", 2.0, "window", ()), ("mean_diff", 2.0, "gated", ())]]
    gate = (("off_class", "gate"),)
    assert _chunks([("gact", 2.0, "all", gate), ("gact", 2.0, "fence", gate), ("gact", 2.0, "fence", ())], 1) == [
        [("gact", 2.0, "all", gate), ("gact", 2.0, "fence", gate)], [("gact", 2.0, "fence", ())]]  # twins share options
    alone = [("gact", 1.5, "fence", ()), ("mean_diff", 2.0, "fence", ()), ("mean_diff", 1.5, "all", ())]  # no twin
    assert _chunks(alone, 2) == [alone[:2], alone[2:]]
    assert sorted(c for chunk in _chunks(tried, 3) for c in chunk) == sorted(tried)

def test_a_gate_steers_only_while_the_probe_is_not_confident(embedded, steered_positions):
    plain = generate(embedded, PROMPTS, CONFIG)
    full = generate(embedded, PROMPTS, CONFIG, steerer=_steerer(embedded))
    confident = generate(embedded, PROMPTS, CONFIG, steerer=_steerer(embedded, _ConstantProbe(0.9), schedule="gated",
                                                                     gate=0.5))
    unsure = generate(embedded, PROMPTS, CONFIG, steerer=_steerer(embedded, _ConstantProbe(0.1), schedule="gated", gate=0.5))
    assert [a.tokens for a in confident] == [a.tokens for a in plain]
    assert [a.tokens for a in unsure] == [a.tokens for a in full]
    steered_positions.clear()
    generate(embedded, PROMPTS[:1], CONFIG, steerer=_steerer(embedded, _ConfidentAfter(4), schedule="gated"))
    assert sum(float(c.sum()) for c in steered_positions) == 3  # the gate closed at its 4th reading


def test_schedules_refuse_what_they_cannot_do(embedded):
    with pytest.raises(ValueError, match="window must be a positive"):
        SteeringSpec((1,), (1.0,), schedule="window", window=0)
    with pytest.raises(ValueError, match="unknown schedule"):
        SteeringSpec((1,), (1.0,), schedule="sometimes")
    with pytest.raises(ValueError, match="counts generated tokens"):
        _steerer(embedded, schedule="window").hooks(embedded)  # without the decoding loop to drive it
    with pytest.raises(ValueError, match="needs a G-ACT probe"):
        _steerer(embedded, schedule="gated").hooks(embedded)
    assert SteeringSpec.from_json(SteeringSpec((1,), (1.0,), schedule="window", window=5).to_json()).window == 5


def test_norm_unit_scales_alpha_by_the_layers_residual_norm(embedded):
    scale = torch.ones(embedded.n_layers) * 3.0
    absolute = MeanDiffSteerer(SteeringSpec((LAYER,), (ALPHA * 3.0,), "mean_diff"), _vectors(embedded))
    norm = MeanDiffSteerer(SteeringSpec((LAYER,), (ALPHA,), "mean_diff", alpha_unit="norm"), _vectors(embedded),
                           unit_scale=scale)
    assert [a.tokens for a in generate(embedded, PROMPTS, CONFIG, steerer=norm)] == \
        [a.tokens for a in generate(embedded, PROMPTS, CONFIG, steerer=absolute)]


# --- references and budget ----------------------------------------------------------------------

@pytest.mark.slow
def test_reference_rows_use_the_same_seeds_and_budget_as_the_methods(embedded, tmp_path):
    prompts = PromptSet.load().head(6)
    settings = PipelineSettings(probe_epochs=60, sweep_alphas=(1.0, 4.0), sweep_margins=(1.0,), refine_steps=2,
                                max_new_tokens=48, eval_temperature=1.0, seed=7)
    pipeline = Pipeline(embedded, prompts, Run(tmp_path / "run", create=True), settings)
    pipeline.run_all(("extract", "cluster", "probe", "sweep"))
    result = pipeline.run_stage("eval", "gact_unrefined", "heldout")
    budget = result["budget"]
    assert budget == asked_budget(result["answers"]["asked"], 48) or budget <= 48
    rows = pipeline.run.generations("heldout_gact_unrefined")
    by_condition = {c: [r for r in rows if r["condition"] == c] for c in ("baseline", "asked", "prefilled", "steered")}
    seeds = {c: [r["seed"] for r in rs] for c, rs in by_condition.items()}
    assert len({tuple(s) for s in seeds.values()}) == 1 and len(seeds["asked"]) == 6  # sampled, so seeds matter
    assert all(r["n_tokens"] <= budget for r in rows)
    explicit = {t.id: t.prompts["cpp"] for t in prompts}
    assert [r["prompt"] for r in by_condition["asked"]] == [explicit[r["task_id"]] for r in by_condition["asked"]]
    assert all(r["text"].startswith("```cpp\n") for r in by_condition["prefilled"])
    assert [r["prompt"] for r in by_condition["prefilled"]] == [r["prompt"] for r in by_condition["steered"]]
    # A second method reuses the stored references rather than generating them again.
    again = pipeline.run_stage("eval", "mean_diff", "heldout")
    assert [a.text for a in again["answers"]["asked"]] == [r["text"] for r in by_condition["asked"]]
    results = RunResults(pipeline.run.dir)
    assert results.budget("heldout")["tokens"] == budget
    table = results.method_table("heldout", intervals=True)
    assert list(table.index[:3]) == ["baseline", "asked explicitly", "prefilled fence"]
    rate, low, high = table.at["asked explicitly", "fenced_target"]
    assert low <= rate <= high
    versus = results.comparison("heldout", "fenced_target", against="mean_diff")
    assert "gact_unrefined" in versus.index and versus.loc["gact_unrefined", "low"] <= versus.loc["gact_unrefined", "value"]


def test_asked_budget_is_the_95th_percentile_rounded_up_and_capped():
    class A:
        def __init__(self, n):
            self.n_tokens = n
    assert asked_budget([A(n) for n in range(1, 101)], 320) == 96  # p95 = 95 -> 96
    assert asked_budget([A(n) for n in (10, 12, 20)], 320) == 32  # p95 = 20 -> 32
    assert asked_budget([A(320)] * 10, 320) == 320
    assert asked_budget([A(500)] * 10, 320) == 320  # never above the cap


# --- intervals ----------------------------------------------------------------------------------

def test_rate_interval_known_answers():
    assert rate_interval([1.0] * 10, list("abcdefghij")) == (1.0, 1.0, 1.0)
    assert rate_interval([float("nan")] * 3, list("abc")) == (None, None, None)
    # Two tasks, one always right and one always wrong: resampled means are 0, 0.5 or 1.
    rate, low, high = rate_interval([1, 1, 0, 0], ["a", "a", "b", "b"])
    assert (rate, low, high) == (0.5, 0.0, 1.0)
    # 40 independent tasks at 75%: about the binomial interval, +-1.96 * sqrt(.75 * .25 / 40) = +-0.134.
    rate, low, high = rate_interval([1, 1, 1, 0] * 10, [f"t{i}" for i in range(40)], n=4000)
    assert rate == 0.75 and abs((0.75 - low) - 0.134) < 0.03 and abs((high - 0.75) - 0.134) < 0.03
    # NaN rows do not count; rows of one task move together (fewer units, wider interval).
    assert rate_interval([1, float("nan"), 0, 0], ["a", "a", "b", "c"])[0] == pytest.approx(1 / 3)
    together = rate_interval([float((i // 4) % 4 != 3) for i in range(40)], [f"t{i // 4}" for i in range(40)])
    assert together[2] - together[1] > high - low


def test_paired_interval_known_answers():
    tasks = [f"t{i}" for i in range(20)]
    a = np.array([1.0] * 10 + [0.0] * 10)
    assert paired_interval(a, a, tasks) == (0.0, 0.0, 0.0)
    assert paired_interval(2 * (a + 0.5), a + 0.5, tasks, "ratio") == (2.0, 2.0, 2.0)
    shifted = np.array([1.0] * 15 + [0.0] * 5)  # five more tasks succeed, none fewer
    diff = paired_interval(shifted, a, tasks)
    assert diff[0] == 0.25 and 0 < diff[1] <= diff[2] and excludes_zero(diff)
    # unpaired, the same two rates' intervals overlap: pairing is what makes the difference clear
    assert rate_interval(shifted, tasks)[1] < rate_interval(a, tasks)[2]
    assert not excludes_zero(paired_interval(a, a[::-1], tasks))
    with pytest.raises(ValueError, match="must align"):
        paired_interval(a, a[:5], tasks)


# --- every target ---------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("target,checker", [("java", "javac"), ("julia", None), ("python", "python")])
def test_every_target_language_runs_with_its_references(embedded, tmp_path, target, checker):
    """Steering towards Java, Julia (parse only: no compiler here) and Python, references included."""
    from steering.code.toolchains import toolchain

    if checker not in (None, "python") and toolchain(target) is None:
        pytest.skip(f"{checker} is not installed")
    settings = PipelineSettings(target=target, probe_epochs=100, sweep_margins=(1.0,), sweep_schedules=("all",),
                                max_new_tokens=64)
    pipeline = Pipeline(embedded, PromptSet.load().head(8), Run(tmp_path / "run", create=True), settings)
    pipeline.run_all(("extract", "cluster", "probe", "sweep"))
    result = pipeline.run_stage("eval", "mean_diff", "heldout")
    assert result["asked"]["fenced_target"] >= 0.8  # the embedded model writes what it is asked for
    assert all(a.text.startswith(f"```{target}\n") for a in result["answers"]["prefilled"])
    assert result["steered"]["fenced_target"] > result["baseline"]["fenced_target"]  # steering moves towards it
    assert (result["asked"]["compiling"] is None) == (checker is None)  # Julia: parse only
    assert result["asked"]["compiler"] == checker


def test_gact_off_class_weights_the_zero_vector_or_only_gates():
    """With 'weight' the off class's share scales the mix down; with 'gate' the mix is over the
    cluster vectors alone (the gated schedule still reads the off class)."""
    from steering.methods.steer import GactSteerer

    class Probe:
        coef_ = torch.zeros(1, 4, 3)

        def layer_logits(self, layer, h, coef=None, intercept=None):
            return torch.tensor([0.0, 0.0, math.log(18.0)]).expand(*h.shape[:-1], 3)

    vectors = torch.randn(1, 2, 4, generator=torch.Generator().manual_seed(0))
    h = torch.zeros(1, 1, 4)
    make = lambda off: GactSteerer(SteeringSpec((0,), (1.0,), "gact"), vectors, Probe(), off_class=off)
    assert torch.allclose(make("weight").direction(0, h), 0.05 * vectors[0].sum(0))
    assert torch.allclose(make("gate").direction(0, h), 0.5 * vectors[0].sum(0))
    assert float(make("gate").target_probability(0, h)) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="off_class"):
        make("never")


@pytest.mark.slow
def test_overwriting_a_run_with_other_settings_counts_none_of_its_stages_as_done(embedded, tmp_path):
    """``run --out RUN --overwrite`` with other settings reruns every stage (it used to resume,
    because the stages matched the settings the run had stored)."""
    prompts = PromptSet.load().head(4)
    settings = PipelineSettings(probe_epochs=20, sweep_alphas=(1.0,), sweep_margins=(1.0,), sweep_schedules=("all",))
    Pipeline(embedded, prompts, Run(tmp_path / "run", create=True), settings).run_stage("extract")
    other = PipelineSettings(**{**settings.__dict__, "off_class": "gate"})
    with pytest.raises(Exception, match="off_class None -> 'gate'"):
        Pipeline(embedded, prompts, Run(tmp_path / "run"), other)
    assert Pipeline(embedded, prompts, Run(tmp_path / "run"), settings, overwrite=True).done_stages() == ["extract"]
    assert Pipeline(embedded, prompts, Run(tmp_path / "run"), other, overwrite=True).done_stages() == []


def test_the_difference_of_two_probes_validated_on_their_own_rows_resamples_each_sides_tasks():
    """The paper's headline compares G-ACT's probe with ACT's heads, validated on different rows:
    one layer gives that layer's difference; several, the mean over layers, with each side's
    tasks drawn once per replicate for all its layers."""
    a = ([1, 1, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2])
    b = ([0, 1, 0], ["x", "y", "z"])
    point, low, high = unpaired_difference([a], [b])
    assert point == pytest.approx(5 / 6 - 1 / 3) and low <= point <= high
    same = unpaired_difference([a, a], [b, b])
    assert same[0] == pytest.approx(point) and same[1:] == pytest.approx((low, high))  # one draw for both layers
    assert unpaired_difference([([1, 1], [0, 1])], [([1, 1], [0, 1])]) == (0.0, 0.0, 0.0)
    sparse = unpaired_difference([a, a], [([1], ["x"]), ([0, 1], ["y", "z"])])  # some draws miss task x
    assert np.isfinite(sparse[1:]).all() and sparse[1] <= sparse[0] <= sparse[2]
    with pytest.raises(ValueError, match="one \\(values, tasks\\) per layer"):
        unpaired_difference([a], [b, b])


def test_gact_off_class_is_the_selections_choice_unless_given():
    """Issue 30: with no --off-class, the selection tries both (``Method.options``) and the
    evaluation steers with the one it chose (``chosen_options``)."""
    from types import SimpleNamespace

    from steering.methods.registry import METHODS

    entry = METHODS[METHODS["gact"].selection]
    assert entry.options(PipelineSettings()) == [{"off_class": "weight"}, {"off_class": "gate"}]
    assert entry.options(PipelineSettings(off_class="gate")) == [{"off_class": "gate"}]
    assert entry.options(PipelineSettings(adaptive=False)) == [{"off_class": "weight"}]  # no class to gate with
    chose = SimpleNamespace(selection=lambda name: {"schedule": "all", "margin": 4.0, "off_class": "gate"})
    assert entry.chosen_options(chose, PipelineSettings()) == {"off_class": "gate"}
    assert entry.chosen_options(chose, PipelineSettings(off_class="weight")) == {"off_class": "weight"}
    assert entry.chosen_options(SimpleNamespace(selection=lambda name: None), PipelineSettings()) == {"off_class": "weight"}
    assert METHODS["mean_diff"].options(PipelineSettings()) == [{}]
