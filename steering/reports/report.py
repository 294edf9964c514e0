"""A self-contained HTML report of a run: plotly.js is embedded once, so the file opens offline."""

from __future__ import annotations

import html
from datetime import datetime, timezone

from ..methods.registry import DEFAULT_METHOD
from ..pipeline.probe_tables import probe_comparison_table
from ..pipeline.results import RunResults, yielding_table
from ..store.schema import EVAL_MEASURES, MEASURE_DEFINITIONS, eval_stage
from . import figures
from .compare import NOT_RUN, PROBE_ACCURACY_GOAL, Comparison

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }
h1 { margin-bottom: 0; } .muted { color: #666; }
table.facts td { padding: 2px 12px 2px 0; }
.pair { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px; margin-bottom: 24px; }
pre { background: #f6f8fa; padding: 10px; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12px; border-radius: 6px; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; }
"""


def _facts_table(facts: dict) -> str:
    rows = "".join(f"<tr><td class='muted'>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    return f"<table class='facts'>{rows}</table>"


def _answer(title: str, language: str | None, parses, text: str) -> str:
    verdict = "parses" if parses else "does not parse"
    return (f"<div><b>{html.escape(title)}</b> · {html.escape(figures.language_name(language))} · {verdict}"
            f"<pre>{html.escape(text or '')}</pre></div>")


def build_report(results: RunResults, method: str = DEFAULT_METHOD, layer: int | None = None, projection: str = "pca",
                 n_examples: int = 3) -> str:
    """The report as one HTML string: model, prompt set, bias, probe accuracy, projection and
    side-by-side examples of ``method`` (sections of stages the run lacks are left out)."""
    model = results.settings.get("model", {})
    prompt_set = results.settings.get("prompt_set", {})
    sections: list[tuple[str, object]] = []
    if results.has("bias"):
        sections.append(("Bias", figures.language_shares_bar(results.bias_shares())))
        sections.append(("", figures.bias_heatmap(results.bias_matrix())))
    if results.has("probe"):
        sections.append(("Probes", figures.probe_accuracy_lines(results.probe_accuracy())))
        comparison = results.probe_comparison()
        if not comparison.empty:
            sections.append(("", figures.probe_difference_lines(comparison)))
    if results.has("cluster"):
        layer = results.n_layers // 2 if layer is None else layer
        points = results.projection(projection)
        sections.append(("Clusters", figures.projection_scatter(results.projection_table(points, layer), "cluster", projection, layer)))
        sections.append(("", figures.silhouette_line(results.silhouette())))
    if results.has("sweep"):
        sections.append(("Steering", figures.sweep_grid(results.sweep(), results.chosen,
                                                        title="Steering success by layer and alpha")))
        causal = results.causal()
        if not causal.empty:
            sections.append(("", figures.causal_lines(causal)))
    for which_set, which in (("neutral", "neutral prompts"), ("heldout", "held-out phrasings")):
        if results.has(eval_stage(method, which_set)):
            sections.append(("", figures.shares_before_after(results.eval_shares(method, which_set),
                                                             title=f"What the answers count as, {which} ({method})")))
    parts, first = [], True
    for which_set, which in (("neutral", "neutral prompts"), ("heldout", "held-out phrasings")):
        table = results.display_table(which_set)
        table_measures = [k for k, label in EVAL_MEASURES.items() if label in table.columns]
        if not table.empty:
            parts.append(f"<h2>Methods on the {which}</h2><p class='muted'>Same seeds and token budget for every row; "
                         "95% bootstrap intervals over tasks. Asked explicitly: the task's own prompt in the target "
                         "language; prefilled fence: the answer forced to open the target's fence.</p>"
                         + table.to_html() + "<ul class='muted'>" + "".join(
                             f"<li>{html.escape(MEASURE_DEFINITIONS[k])}</li>" for k in table_measures) + "</ul>")
    comparison = results.probe_comparison()
    if not comparison.empty:
        parts.append("<h2>G-ACT's probe against ACT's, per layer</h2><p class='muted'>The G-ACT paper's headline: "
                     "validation accuracy per layer, and the difference with a 95% interval (each side's validation "
                     "tasks resampled on their own).</p>" + probe_comparison_table(comparison).to_html(index=False))
    yielding = yielding_table(results.yielding())
    if not yielding.empty:
        parts.append("<h2>Prompts that name another language</h2><p class='muted'>The tasks asked explicitly in each "
                     "other language: the share of answers that keep the asked language, unsteered, steered, and "
                     "steered only where the prompt leaves the language open (conditional); then, on the open "
                     "prompts, conditional steering's fenced-target share beside plain steering's.</p>"
                     + yielding.to_html(index=False))
    for heading, fig in sections:
        if heading:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=first, config={"displaylogo": False}))
        first = False
    examples = results.examples(method, n_examples)
    if examples:
        parts.append(f"<h2>Side-by-side examples ({html.escape(method)})</h2>")
        for ex in examples:
            parts.append(f"<p class='muted'>{html.escape(ex['task_id'])}: {html.escape(ex['prompt_baseline'])}</p><div class='pair'>"
                         + _answer("baseline", ex["language_baseline"], ex["parses_baseline"], ex["text_baseline"])
                         + _answer("steered", ex["language_steered"], ex["parses_steered"], ex["text_steered"]) + "</div>")
    chosen = results.chosen or {}
    facts = {"model": model.get("name"), "architecture": model.get("architecture"), "layers": model.get("n_layers"),
             "d_model": model.get("d_model"), "prompt set": f"{prompt_set.get('name')} ({prompt_set.get('tasks')} tasks)",
             "target language": figures.language_name(results.target), "steered layers": chosen.get("layers", "—"),
             "alphas": chosen.get("alphas", "—")}
    return _page(f"Steerscope report: {model.get('name')}", "Steerscope report", f"run {results.run.dir.name}",
                 _facts_table(facts) + "".join(parts))


def _page(title: str, heading: str, byline: str, body: str) -> str:
    """One self-contained HTML page: ``title`` in the tab, ``heading`` and ``byline`` (with the
    time it was built) above ``body`` (HTML)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    byline = f"{html.escape(byline)} · {stamp}" if byline else stamp
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>"
            f"</head><body><h1>{html.escape(heading)}</h1><p class='muted'>{byline}</p>{body}</body></html>")


def build_comparison_report(comparison: Comparison, prompt_set: str | None = None, method: str = DEFAULT_METHOD,
                            task: str | None = None) -> str:
    """A comparison of runs as one offline HTML page: the Compare page's tables and figures, and
    one task's stored answers from every model."""
    figs = [figures.bias_by_model(comparison.bias()),
            *figures.comparison_depth_figures(comparison.probe_depth(), comparison.sweep_depth())]
    parts = [comparison.models().to_html(index=False),
             f"<h2>What transfers</h2><p class='muted'>First layer where each probe reaches {PROBE_ACCURACY_GOAL:.0%} "
             "validation accuracy, and the sweep's layers; depth is layer / number of layers.</p>",
             comparison.transfer().to_html(index=False)]
    prompt_set = prompt_set or (comparison.prompt_sets() or [None])[-1]
    if prompt_set:
        parts.append(f"<h2>Each method against its own model's references ({html.escape(prompt_set)})</h2>"
                     "<p class='muted'>95% bootstrap intervals over tasks; the ratio is paired over tasks.</p>"
                     + comparison.evaluation(prompt_set).to_html())
        tasks = comparison.tasks(prompt_set, method)
        task = task or (tasks[0] if tasks else None)
        if task:
            parts.append(f"<h2>Task {html.escape(task)}: every model's answers ({html.escape(method)})</h2>")
            for model, answers in comparison.answers(task, prompt_set, method).items():
                parts.append(f"<h3>{html.escape(model)}</h3><div class='pair'>" + "".join(
                    _answer(c, a["language"], a["parses"], a["text"]) for c, a in answers.items()) + "</div>"
                    if answers else f"<h3>{html.escape(model)}</h3><p class='muted'>{NOT_RUN}</p>")
    for i, fig in enumerate(figs):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False}))
    title = "Steerscope comparison: " + ", ".join(comparison.labels)
    return _page(title, title, "", "".join(parts))
