"""The whole pipeline: on the embedded model (the figures the issue asks for), on a random-init
GPT-2 (no crash), the stages it runs once, and held-out phrasings no stage fits on."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from conftest import quick_settings
from steering.code.prompts import PromptSet
from steering.pipeline.results import RunResults
from steering.pipeline.runner import Pipeline
from steering.store.schema import baseline_stage
from steering.store.storage import Run


@pytest.fixture(scope="module")
def embedded_pipeline(embedded, tmp_path_factory):
    """The shipped task set on the embedded model, up to the sweep (default settings)."""
    pipeline = Pipeline(embedded, PromptSet.load(), Run(tmp_path_factory.mktemp("embedded") / "run", create=True))
    pipeline.run_all(("extract", "cluster", "probe", "sweep"))
    return pipeline


@pytest.mark.slow
def test_gact_steers_the_embedded_model_to_cpp(embedded_pipeline):
    """C++ from a minority to >= 90% of greedy answers as a fenced C++ block, >= 80% of all answers
    fenced C++ that parses, on the neutral prompts and on held-out phrasings no stage fitted on;
    G-ACT's probe at least as accurate as its scikit-learn refit and far above its baselines."""
    for prompt_set in ("neutral", "heldout"):
        result = embedded_pipeline.run_stage("eval", "gact", prompt_set)
        assert result["baseline"]["fenced_target"] < 0.2
        assert result["steered"]["fenced_target"] >= 0.9, prompt_set
        assert result["steered"]["success"] >= 0.75, prompt_set
        assert result["steered"]["no_code_block"] == 0
    probe = {m["name"]: [] for m in embedded_pipeline.run.metrics("probe")}
    for m in embedded_pipeline.run.metrics("probe"):
        probe[m["name"]].append(m["value"])
    assert np.mean(probe["gact_val_accuracy"]) >= np.mean(probe["sklearn_val_accuracy"])
    assert np.mean(probe["gact_val_accuracy"]) >= np.mean(probe["majority_val_accuracy"]) + 0.3
    assert np.mean(probe["gact_val_accuracy"]) >= np.mean(probe["shuffled_val_accuracy"]) + 0.3
    assert np.mean(probe["gact_off_val_accuracy"]) >= 0.95  # the probe knows where to stay off


