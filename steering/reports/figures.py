"""Plotly figures of a run, shared by the dashboard pages and the HTML report.

Every figure has a title, axis labels and hover text; layer axes are integers; each language has
one colour everywhere (``languages.LANGUAGES``), clusters another palette so they never look
like languages.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from plotly.colors import qualitative
import plotly.graph_objects as go

from ..code.languages import LANGUAGES

NO_LANGUAGE = "#9e9e9e"
CLUSTER_COLORS = qualitative.Set2
PROBE_COLORS = {"G-ACT": "#1f77b4", "ACT best head (good vs bad answer)": "#ff7f0e", "G-ACT refined": "#2ca02c",
                "G-ACT, sklearn fit (ablation)": "#9467bd", "majority class": "#7f7f7f", "shuffled labels": "#bcbd22"}
CORRECTNESS_COLORS = {"correct": "#2ca02c", "wrong": "#d62728", "not probed": NO_LANGUAGE}
SEQUENTIAL = "Viridis"


def cluster_color(name: str) -> str:
    """``"cluster 2"``'s colour, the same at every layer (not the position among the clusters a
    layer happens to have)."""
    number = str(name).rsplit(" ", 1)[-1]
    return CLUSTER_COLORS[int(number) % len(CLUSTER_COLORS)] if number.isdigit() else NO_LANGUAGE


def language_color(key: str) -> str:
    return LANGUAGES[key].color if key in LANGUAGES else {"no_code_block": "#d4d4d4"}.get(key, NO_LANGUAGE)


VERDICT_NAMES = {"other": "other or not parsing", "no_code_block": "no code block"}


def language_name(key: str) -> str:
    return LANGUAGES[key].display if key in LANGUAGES else VERDICT_NAMES.get(key, "no language")


TITLE_WIDTH = 48  # characters per title line: longer titles wrap rather than run off a half-width chart at 1280 px


def _style(fig: go.Figure, title: str, x: str, y: str, layer_axis: str | None = None, height: int = 380) -> go.Figure:
    lines = textwrap.wrap(title, TITLE_WIDTH) or [""]
    # The mode bar stands upright at the right edge, so that it never covers the title.
    fig.update_layout(title=dict(text="<br>".join(lines), x=0, xanchor="left"), xaxis_title=x, yaxis_title=y,
                      height=height, margin=dict(l=60, r=40, t=40 + 20 * len(lines), b=50), modebar_orientation="v",
                      hoverlabel=dict(font_size=13), legend_title_text="")
    fig.update_xaxes(automargin=True)  # long tick labels (task names) widen the margin instead of being cut
    fig.update_yaxes(automargin=True)
    if layer_axis:
        values = [getattr(trace, layer_axis, None) for trace in fig.data]
        layers = [v for vs in values if vs is not None for v in vs
                  if isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v)]
        bounds = {"range": [min(layers) - 0.5, max(layers) + 0.5]} if layers else {}  # no axis past the model's layers
        fig.update_layout({f"{layer_axis}axis": dict(tickmode="linear", dtick=1, tickformat="d", **bounds)})
    return fig


def _band(fig: go.Figure, rows: pd.DataFrame, x: str, color: str, group: str, opacity: float = 0.15) -> None:
    """The 95% interval of ``rows`` (columns ``low``, ``high``; rows without one left out) as a
    shaded band over ``x``, in its line's legend group."""
    band = rows.dropna(subset=["low", "high"]) if {"low", "high"} <= set(rows) else rows.iloc[:0]
    if len(band):
        fig.add_scatter(x=[*band[x], *band[x][::-1]], y=[*band["high"], *band["low"][::-1]], fill="toself",
                        fillcolor=color, opacity=opacity, line_width=0, hoverinfo="skip", showlegend=False,
                        legendgroup=group)


def _percent_axis(fig: go.Figure, axis: str = "y") -> None:
    fig.update_layout({f"{axis}axis": dict(tickformat=".0%", range=[0, 1.02])})


