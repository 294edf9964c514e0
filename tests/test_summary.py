"""The command line's summary of a run."""

from __future__ import annotations

from steering.store.storage import Run


def test_summary_survives_a_validation_split_without_off_samples(tmp_path, capsys):
    """A small prompt set can leave no "off" sample among the validation rows (NaN, stored as NULL)."""
    from steering.pipeline.results import RunResults
    from steering.reports.summary import print_summary

    run = Run(tmp_path / "run", create=True)
    rows = [(f"{m}_{split}_accuracy", layer, 0.5, None) for m in ("gact", "sklearn") for split in ("train", "val")
            for layer in range(2)]
    rows += [(f"{m}_off_val_accuracy", layer, float("nan"), None) for m in ("gact", "sklearn") for layer in range(2)]
    with run.writing():
        run.write_settings({"pipeline": {}})
        run.replace_metrics("probe", rows)
    print_summary(RunResults(run.dir))
    out = capsys.readouterr().out
    assert "Probe validation accuracy per layer" in out and "'off' class" not in out
