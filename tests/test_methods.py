"""The methods compared and how they are measured: faithful ACT, the paper's neuron scoring,
refinement that can move steering, the honest success metric with compile checks, held-out
phrasings, and the probe statistics."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from steering.code.prompts import PromptSet
from steering.code.toolchains import compiles, toolchain
from steering.core.stats import bootstrap_interval, majority_accuracy
from steering.engine.generation import Generation
from steering.engine.prefix import PromptPrefix
from steering.methods.act import ActSteerer, AdaptiveActivationSteering
from steering.methods.neurons import active_neurons, attribute_neurons
from steering.methods.refine import online_answers, opening_loss, refine_steering
from steering.methods.steer import SteeringSpec
from steering.pipeline.evaluation import summarize
from steering.pipeline.runner import Pipeline, PipelineSettings
from steering.store.storage import Run

CPP_OK = "#include <vector>\nint total(const std::vector<int>& v) { int s = 0; for (int x : v) s += x; return s; }\n"
CPP_UNDECLARED = "int total() { return missing_function(); }\n"  # parses, does not compile


# --- the honest success metric ----------------------------------------------------------------
@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed: the C++ compile check is skipped")
def test_cpp_compile_check_catches_what_a_parse_accepts():
    assert toolchain("cpp") == "g++"
    assert compiles(CPP_OK, "cpp") is True
    assert compiles(CPP_UNDECLARED, "cpp") is False
    assert compiles("", "cpp") is False


@pytest.mark.skipif(shutil.which("javac") is None, reason="javac is not installed: the Java compile check is skipped")
def test_java_compile_check_names_the_file_after_its_public_class():
    assert compiles("public class Solver { static int f() { return 1; } }", "java") is True
    assert compiles("class A { int f() { return g(); } }", "java") is False


def test_python_compiles_in_process_and_julia_has_no_check():
    assert compiles("def f(x):\n    return x\n", "python") is True
    assert compiles("def f(x:\n", "python") is False
    assert toolchain("julia") is None and compiles("f(x) = x", "julia") is None


def test_success_counts_only_fenced_parsing_target_code():
    answers = [Generation("p", text, 10, 0) for text in (
        f"```cpp\n{CPP_OK}```",  # counts
        f"```cpp\n{CPP_UNDECLARED}```",  # fenced C++ that parses: counts, but does not compile
        "// sum the values\n",  # parses as C++, but is no code block
        "sizesizesizesizesizesizesizesize",  # gibberish: no code block
        "```c\nint main(void) { return 0; }\n```",  # a language we do not study
    )]
    summary = summarize(answers, "cpp", max_new_tokens=10)
    assert summary["success"] == pytest.approx(2 / 5) and summary["fenced_target"] == pytest.approx(2 / 5)
    assert summary["no_code_block"] == pytest.approx(2 / 5) and summary["shares"]["other"] == pytest.approx(1 / 5)
    assert summary["cut_off"] == 1.0
    if toolchain("cpp"):
        assert summary["compiles"] == pytest.approx(1 / 2) and summary["compiler"] == "g++"
    else:
        assert summary["compiles"] is None


# --- statistics ---------------------------------------------------------------------------------
def test_bootstrap_interval_resamples_tasks_and_holds_the_mean():
    correct = np.array([1, 1, 1, 1, 0, 0, 1, 1], dtype=bool)
    low, high = bootstrap_interval(correct)
    assert low <= correct.mean() <= high and high - low > 0.1
    # Two tasks of four rows each, one all right and one half wrong: resampling tasks, not rows.
    low_t, high_t = bootstrap_interval(correct, groups=[0, 0, 0, 0, 1, 1, 1, 1])
    assert (low_t, high_t) == (0.5, 1.0)
    assert np.isnan(bootstrap_interval([])[0])
    assert majority_accuracy([0, 0, 1], [0, 1, 1, 1]) == 0.25


# --- faithful ACT -------------------------------------------------------------------------------
def synthetic_heads(seed=0, n_tasks=12, n_layers=3, n_heads=4, d_head=8, strength=4.0):
    """Good answers differ from bad ones along one direction on head 2 of layer 1 only."""
    rng = np.random.default_rng(seed)
    rows, good, tasks = [], [], []
    signal = np.zeros((n_layers, n_heads, d_head))
    signal[1, 2, 0] = strength
    for t in range(n_tasks):
        for is_good in (True, False, False):
            rows.append(rng.normal(size=(n_layers, n_heads, d_head)) + (signal if is_good else 0))
            good.append(is_good)
            tasks.append(t)
    z = torch.tensor(np.array(rows), dtype=torch.float32).reshape(len(rows), n_layers, n_heads * d_head)
    return z, np.array(good), np.array(tasks)


def test_act_keeps_the_informative_head_and_round_trips():
    z, good, tasks = synthetic_heads()
    act = AdaptiveActivationSteering(n_clusters=2, n_heads_kept=1, random_state=0).fit(z, good, tasks, n_heads=4)
    assert act.coef_.shape == (2, 3, 4, 8) and act.val_accuracy_.shape == (2, 3, 4)
    assert {tuple(k[1:]) for k in act.kept_} == {(1, 2)}  # every cluster keeps the one head that tells them apart
    assert act.layers_ == [1]
    assert np.nanmax(act.best_head_accuracy()) == act.best_head_accuracy()[1]
    assert np.allclose(np.linalg.norm(act.theta_, axis=1), 1.0) and (act.sigma_ > 0).all()
    again = AdaptiveActivationSteering.from_state_tensors(act.state_tensors())
    assert np.array_equal(again.kept_, act.kept_) and np.allclose(again.theta_, act.theta_)
    with pytest.raises(ValueError, match="needs at least 3 questions"):
        AdaptiveActivationSteering(n_clusters=3).fit(z[:6], good[:6], tasks[:6], n_heads=4)
    with pytest.raises(Exception, match="not fitted"):
        AdaptiveActivationSteering().layers_


def test_act_steers_only_its_heads_with_adaptive_strength(embedded):
    n_heads, width = embedded.facts.n_heads, embedded.d_model
    d_head = width // n_heads
    z, good, tasks = synthetic_heads(n_tasks=30, n_layers=embedded.n_layers, n_heads=n_heads, d_head=d_head, strength=8.0)
    act = AdaptiveActivationSteering(n_clusters=2, n_heads_kept=1).fit(z, good, tasks, n_heads=n_heads)
    steerer = ActSteerer(SteeringSpec.uniform(act.layers_, 5.0, method="act"), act)
    ((name, hook),) = steerer.hooks(embedded)
    assert name == "blocks.1.attn.hook_z"
    bad_z = z[~good][:2, 1][:, None].repeat(1, 3, 1)  # [batch 2, 3 positions, width]
    out = hook(bad_z.clone(), hook=None)
    changed = (out - bad_z).reshape(2, 3, n_heads, d_head).abs().sum(-1) > 0
    assert changed[:, -1, 2].all() and not changed[:, :-1].any() and not changed[:, :, [0, 1, 3]].any()
    # The push is larger where the probe already believes less in a good answer.
    good_z = z[good][:2, 1][:, None]
    push_bad = (out - bad_z)[:, -1].norm(dim=-1)
    push_good = (hook(good_z.clone(), hook=None) - good_z)[:, -1].norm(dim=-1)
    assert (push_bad > push_good).all()
    with pytest.raises(ValueError, match="kept no head on layer"):
        ActSteerer(SteeringSpec.uniform([0], 5.0, method="act"), act).hooks(embedded)


# --- the neuron baseline ---------------------------------------------------------------------------
def test_paper_neuron_score_reads_the_gated_effective_weight(embedded):
    bridge = embedded.bridge
    (best,) = attribute_neurons(embedded, "cpp", layers=[2], scoring="paper", top_n=1)
    w_eff = bridge.W_in[2][:, best.neuron] * torch.sigmoid(bridge.W_gate[2][:, best.neuron])
    probs = torch.softmax(w_eff @ bridge.W_U + bridge.b_U, dim=-1)
    from steering.methods.neurons import language_tag_token

    target = language_tag_token(embedded.tokenizer, "cpp")
    assert best.score == pytest.approx(float(probs[target] / probs.topk(10).values.mean()), rel=1e-4)
    (output,) = attribute_neurons(embedded, "cpp", layers=[2], scoring="output", top_n=1)
    assert (output.layer, output.neuron) != (best.layer, best.neuron) or output.score != best.score


def test_paper_scoring_needs_a_gated_mlp_and_activation_selection_finds_the_active_neuron(tiny_gpt2):
    with pytest.raises(ValueError, match="needs a gated MLP"):
        attribute_neurons(tiny_gpt2, "cpp", scoring="paper")
    good, bad = torch.zeros(5, 2, 6), torch.zeros(7, 2, 6)
    good[:, 1, 4] = 3.0
    (top,) = active_neurons(good, bad, top_n=1)
    assert (top.layer, top.neuron, top.score) == (1, 4, 3.0)


# --- refinement --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(embedded, tmp_path_factory):
    pipeline = Pipeline(embedded, PromptSet.load().head(12), Run(tmp_path_factory.mktemp("m") / "run", create=True),
                        PipelineSettings(probe_epochs=200, sweep_alphas=(0.25, 0.5), max_new_tokens=48))
    pipeline.run_all(("extract", "cluster", "probe", "sweep"))
    return pipeline


def test_refinement_learns_a_gain_that_lowers_the_loss_and_leaves_the_input_alone(fitted, embedded):
    weak = fitted.steerer("gact_unrefined")
    weak = replace(weak, spec=replace(weak.spec, alphas=tuple(a * 0.3 for a in weak.spec.alphas)))
    prefix = PromptPrefix(embedded, fitted.context.neutral_prompts)
    before = opening_loss(weak, prefix, "cpp").item()
    refined, losses = refine_steering(weak, prefix, "cpp", steps=15, lr=0.1, prox=0.01, fluency=1.0, gains=True,
                                      offsets=True, batch_size=12)
    assert weak.log_gains is None and weak.offsets is None  # the input is never changed
    assert (torch.exp(refined.log_gains[list(weak.spec.layers)]) > 1.05).all()  # it learned to steer harder
    assert refined.offsets.abs().sum() > 0
    assert opening_loss(refined, prefix, "cpp").item() < before
    assert len(losses) == 15
    probe_only, _ = refine_steering(weak, prefix, "cpp", steps=3, gains=False)
    assert probe_only.log_gains is None


def test_online_refinement_answers_each_prompt_from_the_same_start(fitted, embedded):
    from steering.engine.generation import GenerationConfig

    steerer = fitted.steerer("gact_unrefined")
    snapshot = steerer.probe.coef_.clone()
    prompts = fitted.context.neutral_prompts[:2]
    answers = online_answers(steerer, embedded, prompts, "cpp", GenerationConfig(max_new_tokens=24), steps=2)
    assert len(answers) == 2 and torch.equal(steerer.probe.coef_, snapshot) and steerer.log_gains is None
    # The second prompt alone (with the seed it had as prompt 1) answers the same: nothing carried over.
    alone = online_answers(steerer, embedded, prompts[1:], "cpp", GenerationConfig(max_new_tokens=24, seed=1), steps=2)
    assert alone[0].text == answers[1].text and alone[0].seed == answers[1].seed


# --- held-out phrasings ---------------------------------------------------------------------------
def test_held_out_phrasings_are_never_probe_samples(fitted):
    acts, _ = fitted.run.load("activations")
    assert sorted(k for k in acts if k.startswith("paraphrase_") and not k.startswith("index_")) == ["paraphrase_0"]
    ids, prompts = fitted.eval_prompts("heldout")
    assert prompts == [t.paraphrases[1] for t in fitted.prompts.tasks] and ids == fitted.prompts.ids
    trained = {p for t in fitted.prompts.tasks for p in (t.neutral, t.paraphrases[0])}
    assert not trained & set(prompts)
    with pytest.raises(ValueError, match="no held-out phrasings"):
        Pipeline.reopen(fitted.run.dir, fitted.model, one_off={"probe_paraphrases": 2}).eval_prompts("heldout")
