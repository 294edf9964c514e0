"""Probes: how well each layer's probe reads the right steering vector, and where it fails."""

import streamlit as st

from views.common import PLOT_CONFIG, require_run
from steering.pipeline.probe_tables import PROBES, REFERENCES, probe_comparison_table
from steering.reports import figures
from steering.store.schema import MIN_VALIDATION_TASKS, validation_tasks



def validation_warning(results) -> None:
    n_val = validation_tasks(results.settings)
    if n_val is not None and n_val < MIN_VALIDATION_TASKS:
        st.warning(f"This run has {len(results.prompts)} tasks, so its probes are validated on about {n_val}: the "
                   "accuracies below are not meaningful (0% or 100% by chance). Use at least 20 tasks.")


def accuracy_panels(results) -> None:
    """Two panels: G-ACT's probe and ACT's heads answer different questions, so their figures are not comparable."""
    accuracy = results.probe_accuracy()
    act_label = REFERENCES["act"]
    act = accuracy[accuracy["probe"] == act_label]
    gact = accuracy[accuracy["probe"] != act_label]
    with st.container(border=True):
        st.markdown("**G-ACT's probe: which cluster vector fits this prompt**",
                    help="Validation accuracy: the share of held-out tasks' neutral prompts whose cluster (of K, from "
                         "the task's target-minus-neutral difference) the per-layer probe predicts.")
        means = results.probe_means()
        cells = st.columns(2)
        cells[0].metric("Mean validation accuracy", f"{means.get(PROBES['gact'], float('nan')):.1%}")
        cells[1].metric("Majority class", f"{means.get(REFERENCES['majority'], float('nan')):.1%}",
                        help="What always guessing the most common cluster scores: the floor a probe must beat.")
        st.plotly_chart(figures.probe_accuracy_lines(gact, title="G-ACT probe: validation accuracy per layer"),
                        config=PLOT_CONFIG)
    if not act.empty:
        with st.container(border=True):
            st.markdown("**ACT's heads: is this answer in the target language**",
                        help="Validation accuracy of each layer's best attention head telling a target-language answer "
                             "from another language's (two classes): ACT's own metric, a different task from G-ACT's.")
            st.metric("Mean validation accuracy (best head per layer)", f"{means[act_label]:.1%}")
            st.plotly_chart(figures.probe_accuracy_lines(act, title="ACT: best head's validation accuracy per layer"),
                            config=PLOT_CONFIG)
    st.caption("Bands: bootstrap 95% intervals (validation tasks resampled). Dotted: the majority class and a probe "
               "trained on shuffled labels.")


def paper_headline(results) -> None:
    """G-ACT's probe against ACT's best head, layer by layer, as the paper reports them."""
    comparison = results.probe_comparison()
    if comparison.empty:
        return
    with st.container(border=True):
        st.markdown("**The G-ACT paper's headline: G-ACT's probe against ACT's, layer by layer**",
                    help="The paper reports G-ACT's per-layer probe accuracy against ACT's. The two answer different "
                         "questions (above), so read the difference as the paper does, not as one probe being better "
                         "at the same task. Interval: each side's validation tasks resampled on their own.")
        mean = comparison.iloc[-1]
        cells = st.columns(3)
        cells[0].metric("G-ACT, mean over layers", f"{mean['gact']:.1%}")
        cells[1].metric("ACT's best head, mean", f"{mean['act']:.1%}")
        cells[2].metric("Difference (95% interval)", f"{mean['difference']:+.1%}",
                        help=f"{mean['low']:+.1%} to {mean['high']:+.1%}")
        st.plotly_chart(figures.probe_difference_lines(comparison), config=PLOT_CONFIG)
        st.dataframe(probe_comparison_table(comparison), hide_index=True)


def causal_test(results) -> None:
    causal = results.causal()
    if causal.empty:
        return
    st.plotly_chart(figures.causal_lines(causal), config=PLOT_CONFIG)
    st.caption("Each layer alone, at the sweep's alpha where its success is nearest 50%, steered with the cluster "
               "vector the probe picks for each prompt, a random cluster's, or the prompt's own cluster's (oracle).")


