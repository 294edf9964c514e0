"""A run's evaluations as tables: each method beside the unsteered answers and the references
(asked explicitly, prefilled fence), with bootstrap intervals over tasks, paired comparisons,
per task family, and the answers to one task. ``RunResults`` draws them from the run's metrics
and generations (``EvaluationTables`` is its part that reads evaluations)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..code.toolchains import toolchain
from ..core.stats import excludes_zero, paired_interval
from ..store.schema import (BUDGET, CONDITIONS, DEFAULT_METHOD, EVAL_MEASURES, REFERENCES as REFERENCE_LABELS, eval_metric, eval_share_metric,
                     eval_stage, is_evaluation)
from .evaluation import VERDICTS

# The measures a steering is judged by against the references: the target written, code that
# compiles, and fluency (repeated 4-grams: lower is better).
HEADLINE_MEASURES = ("fenced_target", "compiling", "repeated_ngrams")


def format_interval(cell, percent: bool = True) -> str:
    """``(value, low, high, ...)`` as "45.7% (31.1–60.0%)", or "0.93 (0.81–1.04)"; "n/a" without a value."""
    value, low, high = cell[:3]
    if value is None or value != value:
        return "n/a"
    show = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:.2f}")
    return show(value) + (f" ({show(low).rstrip('%')}–{show(high)})" if low is not None else "")


class EvaluationTables:
    """The evaluation tables of ``RunResults`` (which gives ``_metrics``, ``generations``,
    ``prompts`` and ``target``)."""

    def evaluated_methods(self, prompt_set: str = "neutral") -> list[str]:
        prefix = eval_stage("", prompt_set)
        return sorted(m["stage"].removeprefix(prefix) for m in self._metrics if m["stage"].startswith(prefix)
                      and m["name"] == eval_metric("steered", "success"))

    def eval_shares(self, method: str = DEFAULT_METHOD, prompt_set: str = "neutral") -> pd.DataFrame:
        """Verdict by condition (baseline, the references, steered): shares of a prompt set's answers, a language
        counting only fenced code that is clearly in it and parses."""
        stage = eval_stage(method, prompt_set)
        return pd.DataFrame({condition: {v: self.metric_values(stage, eval_share_metric(condition, v)).get(None, np.nan)
                                         for v in VERDICTS}
                             for condition in CONDITIONS})

    def _condition_rows(self, prompt_set: str):
        """``(row name, eval stage, condition)`` of a method table: the unsteered baseline and the
        two references (read from the first evaluation that has them), then each method."""
        methods = self.evaluated_methods(prompt_set)
        if not methods:
            return []
        first = eval_stage(methods[0], prompt_set)
        rows = [(REFERENCE_LABELS.get(c, c), first, c) for c in CONDITIONS if c != "steered"
                and self.metric_values(first, eval_metric(c, "fenced_target"))]
        return rows + [(m, eval_stage(m, prompt_set), "steered") for m in methods]

    def method_table(self, prompt_set: str = "neutral", intervals: bool = False) -> pd.DataFrame:
        """Method by measure (fenced target, parses, compiles, no code block, cut off, repeated
        4-grams), with the unsteered baseline and the references first: the comparison the README
        reports. ``intervals``: each cell is ``(rate, low, high)``, the bootstrap 95% interval
        over tasks (None where the run has none)."""
        rows = {}
        for name, stage, condition in self._condition_rows(prompt_set):
            values = {}
            for k in EVAL_MEASURES:
                row = self._metric_rows(stage, eval_metric(condition, k))
                value = row["value"] if row else np.nan
                ci = (row.get("extra") or {}).get("ci") if row else None
                values[k] = (value, *(ci or (None, None))) if intervals else value
            rows[name] = values
        return pd.DataFrame.from_dict(rows, orient="index", columns=list(EVAL_MEASURES))

    def _metric_rows(self, stage: str, name: str) -> dict | None:
        return next((m for m in self._metrics if m["stage"] == stage and m["name"] == name), None)

    def scores(self, prompt_set: str = "neutral") -> dict[str, dict]:
        """Per row of the method table: the task of each answer and each measure per answer
        (NaN where it does not count), as the evaluation stored them."""
        out = {}
        for name, stage, condition in self._condition_rows(prompt_set):
            row = self._metric_rows(stage, eval_metric(condition, "scores"))
            if row and row.get("extra"):
                extra = row["extra"]
                out[name] = {"tasks": extra["tasks"],
                             **{k: np.array([np.nan if v is None else v for v in extra[k]], dtype=float)
                                for k in EVAL_MEASURES if k in extra}}
        return out

    def comparison(self, prompt_set: str = "neutral", measure: str = "fenced_target", against: str = "mean_diff",
                   kind: str = "difference") -> pd.DataFrame:
        """Each row of the method table against row ``against`` (a method, or ``asked
        explicitly``) on ``measure``: the paired difference (or ratio) and its bootstrap 95%
        interval over tasks, and whether that interval excludes no change (0, or 1 for a ratio)."""
        scores = self.scores(prompt_set)
        against = REFERENCE_LABELS.get(against, against)
        if against not in scores:
            return pd.DataFrame(columns=["value", "low", "high", "clear"])
        base = scores[against]
        rows = {}
        for name, row in scores.items():
            if name == against or measure not in row or row["tasks"] != base["tasks"]:
                continue
            interval = paired_interval(row[measure], base[measure], row["tasks"], kind)
            rows[name] = {"value": interval[0], "low": interval[1], "high": interval[2],
                          "clear": excludes_zero(interval, 1.0 if kind == "ratio" else 0.0)}
        return pd.DataFrame.from_dict(rows, orient="index", columns=["value", "low", "high", "clear"])

    def headline_measures(self) -> tuple[str, ...]:
        """``HEADLINE_MEASURES``, with "…and parses" for "compiling" where no compiler of the
        target is installed (Julia here: the parse check is the quality measure then)."""
        return tuple("success" if m == "compiling" and toolchain(self.target) is None else m for m in HEADLINE_MEASURES)

    def comparison_table(self, prompt_set: str = "neutral", against: str = "asked explicitly", kind: str = "ratio",
                         measures=None) -> pd.DataFrame:
        """``comparison`` for several measures (default: ``headline_measures``): a row per method,
        a ``(value, low, high, clear)`` cell per measure (the README's "compiles: 0.93 of asking")."""
        measures = measures or self.headline_measures()
        columns = {m: self.comparison(prompt_set, m, against, kind) for m in measures}
        names = [n for n, _, c in self._condition_rows(prompt_set) if c == "steered" or n == "prefilled fence"]
        return pd.DataFrame({m: {n: tuple(t.loc[n]) if n in t.index else (np.nan, None, None, False) for n in names}
                             for m, t in columns.items()}, index=names)

    def family_table(self, prompt_set: str = "neutral", measure: str = "fenced_target") -> pd.DataFrame:
        """``measure`` per task family (rows, with the number of tasks) and row of the method
        table (columns): where a method wins or loses."""
        category = dict(zip(self.prompts.ids, (t.category for t in self.prompts)))
        columns = {}
        for name, row in self.scores(prompt_set).items():
            if measure in row:
                frame = pd.DataFrame({"family": [category.get(t, "?") for t in row["tasks"]], "value": row[measure]})
                columns[name] = frame.groupby("family", sort=False)["value"].mean()
        table = pd.DataFrame(columns)
        if not table.empty:
            table.insert(0, "tasks", pd.Series(category).value_counts())
        return table

    def display_table(self, prompt_set: str = "neutral",
                      measures=("fenced_target", "success", "compiling", "cut_off", "repeated_ngrams")) -> pd.DataFrame:
        """``method_table`` with intervals, as text ("45.7% (31.1–60.0%)"), rows and columns
        labelled as the pages name them."""
        from ..methods.registry import label  # on use: methods brings the steerers

        table = self.method_table(prompt_set, intervals=True)
        return pd.DataFrame({EVAL_MEASURES[k]: table[k].map(format_interval).to_numpy() for k in measures},
                            index=[label(m) for m in table.index])

    def task_answers(self, task_id: str) -> pd.DataFrame:
        """Every evaluation answer to one task: which method and prompt set, the condition, and
        what it counts as (language, parses), the steered ones that missed the target first."""
        from ..methods.registry import label

        answers = self.generations()
        if answers.empty:
            return answers
        answers = answers[(answers["task_id"] == task_id) & answers["stage"].map(is_evaluation)].copy()
        answers["prompt set"] = np.where(answers["stage"].str.startswith("heldout_"), "held-out", "neutral")
        answers["method"] = answers["stage"].str.split("_", n=1).str[1].map(label)
        answers["on target"] = (answers["language"] == self.target) & (answers["parses"] == 1)
        answers["_order"] = (answers["condition"] != "steered") * 2 + answers["on target"]
        answers = answers.sort_values("_order", kind="stable")
        return answers[["method", "prompt set", "condition", "language", "parses", "on target", "n_tokens", "prompt", "text"]]

    def budget(self, prompt_set: str = "neutral") -> dict | None:
        """The evaluation's token budget and how it was set (``rule``, ``cap``)."""
        methods = self.evaluated_methods(prompt_set)
        row = self._metric_rows(eval_stage(methods[0], prompt_set), BUDGET) if methods else None
        return {"tokens": int(row["value"]), **(row.get("extra") or {})} if row else None

    def showcase_task(self, method: str = DEFAULT_METHOD) -> str | None:
        """The task a demo opens on: the first whose answers in ``method``'s evaluation (on the
        neutral prompts where evaluated, else the held-out phrasings) are target code that parses
        within the budget, both asked explicitly and steered; else the first where asking alone
        does. None without an evaluation."""
        for prompt_set in ("neutral", "heldout"):
            answers = self.generations(eval_stage(method, prompt_set))
            budget = self.budget(prompt_set)
            if answers.empty or budget is None:
                continue
            good = answers[(answers["language"] == self.target) & (answers["parses"] == 1)
                           & (answers["n_tokens"] < budget["tokens"])]
            asked = set(good[good["condition"] == "asked"]["task_id"])
            both = asked & set(good[good["condition"] == "steered"]["task_id"])
            return next((t for t in self.prompts.ids if t in both), None) or \
                next((t for t in self.prompts.ids if t in asked), None)
        return None

    def examples(self, method: str = DEFAULT_METHOD, n: int = 3, prompt_set: str = "neutral") -> list[dict]:
        """Side-by-side answers from the evaluation: those whose language changed first, and of
        those, the ones whose steered code parses."""
        answers = self.generations(eval_stage(method, prompt_set))
        if answers.empty:
            return []
        pairs = answers[answers["condition"] == "baseline"].merge(
            answers[answers["condition"] == "steered"], on=["task_id", "seed"], suffixes=("_baseline", "_steered"))
        pairs["changed"] = pairs["language_baseline"].fillna("") != pairs["language_steered"].fillna("")
        pairs["parsed"] = pairs["parses_steered"].fillna(0).astype(bool)
        pairs = pairs.sort_values(["changed", "parsed"], ascending=False, kind="stable").head(n).drop(columns="parsed")
        return pairs.to_dict("records")