# bias ---------------------------------------------------------------------------------------
def language_shares_bar(shares: pd.Series, title: str = "Language of the answers to neutral prompts") -> go.Figure:
    keys = [k for k in shares.index if k != "none" or shares[k] > 0]
    fig = go.Figure(go.Bar(
        x=[language_name(k) for k in keys], y=[shares[k] for k in keys], marker_color=[language_color(k) for k in keys],
        text=[f"{shares[k]:.0%}" for k in keys], textposition="outside",
        hovertemplate="%{x}: %{y:.1%} of answers<extra></extra>",
    ))
    _percent_axis(fig)
    return _style(fig, title, "language", "share of answers")


def bias_heatmap(matrix: pd.DataFrame, title: str = "Per task: language of the sampled answers") -> go.Figure:
    columns = [c for c in matrix.columns if c != "none" or matrix[c].sum() > 0]
    fig = go.Figure(go.Heatmap(
        z=matrix[columns].to_numpy(), x=[language_name(c) for c in columns], y=list(matrix.index),
        colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="share", tickformat=".0%"),
        hovertemplate="task %{y}<br>%{x}: %{z:.0%} of its answers<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    return _style(fig, title, "language", "task", height=max(380, 16 * len(matrix) + 120))


def shares_before_after(shares: pd.DataFrame, title: str = "Language shares before and after steering") -> go.Figure:
    """Stacked bars, one per condition (columns of ``shares``), one colour per language."""
    fig = go.Figure()
    for key in shares.index:
        values = shares.loc[key].fillna(0)
        if key not in LANGUAGES and not values.any():
            continue
        fig.add_bar(name=language_name(key), x=list(shares.columns), y=values, marker_color=language_color(key),
                    text=[f"{v:.0%}" if v >= 0.05 else "" for v in values], textposition="inside",
                    hovertemplate=f"{language_name(key)}: %{{y:.1%}} (%{{x}})<extra></extra>")
    fig.update_layout(barmode="stack")
    _percent_axis(fig)
    return _style(fig, title, "condition", "share of answers")


# probes ---------------------------------------------------------------------------------------
def probe_accuracy_lines(accuracy: pd.DataFrame, title: str = "Probe validation accuracy per layer") -> go.Figure:
    """One line per probe, with its bootstrap 95% band where there is one; reference lines
    (majority class, shuffled labels) dashed."""
    fig = go.Figure()
    # Refined first, so G-ACT's own line is drawn over it where they coincide (the common case).
    order = sorted(accuracy["probe"].unique(), key=lambda p: p != "G-ACT refined")
    for probe in order:
        rows = accuracy[accuracy["probe"] == probe]
        color = PROBE_COLORS.get(probe, "#7f7f7f")
        _band(fig, rows, "layer", color, probe)
        reference = probe in ("majority class", "shuffled labels")
        refined = probe == "G-ACT refined"
        fig.add_scatter(x=rows["layer"], y=rows["val"], mode="lines" if reference else "lines+markers", name=probe,
                        legendgroup=probe, line=dict(color=color, width=5 if refined else 2,
                                                     dash="dot" if reference else "solid"),
                        marker=dict(size=11 if refined else 6, symbol="circle-open" if refined else "circle"),
                        customdata=rows[["train"]].to_numpy(),
                        hovertemplate=f"{probe}, layer %{{x}}<br>validation %{{y:.1%}}<br>train %{{customdata[0]:.1%}}<extra></extra>")
    _percent_axis(fig)
    return _style(fig, title, "layer", "validation accuracy", layer_axis="x")


def probe_difference_lines(comparison: pd.DataFrame,
                           title: str = "G-ACT's probe minus ACT's best head: validation accuracy per layer") -> go.Figure:
    """The paper's headline (``RunResults.probe_comparison``): the difference per layer with its
    95% band, zero dotted, and the mean over layers as a dashed line."""
    rows = comparison.dropna(subset=["layer"])
    mean = comparison[comparison["layer"].isna()]
    fig = go.Figure()
    fig.add_scatter(x=[*rows["layer"], *rows["layer"][::-1]], y=[*rows["high"], *rows["low"][::-1]], fill="toself",
                    fillcolor="#1f77b4", opacity=0.15, line_width=0, hoverinfo="skip", showlegend=False)
    fig.add_scatter(x=rows["layer"], y=rows["difference"], mode="lines+markers", name="G-ACT - ACT",
                    line=dict(color="#1f77b4"), customdata=rows[["gact", "act", "low", "high"]].to_numpy(),
                    hovertemplate="layer %{x}: %{y:+.1%} (%{customdata[2]:+.1%} to %{customdata[3]:+.1%})<br>"
                                  "G-ACT %{customdata[0]:.1%}, ACT %{customdata[1]:.1%}<extra></extra>")
    fig.add_hline(y=0, line=dict(color="#7f7f7f", dash="dot"))
    if len(mean):
        m = mean.iloc[0]
        fig.add_hline(y=m["difference"], line=dict(color="#ff7f0e", dash="dash"),
                      annotation_text=f"mean {m['difference']:+.1%} ({m['low']:+.1%} to {m['high']:+.1%})",
                      annotation_position="top left")
    fig.update_yaxes(tickformat="+.0%")
    return _style(fig, title, "layer", "accuracy difference", layer_axis="x")


def causal_lines(causal: pd.DataFrame, title: str = "Does the probe pick the right vector? Steering success per layer") -> go.Figure:
    """Steering success per layer with the probe's cluster, a random one and the oracle's."""
    fig = go.Figure()
    for choice, color, dash in (("oracle", "#2ca02c", "dot"), ("probe", "#1f77b4", "solid"), ("random", "#7f7f7f", "dash")):
        if choice in causal:
            fig.add_scatter(x=list(causal.index), y=causal[choice], mode="lines+markers", name=f"{choice} cluster",
                            line=dict(color=color, dash=dash),
                            hovertemplate=f"{choice}, layer %{{x}}: %{{y:.0%}}<extra></extra>")
    _percent_axis(fig)
    return _style(fig, title, "layer", "fenced tag in the target", layer_axis="x")


def class_accuracy_heatmap(recall: pd.DataFrame, title: str = "Probe recall by layer and cluster (validation)") -> go.Figure:
    fig = go.Figure(go.Heatmap(
        z=recall.to_numpy(dtype=float).T, x=list(recall.index), y=list(recall.columns), colorscale=SEQUENTIAL,
        zmin=0, zmax=1, colorbar=dict(title="recall", tickformat=".0%"),
        hovertemplate="layer %{x}, %{y}<br>recall %{z:.0%}<extra></extra>",
    ))
    return _style(fig, title, "layer", "true cluster", layer_axis="x")


def confusion_heatmap(confusion: pd.DataFrame, layer: int, probe: str = "G-ACT") -> go.Figure:
    fig = go.Figure(go.Heatmap(
        z=confusion.to_numpy(), x=list(confusion.columns), y=list(confusion.index), colorscale="Blues",
        text=confusion.to_numpy(), texttemplate="%{text}", colorbar=dict(title="prompts"),
        hovertemplate="true %{y}, predicted %{x}: %{z} prompt(s)<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    return _style(fig, f"{probe} confusion matrix at layer {layer}", "predicted cluster", "true cluster")


def task_confidence_lines(confidence: pd.DataFrame, task_id: str) -> go.Figure:
    fig = go.Figure()
    for probe, rows in confidence.groupby("probe", sort=False):
        fig.add_scatter(x=rows["layer"], y=rows["p_true"], mode="lines+markers", name=probe,
                        line_color=PROBE_COLORS.get(probe), customdata=rows[["true", "predicted", "confidence"]].to_numpy(),
                        hovertemplate=(f"{probe}, layer %{{x}}<br>P(true cluster %{{customdata[0]}}) = %{{y:.1%}}"
                                       "<br>predicted %{customdata[1]} at %{customdata[2]:.1%}<extra></extra>"))
    _percent_axis(fig)
    return _style(fig, f"Probe confidence in the true cluster across layers: {task_id}", "layer",
                  "P(true cluster)", layer_axis="x")


# clusters ---------------------------------------------------------------------------------------
def projection_scatter(table: pd.DataFrame, color_by: str, method: str, layer: int) -> go.Figure:
    """Points of ``RunResults.projection_table``, coloured by ``cluster``, ``category`` or ``probe``;
    the hover shows the task, its category, cluster, probe verdict and neutral prompt."""
    three_d = "z" in table
    groups = sorted(table[color_by].unique())
    fig = go.Figure()
    for i, group in enumerate(groups):
        rows = table[table[color_by] == group]
        color = (CORRECTNESS_COLORS.get(group) if color_by == "probe" else cluster_color(group) if color_by == "cluster"
                 else CLUSTER_COLORS[i % len(CLUSTER_COLORS)])
        common = dict(
            name=str(group), mode="markers", customdata=rows[["task_id", "category", "cluster", "probe", "neutral"]].to_numpy(),
            hovertemplate="<b>%{customdata[0]}</b> (%{customdata[1]})<br>%{customdata[2]}, probe %{customdata[3]}"
                          "<br>%{customdata[4]}<extra></extra>",
        )
        if three_d:
            fig.add_scatter3d(x=rows["x"], y=rows["y"], z=rows["z"], marker=dict(size=5, color=color), **common)
        else:
            fig.add_scatter(x=rows["x"], y=rows["y"], marker=dict(size=11, color=color, line=dict(width=1, color="white")), **common)
    name = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}[method]
    if three_d:
        fig.update_scenes(xaxis_title=f"{name} 1", yaxis_title=f"{name} 2", zaxis_title=f"{name} 3")
    return _style(fig, f"Difference vectors at layer {layer} ({name}), coloured by {color_by}",
                  f"{name} 1", f"{name} 2", height=520)


def cosine_heatmap(cosines: pd.DataFrame,
                   title: str = "Cosine similarity of the steering vectors, their layer's mean difference removed") -> go.Figure:
    fig = go.Figure(go.Heatmap(
        z=cosines.to_numpy(), x=list(cosines.columns), y=list(cosines.index), colorscale="RdBu", zmid=0, zmin=-1, zmax=1,
        colorbar=dict(title="cosine"), hovertemplate="%{y} vs %{x}: %{z:.2f}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(automargin=True)
    return _style(fig, title, "steering vector (layer · cluster)", "steering vector (layer · cluster)", height=560)


def silhouette_line(silhouette: pd.Series, title: str = "Cluster separation by layer (silhouette)") -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(silhouette.index), y=silhouette.to_numpy(), mode="lines+markers",
                               line_color="#444", hovertemplate="layer %{x}: silhouette %{y:.3f}<extra></extra>"))
    low = min(0.0, float(np.nanmin(silhouette.to_numpy()))) if len(silhouette) else 0.0
    fig.update_yaxes(range=[low - 0.02, 1.0])  # silhouettes run to 1: a tight axis made 0.21-0.26 look like a cliff
    return _style(fig, title, "layer", "silhouette (1: apart, 0: overlapping)", layer_axis="x")


# steering ---------------------------------------------------------------------------------------
# A layer's best sweep success as the colour behind its label (Streamlit's named background colours).
LAYER_COLOURS = ((0.9, "green"), (0.5, "orange"), (0.0, "gray"))
LAYER_LABEL_HELP = ("The colour behind a layer is its best tag success in the sweep, steered alone: green at least 90%, "
                    "orange at least 50%, grey below.")


def layer_label(layer: int, success: dict[int, float]) -> str:
    """``L12`` on the colour of its sweep success (markdown), or plain before a sweep."""
    if layer not in success:
        return f"L{layer}"
    colour = next((c for floor, c in LAYER_COLOURS if success[layer] >= floor), "gray")
    return f":{colour}-background[L{layer}]"


def sweep_grid(sweep: pd.DataFrame, chosen: dict | None = None,
               title: str = "Steering success by layer and alpha (click a cell to steer with it)") -> go.Figure:
    """The layer-by-alpha sweep as a grid of squares: a scatter, so a click selects one cell."""
    layers, alphas = np.meshgrid(sweep.index.to_numpy(), sweep.columns.to_numpy(), indexing="ij")
    values = sweep.to_numpy(dtype=float)
    fig = go.Figure(go.Scatter(
        x=alphas.ravel().astype(str), y=layers.ravel(), mode="markers+text", customdata=np.stack([layers.ravel(), alphas.ravel()], axis=1),
        marker=dict(symbol="square", size=34, color=values.ravel(), colorscale=SEQUENTIAL, cmin=0, cmax=1,
                    colorbar=dict(title="success", tickformat=".0%")),
        # Labels dark on the light (high) end of Viridis, white on its dark end; a click selects a
        # cell without fading the others or their labels.
        text=[f"{v:.0%}" for v in values.ravel()],
        textfont=dict(color=["#111111" if v >= 0.55 else "white" for v in values.ravel()], size=11),
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1)),
        hovertemplate="layer %{customdata[0]}, alpha %{customdata[1]}<br>success %{marker.color:.0%}<extra></extra>",
    ))
    if chosen:
        fig.add_annotation(text=f"chosen: layers {chosen['layers']} at alphas {[round(a, 3) for a in chosen['alphas']]}",
                           xref="paper", yref="paper", x=0, y=1.06, showarrow=False, xanchor="left")
    fig.update_layout(clickmode="event+select", dragmode=False)
    fig.update_xaxes(type="category")
    return _style(fig, title, "alpha", "layer", layer_axis="y", height=max(380, 44 * len(sweep) + 140))


