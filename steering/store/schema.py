"""What a run stores, by name: the tables' stage keys and the tensor files (the stages themselves
are declared in ``stages.PIPELINE``). The
pipeline writes under these names and ``RunResults``, the report and the CLI summary read them,
so a name is spelled in one place."""

from __future__ import annotations

PROMPT_SETS = ("neutral", "heldout")  # the canonical neutral prompts; paraphrases no stage fitted on

# Tensor files (``tensors/<name>.safetensors``).
ACTIVATIONS = "activations"  # per prompt set: [rows, layers, d_model], and which task each row is
DELTAS = "deltas"  # "deltas" [tasks, layers, d_model] and "mean_vectors" [layers, d_model]
CLUSTERS = "clusters"  # "vectors" [layers, K, d_model], "labels" [layers, tasks]
DEFAULT_METHOD = "gact"  # what a spec steers as when it names none; what the pages, the report and the CLI show first
ACT = "act"  # faithful ACT's fitted state ("act_*") and, optionally, MLP means for the neuron baseline
CONDITION = "condition"  # the fitted ``condition.PromptCondition``: does a prompt leave the language open?
CONDITION_LAYER = "condition_layer"  # in "probe": the layer the condition reads (value: its validation accuracy)
EXPLICIT = "explicit_"  # in ACTIVATIONS: ``explicit_<lang>``, the tasks asked in another language
REFINED = "gact_refined"  # the refined probe with the gains (and offsets) learned alongside it


def probe_tensors(method: str) -> str:
    """The fitted probe of ``method``: ``gact`` or ``sklearn`` (the ablation)."""
    return f"probe_{method}"


def projection_tensors(method: str, dims: int, seed: int) -> str:
    return f"projection_{method}_{dims}d_seed{seed}"


# Stage keys of the metrics and generations tables besides the stages themselves.
CHOSEN_ALPHA = "chosen_alpha"  # in "sweep": one row per steered layer (value: its alpha); in "act": ACT's strength
SELECTION_GOAL = 0.95  # a selection's chosen share below this is said in words (the summary, the report)
CHOSEN_SCHEDULE = "chosen_schedule"  # in "sweep": per selecting method (``extra``), its schedule; value: its margin
BASE_ALPHA = "base_alpha"  # in "sweep": per layer, the grid's alpha before any method's margin
SPEC = "spec"  # in an evaluation: the steering spec and method its answers used (in ``extra``)
TARGET_ANSWERS = "target_answers"  # generations: the model's answers to the explicit target prompts


# A metric row: (name, layer or None, value, extra dict or None). Names composed of parts are
# built by the functions below, by the stage that writes them and every reader alike.
Row = tuple[str, "int | None", float, "dict | None"]

# An evaluation's measures of each condition (baseline, steered), with the label tables show.
EVAL_MEASURES = {"fenced_target": "fenced target", "success": "…and parses", "compiles": "compiles (of fenced)",
                 "compiling": "compiling (of all)", "no_code_block": "no code block", "cut_off": "cut off",
                 "repeated_ngrams": "repeated 4-grams"}
# One line per measure: shown as help beside every table that shows it (pages, report, CLI).
MEASURE_DEFINITIONS = {
    "tag_success": "tag success (sweep): the share of prompts whose most likely language tag, after a forced opening "
                   "fence, is the target's, with one layer steered at one alpha",
    "fenced_target": "fenced target: the answer holds a fenced code block clearly in the target language (its tag, "
                     "or a clear parse)",
    "success": "…and parses: that block also parses without syntax errors (tree-sitter)",
    "compiles": "compiles (of fenced): of the fenced-target answers, the share whose code compiles (g++, javac)",
    "compiling": "compiling (of all): of all answers, the share with fenced target code that compiles",
    "no_code_block": "no code block: the answer has no fenced code block",
    "cut_off": "cut off: the answer reached the token budget before it ended",
    "repeated_ngrams": "repeated 4-grams: the share of the code's token 4-grams that repeat an earlier one (loops)",
}


def measure_help(label: str) -> str | None:
    """The definition of the measure a table column is labelled ``label`` (``EVAL_MEASURES``), if any."""
    return next((MEASURE_DEFINITIONS[k] for k, v in EVAL_MEASURES.items() if v == label), None)
