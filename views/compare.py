"""Compare: finished runs of different models side by side, on a relative-depth axis. The runs are
in the address (``?runs=a&runs=b``), so a comparison is a link. Everything shown is read from the
runs (``steering.reports.compare``); nothing is decoded."""

import streamlit as st

from views.common import PLOT_CONFIG, RUNS_ROOT, results_of
from steering.core.errors import one_line
from steering.methods.registry import DEFAULT_METHOD, label as method_label
from steering.pipeline.results import list_runs
from steering.reports import figures
from steering.reports.compare import PROBE_ACCURACY_GOAL, Comparison, ComparisonError
from steering.reports.report import build_comparison_report

SET_NAMES = {"neutral": "neutral prompts", "heldout": "held-out phrasings"}


def pick_runs() -> Comparison | None:
    """The runs picker (bound to the address), and the comparison of the runs picked."""
    names = [p.name for p in list_runs(RUNS_ROOT)]
    picked = st.multiselect("Runs to compare", names, key="runs", bind="query-params",
                            placeholder="Pick two or more runs with the same prompt set and target",
                            help="Runs of the runs folder. They must share the prompt set and the settings that change "
                                 "what a measure means (target, contrast, hook point, seed, K, decoding).")
    if len(picked) < 2:
        st.info("Pick two or more finished runs: each model's answers to the same question appear side by side, "
                "layers placed by relative depth (layer / number of layers) so that 18, 24 and 28 layers line up.")
        return None
    try:
        return Comparison.of([results_of(RUNS_ROOT / name) for name in picked])
    except ComparisonError as err:
        st.error(f"These runs cannot be compared: {one_line(err, hide_paths=True)}")
        return None


def models_and_bias(comparison: Comparison) -> None:
    st.subheader("The models and their bias")
    st.dataframe(comparison.models(), hide_index=True,
                 column_config={"stage time (min)": st.column_config.NumberColumn(format="%.1f")})
    st.plotly_chart(figures.bias_by_model(comparison.bias()), config=PLOT_CONFIG)


def depth(comparison: Comparison) -> None:
    """Probe accuracy and the sweep, each model a line over relative depth; what transfers."""
    st.subheader("Where the language decision forms")
    probes = comparison.probe_depth()
    figs = figures.comparison_depth_figures(probes, comparison.sweep_depth())
    n_probes = probes["probe"].nunique()
    for cell, fig in zip(st.columns(2), figs[:n_probes]):  # the probes side by side, the sweep below
        cell.plotly_chart(fig, config=PLOT_CONFIG)
    for fig in figs[n_probes:]:
        st.plotly_chart(fig, config=PLOT_CONFIG)
    st.caption(f"Bands: bootstrap 95% intervals over validation tasks. The table gives the first layer whose probe "
               f"reaches {PROBE_ACCURACY_GOAL:.0%} and the sweep's layers, each with its relative depth.")
    st.dataframe(comparison.transfer(), hide_index=True)


def evaluation(comparison: Comparison) -> str | None:
    """Each method against its own model's references, a column group per model; returns the set shown."""
    st.subheader("Steering against each model's own asking")
    sets = comparison.prompt_sets()
    if not sets:
        st.info("None of these runs has been through the eval stage yet.")
        return None
    shown = st.radio("Prompts", sets, index=len(sets) - 1, format_func=SET_NAMES.get, horizontal=True, key="compare_set")
    budgets = ", ".join(f"{m}: {b['tokens']}" for m, b in comparison.budgets(shown).items() if b)
    st.caption(f"Same seeds within a model; each model's token budget is set by its own asked answers ({budgets}). "
               "95% bootstrap intervals over tasks; the ratio to asking is paired over tasks.")
    st.dataframe(comparison.evaluation(shown))
    return shown


def answers(comparison: Comparison, prompt_set: str) -> None:
    """One task's stored answers from every model: baseline and steered, asking one click away."""
    st.subheader("One task, every model")
    left, right = st.columns(2)
    method = left.selectbox("Method", comparison.methods(prompt_set), format_func=method_label, key="compare_method")
    tasks = comparison.tasks(prompt_set, method)
    if not tasks:
        st.info(f"No task has {method_label(method)}'s answers in every run that evaluated it.")
        return
    task = right.selectbox("Task", tasks, key="compare_task")
    for cell, (model, rows) in zip(st.columns(len(comparison.runs)), comparison.answers(task, prompt_set, method).items()):
        cell.markdown(f"**{model}**")
        if not rows:
            cell.caption(f"Not run: this run has no {method_label(method)} evaluation of the {SET_NAMES[prompt_set]}.")
        for condition, title in (("baseline", "Baseline"), ("steered", f"Steered · {method_label(method)}")):
            if condition in rows:
                row = rows[condition]
                cell.caption(f"{title} · {figures.language_name(row['language'])} · {row['n_tokens']} tokens")
                cell.code(row["text"], language=row["language"] or "text", wrap_lines=True, height=320)
        if "asked" in rows:
            with cell.expander("Asked explicitly"):
                st.code(rows["asked"]["text"], language=rows["asked"]["language"] or "text", wrap_lines=True, height=320)


def report(comparison: Comparison, prompt_set: str | None) -> None:
    """The comparison as one offline HTML file."""
    if st.button("Build the comparison report"):
        with st.spinner("Building the report…"):
            html = build_comparison_report(comparison, prompt_set, st.session_state.get("compare_method", DEFAULT_METHOD),
                                           st.session_state.get("compare_task"))
        st.download_button("Download comparison.html", html, file_name="steerscope-comparison.html", mime="text/html")


st.title("Compare")
comparison = pick_runs()
if comparison is not None:
    models_and_bias(comparison)
    depth(comparison)
    shown = evaluation(comparison)
    if shown:
        answers(comparison, shown)
    report(comparison, shown)
