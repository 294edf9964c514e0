"""Issue 16: steering schedules, the references every evaluation carries, its token budget, and
the intervals and paired comparisons its tables report."""

from __future__ import annotations

import math

import pytest
import torch

from steering.code.fences import fence_written
from steering.code.prompts import PromptSet
from steering.engine.generation import GenerationConfig, generate
import steering.methods.steer as steer_module
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