def test_steered_and_plain_generation_share_one_model_from_two_threads(embedded_pipeline, embedded):
    from steering.engine.generation import GenerationConfig, generate

    steerer = embedded_pipeline.steerer("gact")
    prompts = embedded_pipeline.context.neutral_prompts[:6]
    config = GenerationConfig(max_new_tokens=40)
    plain_alone = [a.text for a in generate(embedded, prompts, config)]
    steered_alone = [a.text for a in generate(embedded, prompts, config, fwd_hooks=steerer.hooks(embedded))]
    assert plain_alone != steered_alone
    barrier, results = threading.Barrier(2), {}

    def steered():
        barrier.wait()
        results["steered"] = [[a.text for a in generate(embedded, prompts, config, fwd_hooks=steerer.hooks(embedded))]
                              for _ in range(2)]

    def plain():
        barrier.wait()
        results["plain"] = [[a.text for a in generate(embedded, prompts, config)] for _ in range(2)]

    threads = [threading.Thread(target=steered), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["plain"] == [plain_alone] * 2
    assert results["steered"] == [steered_alone] * 2


@pytest.mark.slow
def test_same_pipeline_runs_on_a_random_init_gpt2(tiny_gpt2, tmp_path):
    prompts = PromptSet.load().head(8)
    pipeline = Pipeline(tiny_gpt2, prompts, Run(tmp_path / "run", create=True), quick_settings(k=2))
    result = pipeline.run_all()
    assert set(result["steered"]["shares"]) >= {"python", "cpp"}
    seconds = pipeline.stage_seconds()  # every stage timed, the thread count recorded with it
    act = ["heldout_act", "explicit_act"] if Run(tmp_path / "run").has("act") else []  # evaluated where fitted
    assert list(seconds) == ["bias", "extract", "cluster", "probe", "act", "sweep", "refine", "eval_gact", "heldout_gact",
                             "explicit_gact", *act, "heldout_mean_diff", "explicit_mean_diff", "project"]
    assert all(value > 0 for value in seconds.values())
    assert all(r["threads"] >= 1 for r in pipeline.run.stage_records().values())
    assert pipeline.done_stages() == list(seconds)
    run = Run(tmp_path / "run")  # reopens
    assert RunResults(run.dir).chosen["layers"] and "chosen" not in run.settings  # results live in the tables
    assert {m["stage"] for m in run.metrics()} >= {"cluster", "probe", "sweep", "refine", "eval_gact"}
    # 8 tasks x (baseline, asked explicitly, prefilled fence, steered)
    assert len(run.generations("eval_gact")) == 32 and len(run.generations("heldout_gact")) == 32
    if not run.has("act"):  # a random model rarely answers in the languages asked: ACT says why it is missing
        with pytest.raises(ValueError, match="ACT not fitted"):
            pipeline.run_stage("eval", "act", "neutral")


@pytest.mark.slow
def test_differences_against_another_language(tiny_llama, tmp_path):
    prompts = PromptSet.load().head(6)
    pipeline = Pipeline(tiny_llama, prompts, Run(tmp_path / "run", create=True), quick_settings(k=2, contrast="python"))
    pipeline.run_all(("extract", "cluster"))
    acts, _ = pipeline.run.load("activations")
    deltas, meta = pipeline.run.load("deltas")
    assert torch.allclose(deltas["deltas"], acts["target"] - acts["contrast"])
    assert meta["contrast"] == "python" and meta["target"] == "cpp"
    with pytest.raises(ValueError, match="must differ from the target"):
        Pipeline(tiny_llama, prompts, Run(tmp_path / "other", create=True), quick_settings(contrast="cpp"))


@pytest.mark.slow
def test_the_tasks_asked_explicitly_are_answered_once_for_both_prompt_sets(embedded, tmp_path, monkeypatch):
    from steering.pipeline.stages import evaluate  # the module, by its name
    pipeline = Pipeline(embedded, PromptSet.load().head(4), Run(tmp_path / "run", create=True), quick_settings())
    pipeline.run_all(("extract", "cluster", "probe", "sweep"))
    asked = [t.prompts[pipeline.settings.target] for t in pipeline.prompts]
    calls, generate = [], evaluate.generate
    monkeypatch.setattr(evaluate, "generate", lambda model, prompts, *a, **k: calls.append(list(prompts)) or generate(model, prompts, *a, **k))
    for prompt_set in ("neutral", "heldout"):
        pipeline.run_stage("eval", "mean_diff", prompt_set)
    assert calls.count(asked) == 1
    texts = {s: [(g["task_id"], g["text"]) for g in pipeline.run.generations(baseline_stage(s, "asked"))] for s in ("neutral", "heldout")}
    assert texts["neutral"] == texts["heldout"] and len(texts["neutral"]) == 4


@pytest.mark.slow
def test_a_run_evaluates_each_compared_method_on_the_heldout_phrasings_and_how_each_yields(embedded, tmp_path):
    """Issue 30: a whole run ranks G-ACT against ACT and mean difference on the held-out phrasings
    and measures, per method, what steering does to the tasks asked in the other languages, plain
    and conditional; the summary prints the paper's probe table and these."""
    pipeline = Pipeline(embedded, PromptSet.load().head(8), Run(tmp_path / "run", create=True),
                        quick_settings(compare_methods=("mean_diff",), projections=("pca",), bias_samples=1))
    pipeline.run_all()
    done = set(pipeline.done_stages())
    assert {"eval_gact", "heldout_gact", "heldout_mean_diff", "explicit_gact", "explicit_mean_diff"} <= done
    assert "eval_mean_diff" not in done
    assert pipeline.evaluations() == [("gact", None), ("mean_diff", "heldout")]
    results = RunResults(pipeline.run.dir)
    yielding = results.yielding().set_index("method")
    assert set(yielding.index) == {"gact", "mean_diff"}
    for method, row in yielding.iterrows():
        assert row["unsteered"] >= 0.9 and row["conditional"] >= 0.9, method  # the embedded model keeps the asked language
        assert row["unsteered_low"] <= row["unsteered"] <= row["unsteered_high"]
        assert row["heldout_steers"] == 1.0  # no open phrasing is read as naming a language
        assert row["heldout_conditional"] == pytest.approx(row["heldout_plain"])
    assert {g["condition"] for g in pipeline.run.generations("explicit_gact")} == {"unsteered", "plain", "conditional"}
    assert len(pipeline.run.generations("explicit_gact")) == 3 * 8 * 3  # 3 other languages, 8 tasks, 3 conditions
    comparison = results.probe_comparison()  # the paper's headline: G-ACT's probe against ACT's, per layer
    assert list(comparison["layer"][:-1]) == list(range(embedded.n_layers)) and np.isnan(comparison["layer"].iloc[-1])
    assert comparison["difference"].iloc[-1] == pytest.approx(comparison["difference"][:-1].mean())
    assert (comparison["difference"] == comparison["gact"] - comparison["act"]).all()
    assert ((comparison["low"] <= comparison["difference"] + 1e-9) & (comparison["difference"] <= comparison["high"] + 1e-9)).all()
    assert pipeline.run_all(resume=True) is None  # everything done: nothing reruns


def test_held_out_phrasings_are_never_probe_samples(fitted_pipeline):
    acts, _ = fitted_pipeline.run.load("activations")
    assert sorted(k for k in acts if k.startswith("paraphrase_") and not k.startswith("index_")) == ["paraphrase_0"]
    ids, prompts = fitted_pipeline.eval_prompts("heldout")
    assert prompts == [t.paraphrases[1] for t in fitted_pipeline.prompts.tasks] and ids == fitted_pipeline.prompts.ids
    trained = {p for t in fitted_pipeline.prompts.tasks for p in (t.neutral, t.paraphrases[0])}
    assert not trained & set(prompts)
    with pytest.raises(ValueError, match="no held-out phrasings"):
        Pipeline.reopen(fitted_pipeline.run.dir, fitted_pipeline.model, one_off={"probe_paraphrases": 2}).eval_prompts("heldout")
