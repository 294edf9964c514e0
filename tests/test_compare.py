"""Runs of different models side by side (``steering.reports.compare``), from Python and the command line."""

from __future__ import annotations

import shutil

import pytest

from conftest import COMPARED_RUNS, DASHBOARD_RUN
from steering.interface.cli.main import main
from steering.pipeline.results import RunResults
from steering.pipeline.settings import compared_settings
from steering.reports.compare import Comparison, ComparisonError, check_comparable
from steering.reports.report import build_comparison_report


@pytest.fixture(scope="module")
def comparison(compare_runs) -> Comparison:
    return Comparison.of([compare_runs / name for name in COMPARED_RUNS])


def test_every_model_is_placed_by_relative_depth(comparison):
    layers = {label: r.n_layers for label, r in zip(comparison.labels, comparison.runs)}
    assert sorted(layers.values()) == [4, 6, 8]
    probes = comparison.probe_depth()
    for label, n in layers.items():
        mine = probes[(probes["model"] == label) & (probes["probe"] == "G-ACT")]
        assert list(mine["layer"]) == list(range(n))  # every layer of every model, once
        assert list(mine["depth"]) == [layer / n for layer in range(n)]
    sweep = comparison.sweep_depth()
    assert set(sweep["model"]) == set(layers) and sweep["depth"].between(0, 1, inclusive="left").all()
    chosen = {label: sorted(sweep[(sweep["model"] == label) & sweep["chosen"]]["layer"]) for label in layers}
    assert chosen == {label: sorted(r.chosen["layers"]) for label, r in zip(comparison.labels, comparison.runs)}
    by_layer = comparison.by_layer()
    assert list(by_layer.groupby("model", sort=False).size()) == [8, 4, 6]
    assert (by_layer["steered"] == "yes").sum() == sum(len(r.chosen["layers"]) for r in comparison.runs)
    transfer = comparison.transfer()
    assert list(transfer["layers"]) == [8, 4, 6]
    first = transfer.filter(like="G-ACT: first layer").iloc[:, 0]
    stays = transfer.filter(like="G-ACT: ≥ 90% at every layer from").iloc[:, 0]
    for label, a, b in zip(transfer["model"], first, stays):
        assert a == b == "never" or a.startswith("L") and b.startswith("L")
        if b != "never":  # from there on, every layer reads the decision at 90% or more
            probes = comparison.probe_depth()
            mine = probes[(probes["model"] == label) & (probes["probe"] == "G-ACT")]
            assert (mine[mine["layer"] >= int(b[1:].split()[0])]["val"] >= 0.9).all()
            assert int(a[1:].split()[0]) <= int(b[1:].split()[0])


def test_each_method_is_judged_against_its_own_models_references(comparison):
    table = comparison.evaluation("heldout")
    assert list(table.columns.get_level_values("model").unique()) == comparison.labels  # a column group per model
    for label, r in zip(comparison.labels, comparison.runs):
        own = r.method_table("heldout")
        assert table.loc["G-ACT", (label, "fenced target")].startswith(f"{own.at['gact', 'fenced_target']:.1%}")
        assert table.loc["asked explicitly", (label, "compiling (of all) / asking")] == "1"
    assert comparison.methods("heldout")[0] == "gact"
    assert set(comparison.bias().index) == set(comparison.labels)


def test_one_tasks_answers_are_the_stored_ones(comparison):
    task = comparison.tasks("heldout")[0]
    answers = comparison.answers(task, "heldout")
    assert list(answers) == comparison.labels
    for label, r in zip(comparison.labels, comparison.runs):
        stored = r.generations("heldout_gact")
        stored = stored[(stored["task_id"] == task) & (stored["condition"] == "steered")]
        assert answers[label]["steered"]["text"] == stored.iloc[0]["text"]
        assert set(answers[label]) == {"baseline", "asked", "steered"}
        assert all(a["language"] is None or isinstance(a["language"], str) for a in answers[label].values())