# comparisons of models ------------------------------------------------------------------------------
MODEL_COLORS = qualitative.Dark2  # one colour per model of a comparison, in its order (not languages' colours)


def _model_colors(models) -> dict[str, str]:
    return {m: MODEL_COLORS[i % len(MODEL_COLORS)] for i, m in enumerate(dict.fromkeys(models))}


def bias_by_model(bias: pd.DataFrame, title: str = "Language of the answers to neutral prompts, per model") -> go.Figure:
    """Grouped bars: one group per language, one bar per model (rows of ``bias``)."""
    colors = _model_colors(bias.index)
    keys = [k for k in bias.columns if k != "none" or bias[k].fillna(0).any()]
    fig = go.Figure()
    for model, shares in bias.iterrows():
        fig.add_bar(name=model, x=[language_name(k) for k in keys], y=shares[keys].fillna(0), marker_color=colors[model],
                    text=[f"{v:.0%}" if v == v else "" for v in shares[keys]], textposition="outside",
                    hovertemplate=f"{model}<br>%{{x}}: %{{y:.1%}} of answers<extra></extra>")
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.25))
    _percent_axis(fig)
    return _style(fig, title, "language", "share of answers", height=420)


def comparison_depth_figures(probes: pd.DataFrame, sweep: pd.DataFrame) -> list[go.Figure]:
    """A comparison's figures by relative depth (``compare.Comparison.probe_depth`` and
    ``sweep_depth``): one per probe, then the sweep's (when any run has one) with its steered
    layers starred. The Compare page and the comparison report draw these."""
    figs = [depth_lines(probes[probes["probe"] == probe], "val", f"{probe}: validation accuracy by depth",
                        "validation accuracy") for probe in probes["probe"].unique()]
    if not sweep.empty:
        figs.append(depth_lines(sweep, "success", "The sweep: each layer steered alone (stars: the layers it steers)",
                                "best tag success", marked="chosen"))
    return figs


