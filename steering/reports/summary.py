"""The command line's tables of a run: the same tables the dashboard draws, read by ``RunResults``."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.text import Text
from rich.table import Table

from ..code.languages import LANGUAGES
from ..methods.registry import DEFAULT_METHOD, label
from ..pipeline.probe_tables import PROBES, REFERENCES, probe_comparison_table
from ..pipeline.results import RunResults, format_interval, yielding_table
from ..store.schema import CONDITIONS, EVAL_MEASURES, SELECTION_GOAL, MEASURE_DEFINITIONS, REFERENCES as REFERENCE_LABELS, accuracy_metric, MIN_VALIDATION_TASKS, PROMPT_SETS, validation_tasks

# Markup off: text from files and users (paths, model names, vector metadata) is printed as it is,
# never read as "[red]" styling; styled words are rich Text.
console = Console(markup=False)
SET_WORDS = {"neutral": "neutral prompts", "heldout": "held-out phrasings"}


def table(title: str, columns: list[str], rows: list[list]) -> None:
    out = Table(title=title)
    for i, column in enumerate(columns):
        out.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        out.add_row(*[f"{v:.1%}" if isinstance(v, float) else str(v) for v in row])
    console.print(out)


def _bias(results: RunResults) -> None:
    no_block = results.metric_values("bias", "no_code_block")
    if not no_block:  # the bias stage always stores it
        return
    shares = results.bias_shares()
    rows = [[LANGUAGES[lang].display if lang in LANGUAGES else "undetected", share] for lang, share in shares.items()]
    rows.append(["no code block", no_block[None]])
    table("Bias: language of sampled answers to the neutral prompts", ["", "share"], rows)


def _probes(results: RunResults) -> None:
    accuracy = results.probe_accuracy()
    if accuracy.empty or PROBES["gact"] not in set(accuracy["probe"]):
        return
    val = accuracy.pivot(index="layer", columns="probe", values="val")
    gact = accuracy[accuracy["probe"] == PROBES["gact"]].set_index("layer")
    shown = [PROBES["gact"], REFERENCES["majority"], REFERENCES["shuffled"], PROBES["sklearn"], REFERENCES["act"],
             PROBES["refined"]]
    shown = [c for c in shown if c in val.columns]
    interval = lambda l: f"{gact.low[l]:.0%}-{gact.high[l]:.0%}" if np.isfinite(gact.low[l]) else ""  # noqa: E731
    rows = [[layer, val.at[layer, shown[0]], interval(layer), *[val.at[layer, c] for c in shown[1:]]] for layer in val.index]
    table("Probe validation accuracy per layer (G-ACT: cluster task; ACT: its best head, good vs bad answer)",
          ["layer", shown[0], "95% CI", *shown[1:]], rows)
    n_val = validation_tasks(results.settings)
    if n_val is not None and n_val < MIN_VALIDATION_TASKS:
        console.print(Text("warning: ", style="yellow") + Text(f"about {n_val} validation task(s): these accuracies "
                                                               "are not meaningful; use at least 20 tasks"), highlight=False)
    if REFERENCES["act"] in val.columns:
        means, early = results.probe_means(), results.probe_means(first=len(val) // 2 or 1)
        g, a = PROBES["gact"], REFERENCES["act"]
        console.print(f"mean validation accuracy: G-ACT {means[g]:.1%}, ACT best head {means[a]:.1%}; first half "
                      f"of the layers: G-ACT {early[g]:.1%}, ACT {early[a]:.1%} (different "
                      "tasks: G-ACT picks one of K clusters, ACT tells a good answer from a bad one)")
    comparison = results.probe_comparison()
    if not comparison.empty:
        shown = probe_comparison_table(comparison)
        table("The G-ACT paper's headline: G-ACT's probe against ACT's best head, per layer (difference with a 95% "
              "interval, each side's validation tasks resampled)", list(shown.columns), shown.values.tolist())
    off = [v for v in results.metric_values("probe", accuracy_metric("gact", "off_val")).values() if v is not None and v == v]
    if off:
        console.print(f"'off' class (inside target-language answers), mean validation accuracy: G-ACT {np.mean(off):.1%}")


def print_summary(results: RunResults) -> None:
    """The run's tables: bias, probe accuracy per layer, the causal test, the chosen layers,
    refinement, and every method evaluated on each prompt set."""
    _bias(results)
    _probes(results)
    causal = results.causal()
    if not causal.empty:
        table("Causal test per layer: steering with the probe's cluster vs a random one vs the prompt's own (oracle)",
              ["layer", "probe", "random", "oracle"],
              [[layer, *[causal.at[layer, c] for c in ("probe", "random", "oracle")]] for layer in causal.index])
    if results.chosen:
        console.print(f"steered layers (from the sweep): {results.chosen['layers']} with alphas {results.chosen['alphas']}")
    refinement = results.refinement()
    if refinement.notna().any().any():
        table("Gradient refinement (fenced tag, greedy)", ["split", "before", "after"],
              [[split, *refinement.loc[split]] for split in refinement.index])
    for method, choice in results.selection().items():
        console.print(f"selection for {method}: {choice['why']}", highlight=False)
        if choice["success"] < SELECTION_GOAL:
            console.print(f"note: {label(method)}'s chosen steering opens the {LANGUAGES[results.target].display} fence "
                          f"in {choice['success']:.0%} of the training paraphrases, below {SELECTION_GOAL:.0%}: on "
                          "phrasings like those (prose first) it often does not steer", highlight=False)
    for prompt_set in PROMPT_SETS:
        _evaluation(results, prompt_set)
    _yielding(results)


def _yielding(results: RunResults) -> None:
    """Does steering override a prompt that names another language, and does its conditional form yield?"""
    shown = yielding_table(results.yielding())
    if shown.empty:
        return
    groups = [("Prompts that name another language (95% intervals over tasks)", "keeps")]
    groups += [(f"Conditional steering on the {SET_WORDS[p]}: fenced target", f"{p}:") for p in PROMPT_SETS]
    for title, start in groups:
        columns = ["method", *[c for c in shown.columns if c.startswith(start)]]
        if len(columns) > 1:
            table(title, columns, shown[columns].values.tolist())


def _evaluation(results: RunResults, prompt_set: str) -> None:
    methods = results.display_table(prompt_set)
    if methods.empty:
        return
    budget = results.budget(prompt_set)
    rule = "the asked answers' 95th percentile, " if budget and budget.get("rule") == "asked" else ""
    words = f"{budget['tokens']} tokens ({rule}cap {budget.get('cap')})" if budget else "its budget"
    table(f"Steering toward the target on the {SET_WORDS[prompt_set]}: same seeds, {words}; 95% intervals over tasks",
          ["", *methods.columns], [[m, *row] for m, row in methods.iterrows()])
    definitions()
    ratios = results.comparison_table(prompt_set)
    if not ratios.empty:
        table(f"Quality as a share of asking explicitly ({SET_WORDS[prompt_set]}; paired 95% intervals)",
              ["", *[EVAL_MEASURES[k] for k in ratios.columns]],
              [[m, *[format_interval(c, percent=False) for c in row]] for m, row in ratios.iterrows()])
    quality = results.headline_measures()[1]
    families = results.family_table(prompt_set, quality)
    if len(families.columns) > 2:
        table(f"{EVAL_MEASURES[quality]} per task family ({SET_WORDS[prompt_set]})", ["family", *families.columns],
              [[f, int(row.iloc[0]), *row.iloc[1:]] for f, row in families.iterrows()])
    first = DEFAULT_METHOD
    for other in [m for m in results.evaluated_methods(prompt_set) if m != first]:
        against = results.comparison_table(prompt_set, other, "difference", ("fenced_target", quality))
        if first in against.index:
            table(f"{label(first)} minus {label(other)}, paired ({SET_WORDS[prompt_set]}); * the interval excludes 0",
                  ["", *[EVAL_MEASURES[k] for k in against.columns]],
                  [[label(first), *[format_interval(c) + ("*" if c[3] else "") for c in against.loc[first]]]])


def definitions() -> None:
    """What each measure means, under a table that shows them."""
    console.print("\n".join(f"  {d}" for k, d in MEASURE_DEFINITIONS.items() if k != "tag_success"), style="dim",
                  markup=False, highlight=False)


def print_one_off(results: list[dict], settings: dict) -> None:
    """Evaluations with one-off settings: shown, never stored in the run."""
    def cells(summary: dict) -> list:
        return [summary[k] if summary.get(k) is not None else "n/a" for k in EVAL_MEASURES]

    rows = []
    for result in results:
        rows += [[f"{REFERENCE_LABELS.get(c, c) if c != 'steered' else result['method']} ({result['prompt_set']})",
                  *cells(result[c])] for c in CONDITIONS if c in result]
    table("Steering with one-off settings (not stored in the run)", ["method", *EVAL_MEASURES.values()], rows)
    definitions()
    console.print(f"one-off settings {settings}: the results above are not stored; start a new run to keep them")


def print_comparison(comparison, prompt_set: str | None = None, method: str = DEFAULT_METHOD, task: str | None = None) -> None:
    """A ``compare.Comparison``'s tables (the Compare page's): the models, their bias, what
    transfers by relative depth, each evaluation beside its own model's references, and one
    task's stored answers."""
    from .compare import NOT_RUN

    frame = lambda title, t: table(title, ["", *map(str, t.columns)], [[i, *r] for i, r in t.iterrows()])  # noqa: E731
    frame("Models compared", comparison.models().set_index("model").astype(str))
    bias = comparison.bias()
    frame("Bias: language of sampled answers to the neutral prompts", bias.map(lambda v: NOT_RUN if v != v else v))
    layers = comparison.by_layer()
    for model in comparison.labels:
        frame(f"{model}: probe accuracy (95% interval) and the sweep, layer by layer",
              layers[layers["model"] == model].drop(columns="model").set_index("layer"))
    frame("Where each model's probe forms the decision, and which layers its sweep steers (layer, relative depth)",
          comparison.transfer().set_index("model"))
    sets = comparison.prompt_sets()
    for which in [prompt_set] if prompt_set else sets:
        evaluation, budgets = comparison.evaluation(which), comparison.budgets(which)
        for model in evaluation.columns.get_level_values("model").unique():
            budget = budgets[model]
            words = f"budget {budget['tokens']} tokens" if budget else NOT_RUN
            frame(f"{model} on the {SET_WORDS[which]} ({words}; 95% intervals over tasks)", evaluation[model])
    if not sets:
        console.print("none of these runs has been through the eval stage: no evaluation table", highlight=False)
    if task and sets:
        which = prompt_set or sets[-1]
        for model, answers in comparison.answers(task, which, method).items():
            if not answers:
                console.print(Text(f"\n{model}: not run", style="bold"), highlight=False)
            for condition, row in answers.items():
                console.print(Text(f"\n{model} · {condition} · {row['language'] or 'no language'} · "
                                   f"{row['n_tokens']} tokens", style="bold"), highlight=False)
                console.print(row["text"], highlight=False, soft_wrap=True)
