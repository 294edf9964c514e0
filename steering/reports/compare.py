"""Runs of different models side by side: the same question asked of each, on a relative-depth
axis (layer / number of layers) so that 18, 24 and 28 layers line up.

``Comparison.of(run_dirs)`` refuses, in one line that names the difference, runs whose answers
do not measure the same thing: another prompt set, or another value of a setting declared
``same=True`` in ``PipelineSettings`` (target, contrast, hook point, seed, K, the evaluation's
decoding, ...). Everything else (the model, the token budget, the sweep's alphas) may differ: it
is what is being compared, or what a model needs. A run that lacks a stage shows as "not run" in
that table; nothing is recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from ..code.languages import LANGUAGE_KEYS
from ..methods.registry import DEFAULT_METHOD, METHODS, label as method_label
from ..pipeline.eval_tables import format_interval
from ..pipeline.probe_tables import PROBES, REFERENCES
from ..pipeline.results import RunResults
from ..pipeline.settings import PipelineSettings, compared_settings
from ..store.schema import EVAL_MEASURES, PROMPT_SETS, REFERENCES as REFERENCE_LABELS, eval_stage

PROBE_ACCURACY_GOAL = 0.9  # "where the decision forms": the first depth whose probe reads it this well
DEPTH_PROBES = (PROBES["gact"], REFERENCES["act"])  # the two probes compared by depth (their labels)
ANSWER_CONDITIONS = ("baseline", "asked", "steered")  # one task's answers, per model
NOT_RUN = "not run"


class ComparisonError(ValueError):
    """Runs that cannot be compared: the message names the runs and what differs."""


def depth(layer: int, n_layers: int) -> float:
    """A layer's relative depth: layer / number of layers (0 is the first layer)."""
    return layer / n_layers


def _defaults() -> dict:
    return {f.name: f.default for f in fields(PipelineSettings)}


def _shown(value) -> str:
    return "''" if value == "" else ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def check_comparable(runs: list[RunResults]) -> None:
    """Raise ``ComparisonError`` unless ``runs`` (two or more distinct runs) share a prompt set
    and every ``same=True`` setting."""
    if len(runs) < 2:
        raise ComparisonError(f"a comparison needs at least 2 runs, got {len(runs)}")
    dirs = [r.run.dir.resolve() for r in runs]
    twice = next((d for d in dirs if dirs.count(d) > 1), None)
    if twice is not None:
        raise ComparisonError(f"run {twice.name} is given twice")
    first, name = runs[0], runs[0].run.dir.name
    prompts = first.settings.get("prompt_set", {})
    defaults = _defaults()
    for other in runs[1:]:
        theirs = other.settings.get("prompt_set", {})
        if theirs.get("fingerprint") != prompts.get("fingerprint"):
            raise ComparisonError(f"runs {name} and {other.run.dir.name} use different prompt sets: "
                                  f"{prompts.get('name')} ({prompts.get('tasks')} tasks, {prompts.get('fingerprint')}) and "
                                  f"{theirs.get('name')} ({theirs.get('tasks')} tasks, {theirs.get('fingerprint')})")
        for key in compared_settings():
            mine, yours = (r.pipeline.get(key, defaults[key]) for r in (first, other))
            if _shown(mine) != _shown(yours):
                raise ComparisonError(f"runs {name} and {other.run.dir.name} differ in {key}: {_shown(mine)} and "
                                      f"{_shown(yours)}; a comparison needs the same {key}")