def depth_lines(table: pd.DataFrame, value: str, title: str, y_title: str, marked: str | None = None) -> go.Figure:
    """One line per model over relative depth (``table``: model, layer, depth, ``value``, and
    optionally ``low``/``high`` for a 95% band and a boolean column ``marked`` drawn as stars)."""
    fig = go.Figure()
    colors = _model_colors(table["model"])
    for model, rows in table.groupby("model", sort=False):
        color = colors[model]
        _band(fig, rows, "depth", color, model, opacity=0.12)
        fig.add_scatter(x=rows["depth"], y=rows[value], mode="lines+markers", name=model, legendgroup=model,
                        line=dict(color=color, width=2), marker=dict(size=6), customdata=rows[["layer"]].to_numpy(),
                        hovertemplate=f"{model}, layer %{{customdata[0]}} (depth %{{x:.2f}})<br>%{{y:.1%}}<extra></extra>")
        if marked:
            picked = rows[rows[marked].astype(bool)]
            fig.add_scatter(x=picked["depth"], y=picked[value], mode="markers", legendgroup=model, showlegend=False,
                            marker=dict(symbol="star", size=16, color=color, line=dict(color="#222", width=1)),
                            customdata=picked[["layer"]].to_numpy(),
                            hovertemplate=f"{model}: steers layer %{{customdata[0]}}<extra></extra>")
    _percent_axis(fig)
    fig.update_xaxes(range=[-0.02, 1.0], tickformat=".1f")
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return _style(fig, title, "relative depth (layer / layers)", y_title, height=420)
