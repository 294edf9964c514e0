"""A run's probes as tables: each probe's accuracy per layer with its intervals and the lines it
must beat, the G-ACT paper's headline (G-ACT's probe against ACT's heads), and each neutral
prompt's predictions (confusion, failures, recall per cluster). ``RunResults`` draws them from the
run's metrics (``ProbeTables`` is its part that reads probes)."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..core.stats import unpaired_difference
from ..store.schema import accuracy_metric
from .eval_tables import format_interval

PROBES = {"gact": "G-ACT", "sklearn": "G-ACT, sklearn fit (ablation)", "refined": "G-ACT refined"}
# Lines drawn with the probes for comparison: ACT's own metric, and what a probe must beat.
REFERENCES = {"act": "ACT best head (good vs bad answer)", "majority": "majority class", "shuffled": "shuffled labels"}


def probe_comparison_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """``RunResults.probe_comparison`` as the pages, the report and the CLI show it."""
    return pd.DataFrame({
        "layer": ["mean" if layer != layer else str(int(layer)) for layer in comparison["layer"]],
        "depth": ["" if d != d else f"{d:.2f}" for d in comparison["depth"]],
        "G-ACT": [f"{v:.1%}" for v in comparison["gact"]], "ACT": [f"{v:.1%}" for v in comparison["act"]],
        "G-ACT - ACT (95% CI)": [format_interval((d, lo, hi)) for d, lo, hi in
                                 zip(comparison["difference"], comparison["low"], comparison["high"])]})


class ProbeTables:
    """The probe tables of ``RunResults`` (which gives ``_metrics``, ``metric_values``, ``tasks``,
    ``n_clusters`` and ``n_layers``)."""

    def probe_accuracy(self) -> pd.DataFrame:
        """One row per probe (or reference line) and layer: train and validation accuracy, and the
        validation accuracy's bootstrap 95% interval (``low``, ``high``) where one was computed."""
        columns = ["probe", "layer", "train", "val", "low", "high"]
        rows = []
        for key, label in PROBES.items():
            stage = "refine" if key == "refined" else "probe"
            train = self.metric_values(stage, accuracy_metric(key, "train"))
            val = self.metric_values(stage, accuracy_metric(key, "val"))
            ci = {m["layer"]: m["extra"] for m in self._metrics
                  if m["stage"] == stage and m["name"] == accuracy_metric(key, "val_ci")}
            rows += [{"probe": label, "layer": layer, "train": train[layer], "val": val[layer],
                      "low": ci.get(layer, {}).get("low", np.nan), "high": ci.get(layer, {}).get("high", np.nan)}
                     for layer in sorted(val)]
        act = [m for m in self._metrics if m["stage"] == "act" and m["name"] == accuracy_metric("best_head", "val")]
        rows += [{"probe": REFERENCES["act"], "layer": m["layer"], "train": np.nan, "val": m["value"],
                  "low": m["extra"]["low"], "high": m["extra"]["high"]} for m in act]
        for key in ("majority", "shuffled"):
            values = self.metric_values("probe", accuracy_metric(key, "val"))
            rows += [{"probe": REFERENCES[key], "layer": layer, "train": np.nan, "val": values[layer], "low": np.nan,
                      "high": np.nan} for layer in sorted(values)]
        return pd.DataFrame(rows, columns=columns)

    def probe_means(self, first: int | None = None) -> dict[str, float]:
        """Each line of ``probe_accuracy`` (a probe or a reference, by its label): its validation
        accuracy's mean over the layers (over the ``first`` layers only, when given); a layer
        without a value is skipped."""
        accuracy = self.probe_accuracy()
        if first is not None:
            accuracy = accuracy[accuracy["layer"].isin(sorted(set(accuracy["layer"]))[:first])]
        return accuracy.groupby("probe", sort=False)["val"].mean().to_dict()

    def probe_comparison(self) -> pd.DataFrame:
        """The G-ACT paper's headline, per layer: G-ACT's probe's validation accuracy against ACT's
        best head's, their difference with a 95% interval (each side's validation tasks resampled
        on its own: the two are validated on different rows), and a last row (layer None) with the
        mean over layers. Empty unless both were fitted with their validation rows stored."""
        gact = {m["layer"]: m["extra"] for m in self._metrics
                if m["stage"] == "probe" and m["name"] == accuracy_metric("gact", "val_ci") and "correct" in (m["extra"] or {})}
        act = {m["layer"]: m["extra"] for m in self._metrics
               if m["stage"] == "act" and m["name"] == accuracy_metric("best_head", "val") and "correct" in (m["extra"] or {})}
        layers = sorted(set(gact) & set(act))
        if not layers:
            return pd.DataFrame()
        side = {name: {layer: (rows[layer]["correct"], rows[layer]["tasks"]) for layer in layers}
                for name, rows in (("gact", gact), ("act", act))}
        rows = []
        for layer in [*layers, None]:
            chosen = layers if layer is None else [layer]
            point, low, high = unpaired_difference([side["gact"][l] for l in chosen], [side["act"][l] for l in chosen],
                                                   seed=self.pipeline.get("seed", 0))
            rates = {k: float(np.mean([np.mean(side[k][l][0]) if len(side[k][l][0]) else np.nan for l in chosen]))
                     for k in side}
            rows.append({"layer": layer, "depth": np.nan if layer is None else layer / self.n_layers,
                         "gact": rates["gact"], "act": rates["act"], "difference": point, "low": low, "high": high})
        return pd.DataFrame(rows)

    @cached_property
    def _predictions(self) -> dict[str, pd.DataFrame]:
        columns = ["id", "layer", "true", "predicted", "confidence", "p_true", "validation"]
        tables = {}
        for probe in ("gact", "sklearn"):
            rows = [m["extra"] for m in self._metrics if m["stage"] == "probe_report" and m["name"] == f"{probe}_prediction"]
            table = pd.DataFrame(rows, columns=columns)
            tables[probe] = table.merge(self.tasks, left_on="id", right_on="task_id", how="left").drop(columns="task_id")
        return tables

    def predictions(self, probe: str = "gact") -> pd.DataFrame:
        """Per neutral prompt and layer: true and predicted cluster, confidences, held out or not."""
        return self._predictions[probe].copy()

    def class_names(self) -> list[str]:
        names = [f"cluster {k}" for k in range(self.n_clusters)]
        return names + (["off"] if self.metric_values("probe", accuracy_metric("gact", "off_val")) else [])

    def confusion(self, layer: int, probe: str = "gact", split: str = "validation") -> pd.DataFrame:
        """Confusion matrix (rows: true cluster, columns: predicted) of neutral prompts at ``layer``."""
        table = self._split(self.predictions(probe), split)
        table = table[table["layer"] == layer]
        from sklearn.metrics import confusion_matrix  # lazily: it costs 0.5 s of the dashboard's cold start

        names = self.class_names()
        matrix = confusion_matrix(table["true"], table["predicted"], labels=range(len(names))) if len(table) else \
            np.zeros((len(names), len(names)), dtype=int)
        table = pd.DataFrame(matrix, index=names, columns=names)
        if "off" in names and not table.loc["off"].any() and not table["off"].any():  # neutral prompts are never "off"
            table = table.drop(index="off", columns="off")
        return table

    @staticmethod
    def _split(table: pd.DataFrame, split: str) -> pd.DataFrame:
        if split not in ("validation", "train", "all"):
            raise ValueError(f"unknown split {split!r}; expected validation, train or all")
        return table if split == "all" else table[table["validation"] == (split == "validation")]

    def failures(self, layer: int, probe: str = "gact", split: str = "all") -> pd.DataFrame:
        """Neutral prompts the probe misclassified at ``layer``, least confident in the truth first."""
        table = self._split(self.predictions(probe), split)
        table = table[(table["layer"] == layer) & (table["true"] != table["predicted"])].copy()
        names = self.class_names()  # as the charts name them: "cluster 2", "off"
        table["true"], table["predicted"] = table["true"].map(names.__getitem__), table["predicted"].map(names.__getitem__)
        return table.sort_values("p_true")[["id", "category", "true", "predicted", "confidence", "p_true", "validation", "neutral"]]

    def task_confidence(self, task_id: str) -> pd.DataFrame:
        """One task's probe confidence in its true cluster at every layer, for both probes."""
        frames = [self.predictions(p).assign(probe=PROBES[p]) for p in ("gact", "sklearn")]
        table = pd.concat(frames)
        return table[table["id"] == task_id][["probe", "layer", "true", "predicted", "confidence", "p_true"]]

    def class_accuracy(self, probe: str = "gact", split: str = "validation") -> pd.DataFrame:
        """Layer by cluster: the probe's recall for each true cluster (NaN: no such prompt)."""
        table = self._split(self.predictions(probe), split)
        names = self.class_names()
        if table.empty:
            return pd.DataFrame(columns=names)
        hit = (table["true"] == table["predicted"]).astype(float)
        recall = hit.groupby([table["layer"], table["true"]]).mean().unstack()
        recall.columns = [names[int(c)] for c in recall.columns]
        recall = recall.reindex(columns=names)
        return recall.drop(columns="off") if "off" in recall and recall["off"].isna().all() else recall
