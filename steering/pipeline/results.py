"""A run's results as tidy tables: what the dashboard pages draw and the HTML report embeds.

Everything is read back from the run directory (settings, safetensors, SQLite), so a page
reload, a second browser session or a report recomputes nothing the pipeline already stored.
"""

from __future__ import annotations

import difflib
import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..code.languages import LANGUAGE_KEYS
from ..code.prompts import PromptSet
from ..methods.projection import run_projection
from ..methods.registry import label as method_label
from ..store.schema import (CHOSEN_ALPHA, CHOSEN_SCHEDULE, CLUSTERS, CONDITIONAL_SHARE, DELTAS,
                     YIELD_CONDITIONS, PROMPT_SETS, causal_metric, explicit_stage, is_evaluation, refine_metric, share_metric, yield_metric)
from ..store.storage import DATABASE_FILE, SETTINGS_FILE, TENSOR_DIR, Run, is_run, record_inputs
from .eval_tables import HEADLINE_MEASURES, EvaluationTables, format_interval  # noqa: F401 (re-exported)
from .probe_tables import ProbeTables
from .stages import PIPELINE, STAGES
from .vectors_io import run_vectors, vectors_bytes

def run_stamp(run_dir: str | Path) -> tuple:
    """Changes whenever the pipeline writes to the run: a cache key for its results."""
    root = Path(run_dir)
    paths = [root / SETTINGS_FILE, root / DATABASE_FILE, *sorted((root / TENSOR_DIR).glob("*.safetensors"))]
    return tuple((p.name, p.stat().st_mtime_ns) for p in paths if p.exists())


def list_runs(root: str | Path) -> list[Path]:
    """Run directories under ``root`` (runs by their marker; no links), the most recently changed first."""
    root = Path(root)
    runs = [p.parent for p in root.glob(f"*/{SETTINGS_FILE}") if not p.parent.is_symlink() and is_run(p.parent)] \
        if root.is_dir() else []
    return sorted(runs, key=lambda p: (p / SETTINGS_FILE).stat().st_mtime, reverse=True)


def answer_diff(baseline: str, steered: str) -> str:
    """A unified diff from the baseline answer to the steered one ("" when they are equal)."""
    lines = difflib.unified_diff(baseline.splitlines(), steered.splitlines(), "baseline", "steered", lineterm="")
    return "\n".join(lines)


def yielding_table(yielding: pd.DataFrame) -> pd.DataFrame:
    """``RunResults.yielding`` as the report and the CLI show it: one row per method."""
    if yielding.empty:
        return yielding
    cell = lambda r, k: format_interval((r.get(k), r.get(k + "_low"), r.get(k + "_high")))  # noqa: E731
    out = []
    for r in yielding.to_dict("records"):
        row = {"method": method_label(r["method"]), **{f"keeps the asked language, {words}": cell(r, k)
                                                      for k, words in YIELD_CONDITIONS.items()}}
        for prompt_set in PROMPT_SETS:
            if r.get(f"{prompt_set}_plain") == r.get(f"{prompt_set}_plain"):
                row[f"{prompt_set}: fenced target, plain"] = f"{r[prompt_set + '_plain']:.1%}"
                row[f"{prompt_set}: conditional"] = cell(r, f"{prompt_set}_conditional")
                row[f"{prompt_set}: prompts steered"] = f"{r[prompt_set + '_steers']:.0%}"
        out.append(row)
    return pd.DataFrame(out).fillna("")