def test_runs_that_answer_different_questions_are_refused_in_one_line(compare_runs):
    def runs():
        return [RunResults(compare_runs / name) for name in COMPARED_RUNS[:2]]

    assert "target" in compared_settings() and "max_new_tokens" not in compared_settings()
    for key, value, words in (("target", "java", "differ in target: cpp and java"),
                              ("seed", 7, "differ in seed: 0 and 7"), ("k", 2, "differ in k: 3 and 2")):
        pair = runs()
        pair[1].pipeline[key] = value
        with pytest.raises(ComparisonError, match=words):
            check_comparable(pair)
    pair = runs()
    pair[1].settings["prompt_set"] = {"name": "mine.jsonl", "tasks": 5, "fingerprint": "0" * 16}
    with pytest.raises(ComparisonError, match="use different prompt sets: .* and mine.jsonl \\(5 tasks"):
        check_comparable(pair)
    with pytest.raises(ComparisonError, match="at least 2 runs, got 1"):
        check_comparable(runs()[:1])
    with pytest.raises(ComparisonError, match=f"run {DASHBOARD_RUN} is given twice"):
        check_comparable([runs()[0], runs()[0]])


def test_compare_command_prints_the_tables_and_writes_the_report(compare_runs, tmp_path, capsys):
    out = tmp_path / "comparison.html"
    task = Comparison.of([compare_runs / n for n in COMPARED_RUNS]).tasks("heldout")[0]
    assert main(["compare", *(str(compare_runs / n) for n in COMPARED_RUNS), "--set", "heldout", "--task", task,
                 "--report", str(out)]) == 0
    printed = capsys.readouterr().out
    for words in ("Models compared", "Where each model's probe forms the decision", "on the held-out phrasings",
                  "model-4: probe accuracy (95% interval) and the sweep, layer by layer",
                  "steered", f"wrote {out}"):
        assert words in printed
    html = out.read_text()
    assert html.count("<table") >= 3 and "steerscope-demo" in html and f"Task {task}" in html
    assert main(["compare", *(str(compare_runs / n) for n in COMPARED_RUNS[:2]), "--report", str(out)]) == 2  # no --force
    assert "exists" in capsys.readouterr().out


def test_compare_command_refuses_in_one_line(compare_runs, tmp_path, capsys):
    other = tmp_path / "java"
    shutil.copytree(compare_runs / COMPARED_RUNS[1], other)
    settings = (other / "settings.json").read_text().replace('"target": "cpp"', '"target": "java"')
    (other / "settings.json").write_text(settings)
    assert main(["compare", str(compare_runs / DASHBOARD_RUN), str(other)]) == 2
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"error: runs {DASHBOARD_RUN} and java differ in target: cpp and java; " \
                                           "a comparison needs the same target"
    assert main(["compare", str(compare_runs / DASHBOARD_RUN), str(compare_runs / DASHBOARD_RUN)]) == 2
    assert main(["compare", str(compare_runs / DASHBOARD_RUN), str(tmp_path / "nowhere")]) == 2


def test_the_report_of_a_comparison_names_every_model(comparison):
    html = build_comparison_report(comparison)
    assert all(label in html for label in comparison.labels)
    assert html.count("plotly.js") >= 1 and "What transfers" in html


def test_a_run_part_way_through_shows_what_it_has(compare_runs, tmp_path):
    """A real model's run may stop after its probes (hours of sweep and evaluation on a CPU): it is
    compared on what it has, and every other table says "not run"."""
    from steering.code.prompts import PromptSet
    from steering.engine.models import load_model
    from steering.pipeline.runner import Pipeline, PipelineSettings
    from steering.store.storage import Run

    model_dir = compare_runs.parent / "model-4"
    settings = PipelineSettings(probe_epochs=50, bias_samples=1, max_new_tokens=16, projections=("pca",))
    pipeline = Pipeline(load_model(str(model_dir)), PromptSet.load().head(8), Run(tmp_path / "probes-only", create=True),
                        settings, model_ref=str(model_dir))
    for stage in ("bias", "extract", "cluster", "probe"):
        pipeline.run_stage(stage)
    comparison = Comparison.of([compare_runs / DASHBOARD_RUN, tmp_path / "probes-only"])
    partial = comparison.labels[1]
    assert set(comparison.probe_depth()[lambda t: t["probe"] == "G-ACT"]["model"]) == set(comparison.labels)
    assert set(comparison.sweep_depth()["model"]) == {comparison.labels[0]}
    transfer = comparison.transfer().set_index("model")
    assert transfer.at[partial, "sweep: steered layers"] == "not run"
    assert transfer.filter(like="ACT best head").at[partial, transfer.filter(like="ACT best head").columns[0]] == "not run"
    assert comparison.prompt_sets() == ["neutral", "heldout"]
    assert set(comparison.evaluation("heldout")[partial].stack().unique()) == {"not run"}
    assert comparison.tasks("heldout") and comparison.answers(comparison.tasks("heldout")[0], "heldout")[partial] == {}
    assert "<h3>" in build_comparison_report(comparison)
