"""What the dashboard draws, from the library: run results, figures, projections, the report and
the downloads, all read back from a run directory."""

from __future__ import annotations

import csv
import io
import json
import time

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import DASHBOARD_RUN, hashes
from steering.code.languages import LANGUAGES
from steering.methods.registry import check_alpha, presets
from steering.pipeline.results import RunResults, answer_diff, list_runs, run_stamp
from steering.pipeline.vectors_io import import_vectors
from steering.reports.report import build_report
from steering.store.storage import Run


def test_tables_cover_every_stage(results):
    assert set(results.bias_shares().index) == {*LANGUAGES, "none"}
    assert results.bias_shares().sum() == pytest.approx(1.0)
    matrix = results.bias_matrix()
    assert list(matrix.index) == results.prompts.ids and np.allclose(matrix.sum(axis=1), 1.0)
    accuracy = results.probe_accuracy()
    assert set(accuracy["probe"]) == {"G-ACT", "G-ACT, sklearn fit (ablation)", "G-ACT refined", "majority class",
                                      "shuffled labels", "ACT best head (good vs bad answer)"}
    for probe in ("G-ACT", "ACT best head (good vs bad answer)", "majority class"):
        assert sorted(accuracy[accuracy["probe"] == probe]["layer"]) == list(range(8)), probe
    gact = accuracy[accuracy["probe"] == "G-ACT"]
    assert ((gact["low"] <= gact["val"] + 1e-9) & (gact["val"] <= gact["high"] + 1e-9)).all()  # the interval holds it
    causal = results.causal()
    assert list(causal.columns) == ["oracle", "probe", "random"] and len(causal) == 8
    references = ["baseline", "asked explicitly", "prefilled fence"]
    assert list(results.method_table("heldout").index) == [*references, "act", "gact", "mean_diff"]  # compare_methods
    assert list(results.method_table("neutral").index) == [*references, "gact"]
    predictions = results.predictions()
    assert len(predictions) == 8 * len(results.prompts)  # every neutral prompt at every layer
    assert predictions["validation"].sum() == 8 * 2  # two held-out tasks of eight
    confusion = results.confusion(4, split="all")
    assert confusion.to_numpy().sum() == len(results.prompts)
    # Issue 17: neutral prompts are never "off", so an "off" class nothing was predicted as is not shown.
    assert "off" in results.class_names()
    assert ("off" in confusion.index) == bool(confusion.get("off", pd.Series([0])).any())
    assert "off" not in results.class_accuracy(split="all")
    failures = results.failures(4, split="all")
    assert (failures["true"] != failures["predicted"]).all()
    assert set(failures["true"]) | set(failures["predicted"]) <= set(results.class_names())  # named as the charts name them
    task = results.prompts.ids[0]
    assert sorted(results.task_confidence(task)["layer"].unique()) == list(range(8))
    assert results.cluster_labels().shape == (8, 8)
    cosines = results.vector_cosines()
    assert cosines.shape == (8 * 3, 8 * 3) and np.allclose(np.diag(cosines), 1.0, atol=1e-5)
    assert results.sweep().shape == (8, 2)
    assert results.evaluated_methods() == ["gact"]
    assert results.eval_shares()["steered"].sum() == pytest.approx(1.0)
    assert results.eval_shares("gact", "heldout")["steered"].sum() == pytest.approx(1.0)
    example = results.examples("gact", 2)[0]
    assert {"text_baseline", "text_steered", "language_steered"} <= set(example)


@pytest.mark.slow
def test_a_run_without_later_stages_gives_empty_tables(embedded, tmp_path):
    from steering.code.prompts import PromptSet
    from steering.pipeline.runner import Pipeline, PipelineSettings

    pipeline = Pipeline(embedded, PromptSet.load().head(3), Run(tmp_path / "r", create=True),
                        PipelineSettings(bias_samples=1, max_new_tokens=16))
    pipeline.run_stage("bias")
    partial = RunResults(tmp_path / "r")
    assert partial.has("bias") and not partial.has("probe") and not partial.has("cluster")
    assert partial.probe_accuracy().empty and partial.sweep().empty and partial.vector_cosines().empty
    assert "<h2>Bias</h2>" in build_report(partial) and "Probes" not in build_report(partial)