def diagnostics(results) -> tuple[str, str, int]:
    """The probe, the prompts and the layer to inspect; recall by layer and cluster, and the confusion matrix."""
    left, right, split_col = st.columns([1, 1, 1])
    probe = left.radio("Probe", ["gact", "sklearn"], format_func=PROBES.get, horizontal=True)
    split = split_col.radio("Prompts", ["validation", "all"], horizontal=True,
                            help="Validation: the held-out tasks only. All: training tasks too.")
    layer = right.select_slider("Layer", options=list(range(results.n_layers)), value=results.n_layers // 2)
    st.plotly_chart(figures.class_accuracy_heatmap(results.class_accuracy(probe, split),
                                                   title=f"{PROBES[probe]} recall by layer and cluster ({split})"),
                    config=PLOT_CONFIG)
    st.plotly_chart(figures.confusion_heatmap(results.confusion(layer, probe, split), layer, PROBES[probe]), config=PLOT_CONFIG)
    return probe, split, layer


def failures(results, probe: str, split: str, layer: int) -> None:
    """The prompts the probe got wrong at ``layer``; a clicked one's prompts, confidence and answers."""
    st.subheader(f"Failures at layer {layer}")
    wrong = results.failures(layer, probe, split)
    if wrong.empty:
        st.success(f"The {PROBES[probe]} probe classifies every {'held-out ' if split == 'validation' else ''}"
                   f"neutral prompt correctly at layer {layer}.")
        return
    event = st.dataframe(
        wrong, hide_index=True, on_select="rerun", selection_mode="single-row", key=f"failures_{probe}_{layer}_{split}",
        column_config={"confidence": st.column_config.ProgressColumn("confidence", format="percent", min_value=0, max_value=1),
                       "p_true": st.column_config.ProgressColumn("P(true)", format="percent", min_value=0, max_value=1)},
    )
    rows = event.selection.rows
    task_id = wrong.iloc[rows[0] if rows else 0]["id"]
    if not rows:
        st.caption("Click a row to inspect another failure.")
    task_detail(results, task_id)
    task_answers(results, task_id)


def task_detail(results, task_id: str) -> None:
    task = results.prompts.task(task_id)
    st.markdown(f"#### {task_id} · {task.category}")
    st.markdown(f"**Neutral prompt:** {task.neutral}")
    for lang, text in task.prompts.items():
        st.markdown(f"**{figures.language_name(lang)} prompt:** {text}")
    st.plotly_chart(figures.task_confidence_lines(results.task_confidence(task_id), task_id), config=PLOT_CONFIG)


def task_answers(results, task_id: str) -> None:
    """Every evaluation answer to the task, the steered ones first."""
    answers = results.task_answers(task_id)
    if answers.empty:
        return
    missed = answers[(answers["condition"] == "steered") & ~answers["on target"]]
    st.markdown(f"#### What steering wrote for {task_id}")
    st.caption(f"Every evaluation answer to this task, the steered ones first ({len(missed)} of them missed the target: "
               "not fenced target code that parses). The probe's pick at this layer decides which cluster vector "
               "G-ACT adds, so a probe failure here can show up as a wrong steered answer.")
    shown = st.dataframe(answers.drop(columns=["text", "prompt"]), hide_index=True, on_select="rerun",
                         selection_mode="single-row", key=f"answers_{task_id}")
    picked = answers.iloc[shown.selection.rows[0] if shown.selection.rows else 0]
    st.markdown(f"**{picked['condition']} · {picked['method']} · {picked['prompt set']}:** {picked['prompt']}")
    st.code(picked["text"], language=picked["language"] or "text", wrap_lines=True)


def main() -> None:
    st.title("Probes")
    results = require_run("probe")
    validation_warning(results)
    accuracy_panels(results)
    paper_headline(results)
    causal_test(results)
    failures(results, *diagnostics(results))


main()