# An evaluation's answers: unsteered, the two references (the task asked in the target language;
# the neutral prompt with the answer forced to open the target's fence), and steered.
CONDITIONS = ("baseline", "asked", "prefilled", "steered")
REFERENCES = {"asked": "asked explicitly", "prefilled": "prefilled fence"}
BUDGET = "budget"  # in an evaluation: the token budget every condition had (``extra``: how it was set)


def share_metric(language: str) -> str:
    """In ``bias``: the share of sampled answers in ``language`` (or ``none``)."""
    return f"share_{language}"


def accuracy_metric(probe: str, split: str) -> str:
    """In ``probe``/``refine``: a probe's accuracy per layer; ``split``: ``train``, ``val``,
    ``off_val`` (on the "off" samples), or ``val_ci`` (its interval in ``extra``)."""
    return f"{probe}_{split}_accuracy" if split != "val_ci" else f"{probe}_val_ci"


def causal_metric(choice: str) -> str:
    """In ``sweep``: success per layer when steering with the cluster ``choice`` picks
    (``probe``, ``random``, ``oracle``)."""
    return f"causal_{choice}"


def refine_metric(when: str, split: str) -> str:
    """In ``refine``: the fenced-tag success ``before``/``after`` on the ``train``/``val`` tasks."""
    return f"success_{when}_{split}"


def eval_metric(condition: str, measure: str) -> str:
    """In an evaluation: an ``EVAL_MEASURES`` measure of a condition."""
    return f"{condition}_{measure}"


def eval_share_metric(condition: str, verdict: str) -> str:
    """In an evaluation: the share of a condition's answers with a verdict (``evaluation.VERDICTS``)."""
    return f"{condition}_share_{verdict}"


MIN_VALIDATION_TASKS = 5  # fewer validation tasks than this: probe accuracies are flagged as not meaningful


def validation_tasks(record: dict) -> int | None:
    """About how many tasks a run's probes are validated on, from its ``settings.json`` record."""
    tasks = record.get("prompt_set", {}).get("tasks")
    return None if tasks is None else round(tasks * record.get("pipeline", {}).get("val_fraction", 0.25))


def eval_stage(method: str, prompt_set: str = "neutral") -> str:
    """Where an evaluation's metrics and answers are stored: ``eval_<method>`` for the neutral
    prompts, ``heldout_<method>`` for the held-out phrasings."""
    if prompt_set not in PROMPT_SETS:
        raise ValueError(f"unknown prompt set {prompt_set!r}; expected one of {', '.join(PROMPT_SETS)}")
    return f"{'eval' if prompt_set == 'neutral' else 'heldout'}_{method}"


def is_evaluation(stage: str) -> bool:
    return stage.startswith(tuple(eval_stage("", s) for s in PROMPT_SETS))


# Does steering yield to a prompt that names another language? (``stages.evaluate.explicit``)
YIELD_CONDITIONS = {"unsteered": "unsteered", "plain": "steered", "conditional": "steered where the prompt leaves "
                                                                                 "the language open"}


CONDITIONAL_SHARE = "conditional_fenced_target"  # in ``explicit_stage``: per evaluated set (``extra``)


def yield_metric(condition: str) -> str:
    """In ``explicit_stage``: the share of answers to another language's explicit prompt that keep it."""
    return f"keep_{condition}"


def explicit_stage(method: str) -> str:
    """Where ``method``'s answers to the tasks asked in the other languages are stored, with the
    share that keeps the asked language (``keep_<condition>``) and the condition's reading of the
    evaluated sets (``conditional_fenced_target``, ``condition_steers``, per set in ``extra``)."""
    return f"explicit_{method}"


def baseline_stage(prompt_set: str, condition: str = "baseline") -> str:
    """The unsteered answers every method of a prompt set is compared with (``condition``:
    ``baseline``, or a reference, ``asked``/``prefilled``), generated once per run."""
    return f"{condition}_{prompt_set}"


def notes_stage(stage: str) -> str:
    """Remarks a stage left (what it could not do), one metrics row each, text in ``extra``."""
    return f"notes_{stage}"