@dataclass
class Comparison:
    """Two or more runs that answer the same question, each under its model's name."""

    runs: list[RunResults]

    @classmethod
    def of(cls, run_dirs) -> "Comparison":
        """Open and check ``run_dirs`` (folders, or runs already read)."""
        runs = [d if isinstance(d, RunResults) else RunResults(Path(d)) for d in run_dirs]  # StorageError: not a run
        check_comparable(runs)
        return cls(runs)

    @property
    def labels(self) -> list[str]:
        """Each run's model name; the run's folder name beside it where two runs share a model."""
        names = [r.settings.get("model", {}).get("name") or r.run.dir.name for r in self.runs]
        return [f"{n} ({r.run.dir.name})" if names.count(n) > 1 else n for n, r in zip(names, self.runs)]

    @property
    def target(self) -> str:
        return self.runs[0].target

    def _each(self):
        return zip(self.labels, self.runs)

    # the question asked of every model ---------------------------------------------------------
    def models(self) -> pd.DataFrame:
        """One row per model: its layers and width, the run, its stages and how long they took."""
        rows = []
        for name, r in self._each():
            model = r.settings.get("model", {})
            rows.append({"model": name, "layers": r.n_layers, "d_model": model.get("d_model"),
                         "parameters": model.get("n_params"), "dtype": model.get("dtype"), "run": r.run.dir.name,
                         "stages done": len(r.done_stages), "stage time (min)": round(r.stage_seconds / 60, 1)})
        return pd.DataFrame(rows)

    def bias(self) -> pd.DataFrame:
        """Model by language: the share of sampled answers to the neutral prompts (empty rows
        for a run without its bias stage)."""
        return pd.DataFrame({name: r.bias_shares() if r.has("bias") else pd.Series(np.nan, index=[*LANGUAGE_KEYS, "none"])
                             for name, r in self._each()}).T

    def probe_depth(self) -> pd.DataFrame:
        """One row per model, probe (G-ACT's, ACT's best head) and layer: validation accuracy and
        its 95% interval, at the layer's relative depth."""
        rows = []
        for name, r in self._each():
            accuracy = r.probe_accuracy()
            for probe in DEPTH_PROBES:
                for row in accuracy[accuracy["probe"] == probe].to_dict("records"):
                    rows.append({"model": name, "probe": probe, "layer": int(row["layer"]),
                                 "depth": depth(int(row["layer"]), r.n_layers),
                                 **{k: row[k] for k in ("val", "low", "high")}})
        return pd.DataFrame(rows, columns=["model", "probe", "layer", "depth", "val", "low", "high"])

    def sweep_depth(self) -> pd.DataFrame:
        """One row per model and layer: the layer's best single-layer success in the sweep, and
        whether the sweep chose it to steer."""
        rows = []
        for name, r in self._each():
            chosen = set((r.chosen or {}).get("layers", ())) if r.has("sweep") else set()
            rows += [{"model": name, "layer": layer, "depth": depth(layer, r.n_layers), "success": success,
                      "chosen": layer in chosen} for layer, success in r.layer_success().items()]
        return pd.DataFrame(rows, columns=["model", "layer", "depth", "success", "chosen"])

    def by_layer(self) -> pd.DataFrame:
        """The depth figures as one table: per model and layer, its depth, each probe's validation
        accuracy (G-ACT's with its interval), the sweep's best single-layer success and whether
        the sweep steers the layer ("" where a stage has not run)."""
        probes, sweep = self.probe_depth(), self.sweep_depth()
        rows = []
        for name, r in self._each():
            for layer in range(r.n_layers):
                row = {"model": name, "layer": layer, "depth": f"{depth(layer, r.n_layers):.2f}"}
                for probe in DEPTH_PROBES:
                    cell = probes[(probes["model"] == name) & (probes["probe"] == probe) & (probes["layer"] == layer)]
                    row[probe] = "" if cell.empty else format_interval(tuple(cell.iloc[0][["val", "low", "high"]]))
                cell = sweep[(sweep["model"] == name) & (sweep["layer"] == layer)]
                row["sweep: best success"] = "" if cell.empty else f"{cell.iloc[0]['success']:.0%}"
                row["steered"] = "yes" if not cell.empty and cell.iloc[0]["chosen"] else ""
                rows.append(row)
        return pd.DataFrame(rows)

    def transfer(self) -> pd.DataFrame:
        """What carries across models, one row each: the first layer (and depth) where each
        probe reaches ``PROBE_ACCURACY_GOAL``, the layer from which it stays there, the best
        single layer in the sweep, and the layers the sweep chose to steer."""
        probes, sweep = self.probe_depth(), self.sweep_depth()
        rows = []
        for name, r in self._each():
            row = {"model": name, "layers": r.n_layers}
            for probe in DEPTH_PROBES:
                mine = probes[(probes["model"] == name) & (probes["probe"] == probe)].sort_values("layer")
                above = mine[mine["val"] >= PROBE_ACCURACY_GOAL]
                row[f"{probe}: first layer ≥ {PROBE_ACCURACY_GOAL:.0%}"] = (
                    NOT_RUN if mine.empty else "never" if above.empty else _at(above.iloc[0]))
                below = mine[mine["val"] < PROBE_ACCURACY_GOAL]  # validation sets are small: one layer can be luck
                stays = mine if below.empty else mine[mine["layer"] > below["layer"].max()]
                row[f"{probe}: ≥ {PROBE_ACCURACY_GOAL:.0%} at every layer from"] = (
                    NOT_RUN if mine.empty else "never" if stays.empty else _at(stays.iloc[0]))
            mine = sweep[sweep["model"] == name]
            steers = not mine.empty and mine["success"].max() > 0
            row["sweep: best single layer"] = NOT_RUN if mine.empty else \
                _at(mine.loc[mine["success"].idxmax()]) + f", {mine['success'].max():.0%}" if steers else \
                "none: 0% at every layer and alpha"
            chosen = ", ".join(_at(c) for _, c in mine[mine["chosen"]].iterrows())
            row["sweep: steered layers"] = NOT_RUN if mine.empty else chosen if steers else \
                f"{chosen} (the tie rule's pick: no layer steers)"
            rows.append(row)
        return pd.DataFrame(rows)

    # evaluations ---------------------------------------------------------------------------------
    def prompt_sets(self) -> list[str]:
        """The prompt sets any of the runs has evaluated a method on (a run without shows "not run")."""
        return [s for s in PROMPT_SETS if any(r.evaluated_methods(s) for r in self.runs)]

    def methods(self, prompt_set: str) -> list[str]:
        """Methods evaluated on ``prompt_set`` in any of the runs (a run without one shows "not run")."""
        seen = {m for r in self.runs for m in r.evaluated_methods(prompt_set)}
        return sorted((m for m in METHODS if m in seen), key=lambda m: m != DEFAULT_METHOD)

    def quality(self) -> str:
        """The quality measure the runs are judged by (compiling, or parsing without a compiler)."""
        return self.runs[0].headline_measures()[1]

    def evaluation(self, prompt_set: str = "heldout") -> pd.DataFrame:
        """Each method against its own model's references: rows are the unsteered baseline, the
        references and the methods; a column group per model (fenced target, the quality
        measure, cut off, the quality measure as a ratio to asking), as text with 95% intervals."""
        quality = self.quality()
        measures = {"fenced_target": EVAL_MEASURES["fenced_target"], quality: EVAL_MEASURES[quality],
                    "cut_off": EVAL_MEASURES["cut_off"]}
        ratio_name = f"{EVAL_MEASURES[quality]} / asking"
        rows = ["baseline", *REFERENCE_LABELS.values(), *self.methods(prompt_set)]
        columns = {}
        for name, r in self._each():
            table = r.method_table(prompt_set, intervals=True)
            ratios = r.comparison_table(prompt_set, measures=(quality,)) if not table.empty else pd.DataFrame()
            for key, title in measures.items():
                columns[(name, title)] = [format_interval(table.at[row, key]) if row in table.index else NOT_RUN
                                          for row in rows]
            columns[(name, ratio_name)] = [
                format_interval(ratios.at[row, quality], percent=False) if row in ratios.index else
                ("1" if row == REFERENCE_LABELS["asked"] and not table.empty else "" if row in table.index else NOT_RUN)
                for row in rows]
        out = pd.DataFrame(columns, index=[method_label(row) for row in rows])  # the baseline and references as they are
        out.columns = pd.MultiIndex.from_tuples(out.columns, names=["model", "measure"])
        return out

    def budgets(self, prompt_set: str = "heldout") -> dict[str, dict | None]:
        """Each model's evaluation budget on ``prompt_set`` (its own: set by its asked answers)."""
        return {name: r.budget(prompt_set) for name, r in self._each()}

    def tasks(self, prompt_set: str = "heldout", method: str = DEFAULT_METHOD) -> list[str]:
        """The tasks answered in ``method``'s evaluation of ``prompt_set`` by every run that has it, in
        prompt-set order."""
        answered = [set(r.generations(eval_stage(method, prompt_set))["task_id"]) for r in self.runs
                    if method in r.evaluated_methods(prompt_set)]  # a run without this evaluation shows "not run"
        common = set.intersection(*answered) if answered else set()
        return [t for t in self.runs[0].prompts.ids if t in common]

    def answers(self, task_id: str, prompt_set: str = "heldout", method: str = DEFAULT_METHOD) -> dict[str, dict[str, dict]]:
        """One task's stored answers per model: ``{model: {condition: row}}`` for the unsteered
        baseline, the task asked explicitly, and ``method`` steered (a row: prompt, text,
        language, parses, n_tokens; ``{}`` for a run without this evaluation). Nothing is decoded."""
        out = {}
        for name, r in self._each():
            answers = r.generations(eval_stage(method, prompt_set))
            answers = answers[answers["task_id"] == task_id].sort_values("seed", kind="stable")
            answers = answers.astype(object).where(answers.notna(), None)  # no language: None, not NaN
            out[name] = {c: answers[answers["condition"] == c].iloc[0].to_dict()
                         for c in ANSWER_CONDITIONS if (answers["condition"] == c).any()}
        return out


def _at(row) -> str:
    return f"L{int(row['layer'])} ({row['depth']:.2f})"