class RunResults(ProbeTables, EvaluationTables):
    """Read-only views of one run. Missing stages give empty tables, never errors."""

    def __init__(self, run_dir: str | Path):
        self.run = Run(run_dir)
        self.run.verify()
        self.settings = self.run.settings
        self.pipeline = self.settings.get("pipeline", {})
        self.target = self.pipeline.get("target", "cpp")

    # what is there ------------------------------------------------------------------------
    @cached_property
    def _predates_records(self) -> bool:
        return self.run.predates_stage_records()

    @cached_property
    def _records(self) -> dict[str, dict]:
        return self.run.stage_records()

    @cached_property
    def done_stages(self) -> list[str]:
        """Stages (and evaluations such as ``eval_act``) recorded complete for the run's inputs,
        whose tensor files are all there."""
        inputs = record_inputs(self.settings)
        return [s for s, r in self._records.items() if r["inputs"] == inputs and s not in self.missing_files]

    @property
    def stage_seconds(self) -> float:
        """Wall time of the stages done (seconds, as each stage recorded it)."""
        return sum(self._records[s].get("seconds") or 0 for s in self.done_stages)

    @cached_property
    def missing_files(self) -> dict[str, list[str]]:
        """Stages recorded done whose tensor files are gone (deleted or moved), with those files."""
        tensors = {s.name: s.tensors for s in PIPELINE}
        gone = {s: [f"{n}.safetensors" for n in tensors.get(s, ()) if not self.run.has(n)] for s in self._records}
        return {s: files for s, files in gone.items() if files}

    @cached_property
    def stale_stages(self) -> list[str]:
        """Stages recorded with other inputs (settings, weights or prompts) than the run's now."""
        return [s for s in self._records if s not in self.done_stages and s not in self.missing_files]

    def has(self, stage: str) -> bool:
        """Whether ``stage`` (a pipeline stage, or an evaluation such as ``eval_act``) is complete
        for the run's inputs (a run from before stage records: whether it has its results)."""
        if self._predates_records:
            return stage in self.legacy_stages()
        if stage == "eval":
            return any(is_evaluation(s) for s in self.done_stages)
        return stage in self.done_stages

    def legacy_stages(self) -> list[str]:
        """For a run from before stage records: the stages (and evaluations) whose results are there."""
        evaluations = sorted({m["stage"] for m in self._metrics if is_evaluation(m["stage"])})
        return [s for s in STAGES if self._has_results(s)] + evaluations

    def _has_results(self, stage: str) -> bool:
        if stage in ("extract", "cluster"):
            return self.run.has(DELTAS if stage == "extract" else CLUSTERS)
        if stage == "project":
            return any((self.run.dir / TENSOR_DIR).glob("projection_*.safetensors"))
        if stage == "eval":
            return bool(self.evaluated_methods())
        return any(m["stage"] == stage for m in self._metrics)

    @cached_property
    def _metrics(self) -> list[dict]:
        return self.run.metrics()

    def metric_values(self, stage: str, name: str) -> dict:
        """``{layer: value}`` of one metric (``None`` is the key of a metric without a layer)."""
        return {m["layer"]: m["value"] for m in self._metrics if m["stage"] == stage and m["name"] == name}

    @cached_property
    def prompts(self) -> PromptSet:
        return self.run.prompt_set()

    @cached_property
    def tasks(self) -> pd.DataFrame:
        return pd.DataFrame([{"task_id": t.id, "category": t.category, "neutral": t.neutral} for t in self.prompts])

    @property
    def n_layers(self) -> int:
        return int(self.settings.get("model", {}).get("n_layers", 0))

    @property
    def n_clusters(self) -> int:
        return int(self.pipeline.get("k", 0))

    def generations(self, stage: str | None = None) -> pd.DataFrame:
        rows = self.run.generations(stage)
        columns = ["stage", "task_id", "condition", "seed", "prompt", "text", "language", "confidence", "parses", "n_tokens"]
        return pd.DataFrame(rows, columns=columns)

    # bias -------------------------------------------------------------------------------------
    def bias_shares(self) -> pd.Series:
        """Share of sampled neutral answers per language (and 'none': no language detected)."""
        values = {lang: self.metric_values("bias", share_metric(lang)).get(None, 0.0) for lang in (*LANGUAGE_KEYS, "none")}
        return pd.Series(values, name="share")

    def bias_matrix(self) -> pd.DataFrame:
        """Task by language: the share of each task's sampled answers in each language."""
        answers = self.generations("bias")
        if answers.empty:
            return pd.DataFrame(columns=[*LANGUAGE_KEYS, "none"])
        answers["language"] = answers["language"].fillna("none")
        table = pd.crosstab(answers["task_id"], answers["language"], normalize="index")
        table = table.reindex(index=self.prompts.ids, columns=[*LANGUAGE_KEYS, "none"], fill_value=0.0)
        return table.dropna(how="all").fillna(0.0)

    # probes ----------------------------------------------------------------------------------
    def yielding(self) -> pd.DataFrame:
        """Per evaluated method: on the tasks asked explicitly in another language, the share of
        answers that keep the asked language unsteered, steered and steered conditionally (with
        intervals), and on each evaluated set of open prompts the fenced-target share of plain
        and of conditional steering, and the share of those prompts the condition steers."""
        rows = []
        for method in dict.fromkeys(m["stage"].removeprefix(explicit_stage("")) for m in self._metrics
                                    if m["stage"].startswith(explicit_stage(""))):
            metrics = [m for m in self._metrics if m["stage"] == explicit_stage(method)]
            row = {"method": method}
            for m in metrics:
                if m["name"] in {yield_metric(c) for c in YIELD_CONDITIONS}:
                    key = m["name"].removeprefix(yield_metric(""))
                    row.update({key: m["value"], f"{key}_low": m["extra"]["low"], f"{key}_high": m["extra"]["high"]})
                elif m["name"] == CONDITIONAL_SHARE:
                    which = m["extra"]["prompt_set"]
                    row.update({f"{which}_plain": m["extra"]["plain"], f"{which}_conditional": m["value"],
                                f"{which}_conditional_low": m["extra"]["low"], f"{which}_conditional_high": m["extra"]["high"],
                                f"{which}_steers": m["extra"]["steers"]})
            rows.append(row)
        return pd.DataFrame(rows)

    def causal(self) -> pd.DataFrame:
        """Layer by choice (probe, random, oracle): steering success with that cluster's vector."""
        rows = [{"layer": m["layer"], "choice": choice, "success": m["value"]} for m in self._metrics
                for choice in ("probe", "random", "oracle") if m["stage"] == "sweep" and m["name"] == causal_metric(choice)]
        if not rows:
            return pd.DataFrame()
        return pd.DataFrame(rows).pivot(index="layer", columns="choice", values="success").sort_index()

    # clusters ----------------------------------------------------------------------------------
    @cached_property
    def _clusters(self) -> dict[str, torch.Tensor]:
        return self.run.load(CLUSTERS)[0] if self.run.has(CLUSTERS) else {}

    def cluster_labels(self) -> np.ndarray:
        """``[n_layers, n_tasks]`` cluster of each task's difference vector."""
        return self._clusters["labels"].numpy() if self._clusters else np.zeros((0, len(self.prompts)), dtype=int)

    def silhouette(self) -> pd.Series:
        values = self.metric_values("cluster", "silhouette")
        return pd.Series({int(k): v for k, v in values.items()}, name="silhouette", dtype=float).sort_index()

    def vector_cosines(self) -> pd.DataFrame:
        """Cosine similarity between every pair of steering vectors, labelled ``L{layer}·c{k}``,
        after removing each layer's mean difference: every cluster vector shares that direction
        (the cosines were all about 0.9), so what tells the clusters apart is what is left."""
        if not self._clusters:
            return pd.DataFrame()
        vectors = self._clusters["vectors"]  # [L, K, d]
        mean = self.run.load(DELTAS)[0]["mean_vectors"] if self.run.has(DELTAS) else vectors.mean(dim=1)
        vectors = vectors - mean[:, None, :].to(vectors)
        flat = torch.nn.functional.normalize(vectors.reshape(-1, vectors.shape[-1]), dim=-1)
        names = [f"L{layer}·c{k}" for layer in range(vectors.shape[0]) for k in range(vectors.shape[1])]
        return pd.DataFrame((flat @ flat.T).numpy(), index=names, columns=names)

    def projection(self, method: str = "pca", dims: int = 2) -> np.ndarray:
        """``[n_layers, n_tasks, dims]``, computed once per run and method (see ``projection``)."""
        return run_projection(self.run, method, dims, seed=int(self.pipeline.get("seed", 0)))

    def projection_table(self, points: np.ndarray, layer: int) -> pd.DataFrame:
        """The points of one layer with what the plot colours and hovers by."""
        table = self.tasks.copy()
        for i, axis in enumerate("xyz"[: points.shape[-1]]):
            table[axis] = points[layer, :, i]
        labels = self.cluster_labels()
        table["cluster"] = [f"cluster {c}" for c in labels[layer]] if len(labels) else "?"
        predictions = self.predictions()
        at_layer = predictions[predictions["layer"] == layer].set_index("id")
        correct = at_layer["true"] == at_layer["predicted"]
        table["probe"] = [("correct" if correct[t] else "wrong") if t in correct.index else "not probed" for t in table["task_id"]]
        return table

    # steering -----------------------------------------------------------------------------------
    def sweep(self) -> pd.DataFrame:
        """Layer by alpha: single-layer steering success from the sweep."""
        rows = [{"layer": m["layer"], "alpha": m["extra"]["alpha"], "success": m["value"]}
                for m in self._metrics if m["stage"] == "sweep" and m["name"] == "success"]
        if not rows:
            return pd.DataFrame()
        return pd.DataFrame(rows).pivot(index="layer", columns="alpha", values="success").sort_index()

    def layer_success(self) -> dict[int, float]:
        """Each layer's best single-layer success over the sweep's alphas (empty before the sweep)."""
        sweep = self.sweep()
        return {} if sweep.empty else {int(layer): float(v) for layer, v in sweep.max(axis=1).items()}

    def refinement(self) -> pd.DataFrame:
        """Split (train, val) by when (before, after): G-ACT's fenced-tag success around refinement."""
        return pd.DataFrame({when: {split: self.metric_values("refine", refine_metric(when, split)).get(None, np.nan)
                                    for split in ("train", "val")} for when in ("before", "after")})

    @property
    def chosen(self) -> dict | None:
        """The sweep's ``{"layers": [...], "alphas": [...]}`` (None before the sweep)."""
        chosen = self.metric_values("sweep", CHOSEN_ALPHA)
        if not chosen:
            return self.settings.get("chosen")  # a run from before the sweep stored its choice as a metric
        return {"layers": list(chosen), "alphas": list(chosen.values())}

    @property
    def act_choice(self) -> dict[int, float]:
        """ACT's layers (those with a kept head) at its chosen strength; empty without ACT."""
        alpha = self.metric_values("act", CHOSEN_ALPHA).get(None)
        kept = self.metric_values("act", "kept_heads")
        return {int(layer): float(alpha) for layer, n in kept.items() if n > 0} if alpha is not None else {}

    def selection(self) -> dict[str, dict]:
        """Per selecting method (``registry.Method.selection``), what the sweep's selection tried
        (``candidates``: margin, schedule, options, fenced share, quality) and what it chose
        (``schedule``, ``margin``, options such as ``off_class``, ``success``: its share) and why."""
        rows = [m for m in self._metrics if m["stage"] == "sweep" and m["name"] in ("candidate", CHOSEN_SCHEDULE)]
        out = {}
        for chosen in (m for m in rows if m["name"] == CHOSEN_SCHEDULE and (m["extra"] or {}).get("method")):
            method = chosen["extra"]["method"]
            candidates = pd.DataFrame([{**m["extra"], "success": m["value"]} for m in rows
                                       if m["name"] == "candidate" and m["extra"].get("method") == method])
            shares = candidates[candidates["margin"] == chosen["value"]]["success"] if len(candidates) else []
            out[method] = {"why": "", **{k: v for k, v in chosen["extra"].items() if k != "method"},
                           "margin": chosen["value"], "candidates": candidates.drop(columns="method")}
            out[method].setdefault("success", float(max(shares)) if len(shares) else float("nan"))
        return out

    # downloads -----------------------------------------------------------------------------------
    def metrics_csv(self) -> bytes:
        table = pd.DataFrame(self._metrics, columns=["stage", "name", "layer", "value", "extra"])
        table["extra"] = [json.dumps(e) if e else "" for e in table["extra"]]
        return table.to_csv(index=False).encode()

    def generations_jsonl(self) -> bytes:
        rows = self.generations().to_dict("records")
        return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows).encode()

    def vectors_safetensors(self) -> bytes:
        """The steering vectors with the facts needed to reuse them (``import-vectors`` reads it)."""
        return vectors_bytes(*run_vectors(self.run))