def test_runs_are_listed_newest_first_and_stamped(dashboard_runs, tmp_path):
    assert DASHBOARD_RUN in [p.name for p in list_runs(dashboard_runs)]
    assert list_runs(tmp_path / "nothing") == []
    run = Run(tmp_path / "a", create=True)
    with run.writing():
        run.write_settings({"x": 1})
    assert run.metrics() == [] and run.generations() == []
    assert not (run.dir / "run.sqlite").exists()  # reading never creates the database
    before = run_stamp(run.dir)
    time.sleep(0.01)
    with run.writing():
        run.replace_metrics("bias", [("share_cpp", None, 0.5, None)])
    assert run_stamp(run.dir) != before


def test_downloads_round_trip(results, embedded, tmp_path):
    rows = list(csv.DictReader(io.StringIO(results.metrics_csv().decode())))
    assert {"stage", "name", "layer", "value", "extra"} == set(rows[0]) and len(rows) == len(results.run.metrics())
    lines = results.generations_jsonl().decode().splitlines()
    assert len(lines) == len(results.run.generations()) and json.loads(lines[0])["stage"] == "bias"
    path = tmp_path / "v.safetensors"
    path.write_bytes(results.vectors_safetensors())
    tensors, meta = import_vectors(path, embedded)
    assert torch.equal(tensors["vectors"], results.run.load("clusters")[0]["vectors"]) and meta["target"] == "cpp"
    # The choices the paper leaves open travel with the vectors.
    assert meta["choices"] == {"answer_prefix": "```", "adaptive": True, "selection": "soft", "off_class": "weight", "cluster_mode": "concat",
                               "probe_paraphrases": 1, "refine_gains": True, "k": 3, "contrast": "neutral"}


def test_alpha_limits_presets_and_diffs():
    assert check_alpha(0.5, "gact") == 0.5 and check_alpha(-50, "neuron") == -50.0
    for bad in (9.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="out of range for G-ACT"):
            check_alpha(bad, "gact")
    chosen = {"layers": [3, 6], "alphas": [0.375, 0.375]}
    assert presets(8, chosen) == {"best layers from sweep": {3: 0.375, 6: 0.375}, "early layers": {0: 0.5, 1: 0.5},
                                  "all off": {}}
    assert presets(2, None)["best layers from sweep"] == {} and presets(2, None)["early layers"] == {0: 0.5}
    assert answer_diff("a\nb", "a\nb") == ""
    assert "-b\n+c" in answer_diff("a\nb", "a\nc")


@pytest.mark.slow
def test_reopening_a_run_and_one_off_settings_write_nothing(results, embedded, tmp_path):
    """The Steer page reopens the run's pipeline on every rerun: that must not touch the run (its
    results cache key, and other sessions reading it). One-off settings change this session's
    evaluation only: it is returned, not stored, and the run's other stages refuse them."""
    import shutil

    from steering.pipeline.runner import Pipeline
    from steering.store.storage import StorageError

    copy = tmp_path / "copy"
    shutil.copytree(results.run.dir, copy)
    before = hashes(copy)
    Pipeline.reopen(copy, embedded)
    assert hashes(copy) == before
    one_off = Pipeline.reopen(copy, embedded, {"steer_layers": [0], "steer_alphas": [0.1], "k": 2})
    assert one_off.one_off == {"steer_layers": [0], "steer_alphas": [0.1], "k": 2}
    result = one_off.run_stage("eval", "mean_diff", "neutral")
    assert result["spec"]["layers"] == [0] and result["spec"]["alphas"] == [0.1]
    with pytest.raises(StorageError, match="one-off settings .* apply to eval and steer only"):
        one_off.run_stage("cluster")
    assert hashes(copy) == before  # nothing stored: a later plain eval uses the run's own settings
    assert Pipeline.reopen(copy, embedded).settings.steer_layers is None
