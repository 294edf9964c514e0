"""``PipelineSettings``: every choice the paper leaves open, each declared once.

A field's metadata says how it is checked (``check``), its help text, and whether (and under
which flag) the command line offers it: ``cli="new"`` only when a run starts, ``cli="tune"`` on
every stage command. The CLI's flags, their help and the validation are all derived from here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from ..code.languages import check_language
from ..code.prompts import PromptSet
from ..core.limits import check as check_limit
from ..core.schedules import SCHEDULES
from ..engine.forward import format_prompt
from ..engine.generation import STOP_RULES
from ..engine.models import HOOK_POINTS, check_layers
from ..methods.clustering import MODES
from ..methods.neurons import NEURON_SCORINGS
from ..methods.projection import PROJECTIONS
from ..methods.registry import METHODS
from ..methods.steer import ALPHA_UNITS, OFF_CLASS, SELECTIONS
from ..store.schema import PROMPT_SETS


def _positive(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _non_negative(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def _fraction(name, value):
    if not 0 < value < 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")


def _share(name, value):
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be above 0 and at most 1, got {value}")


def _finite(name, values):
    for value in (values if isinstance(values, (tuple, list)) else () if values is None else (values,)):
        if not math.isfinite(float(value)):
            raise ValueError(f"alpha must be a finite number, got {value}")


def _at_least_zero(name, value):
    if not (math.isfinite(float(value)) and value >= 0):
        raise ValueError(f"{name} must be 0 (greedy) or more, got {value}")


def _not_negative(name, value):
    if not (math.isfinite(float(value)) and value >= 0):
        raise ValueError(f"{name} must be a finite number of 0 or more, got {value}")


def _one_of(choices, what: str | None = None, optional: bool = False):
    def check(name, value):
        if value is None and optional:
            return
        unknown = sorted(set(value) - set(choices)) if isinstance(value, (tuple, list)) else \
            ([] if value in choices else [value])
        if unknown:
            shown = ", ".join(map(str, unknown)) if isinstance(value, (tuple, list)) else repr(value)
            raise ValueError(f"unknown {what or name} {shown}; expected one of {', '.join(choices)}")
    check.choices = tuple(choices)
    return check


def _method_alpha(method: str):
    """Each alpha within ``method``'s own limit (``Method.alpha_limit``), as the Steer page and
    ``--alpha`` check it."""
    def check(name, value):
        for alpha in value if isinstance(value, (tuple, list)) else () if value is None else (value,):
            METHODS[method].check_alpha(alpha, name)
    return check


def _k(name, value):
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"K must be a positive integer, got {value!r}")


def _seed(name, value):
    check_limit("seed", value, name)


def _of_type(name: str, annotation: str, value) -> None:
    """The check every setting gets from its type, before its own: bool is not an int, numbers
    are finite, a grid (tuple) is not empty and holds numbers or strings."""
    kinds = [k.strip() for k in annotation.split("|")]
    if value is None and "None" in kinds:
        return
    kind = kinds[0]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {"bool": isinstance(value, bool), "int": number and isinstance(value, int), "str": isinstance(value, str),
          "float": number, "tuple": isinstance(value, (tuple, list))}.get(kind, True)
    if not ok:
        raise ValueError(f"{name} must be {'a' if kind != 'int' else 'an'} {kind}, got {value!r}")
    if kind == "float" and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if kind == "tuple":
        if not value:
            raise ValueError(f"{name} must not be empty")
        for item in value:  # finiteness is the field's own check (``_finite``), which names it
            if isinstance(item, bool) or not isinstance(item, (int, float, str)):
                raise ValueError(f"{name} must hold numbers or names, got {item!r}")


def setting(default, help: str, check=None, cli: str | None = None, flag: str | None = None, same: bool = False):
    """A field of ``PipelineSettings`` with what the CLI and validation derive from it. ``same``:
    runs compared side by side must agree on it (it changes what their measures mean)."""
    return field(default=default, metadata={"help": help, "check": check, "cli": cli, "flag": flag, "same": same})


@dataclass
class PipelineSettings:
    """Every choice the paper leaves open, with Steerscope's default (see the README)."""

    target: str = setting("cpp", "language to steer towards: python, cpp, java, julia", cli="new", same=True)
    bias_samples: int = setting(4, "sampled answers per neutral prompt when measuring the model's preference", _positive)
    bias_temperature: float = setting(1.0, "the model's own distribution, as the paper samples it")
    bias_max_new_tokens: int = setting(320, "token budget of each bias answer (it stops once its fence names the "
                                            "language, under bias_stop 'tag')", _positive)
    bias_stop: str = setting("tag", "bias answers stop once their fence names the language ('block': whole answers)",
                             _one_of(STOP_RULES, "bias_stop"))
    contrast: str = setting("neutral", "differences are target minus this: neutral, or a language", cli="new", same=True)
    hook_point: str = setting("resid_post", "where activations are read and steered", _one_of(HOOK_POINTS, "hook point"),
                              cli="new", same=True)
    position: str = setting("last", "prompt position read: last token or mean", _one_of(("last", "mean")), cli="new", same=True)
    answer_prefix: str = setting("```", "text appended after the generation prompt before reading (the answer's opening "
                                        "fence; '' for none)", cli="new", same=True)
    adaptive: bool = setting(True, "probes learn an 'off' class inside target-language answers (--no-adaptive: steer at "
                                   "full strength everywhere)", cli="new", flag="--no-adaptive", same=True)
    off_per_answer: int = setting(4, "'off' samples read inside each target-language answer")
    off_max_new_tokens: int = setting(64, "the answers 'off' samples are read in stop after this many tokens", _positive)
    k: int = setting(3, "clusters, i.e. steering vectors per layer", _k, cli="tune", same=True)
    cluster_mode: str = setting("concat", "one clustering for all layers (concat: labels compare across layers), or "
                                          "each layer alone (per_layer)", _one_of(MODES, "clustering mode"), cli="tune", same=True)
    val_fraction: float = setting(0.25, "share of tasks held out to validate the probes", _fraction, same=True)
    seed: int = setting(0, "seed for splits, clustering and sampling", _seed, cli="tune", same=True)
    probe_paraphrases: int = setting(1, "per task, paraphrases used as probe samples; the rest are held out from every "
                                        "stage", _non_negative, same=True)
    probe_lr: float = setting(0.05, "G-ACT probe learning rate")
    probe_weight_decay: float = setting(1e-2, "G-ACT probe weight decay")
    probe_epochs: int = setting(1000, "G-ACT probe epochs")
    selection: str = setting("soft", "G-ACT mixes the cluster vectors by probe probability (soft) or takes the top one "
                                     "(argmax: an ablation)", _one_of(SELECTIONS, "selection"), cli="tune")
    off_class: str | None = setting(None, "G-ACT's \"off\" class: its probability weights the zero vector, so "
                                          "steering fades where the probe reads the answer as on target (weight); or "
                                          "it only gates the 'gated' schedule, and the mix is over the cluster vectors "
                                          "(gate); default: the sweep's selection tries both",
                                    _one_of(OFF_CLASS, "off_class", optional=True), cli="tune")
    sklearn_C: float = setting(1.0, "the G-ACT probe refitted with scikit-learn's LogisticRegression (an ablation)")
    act_clusters: int = setting(3, "ACT: k-means clusters of per-question directions (3 in the paper)", _non_negative)
    act_heads: int = setting(24, "ACT: heads kept per cluster, by validation accuracy", _non_negative)
    act_alpha: float | None = setting(None, "ACT's strength in head-std units (default: the best of act_alphas by the "
                                            "fenced tag)", _method_alpha("act"), cli="tune")
    act_alphas: tuple = setting((1.0, 2.0, 4.0, 8.0, 12.0, 15.0), "ACT's strengths tried (12-15 is the paper's range)",
                                _method_alpha("act"))
    act_beta: float = setting(0.0, "ACT: floor of the adaptive factor (1 + beta - p)")
    act_C: float = setting(1.0, "ACT: inverse regularisation of its per-head logistic regressions")
    sweep_alphas: tuple = setting((0.25, 0.5, 0.75, 1.0), "alphas the sweep tries on every layer", _finite)
    steer_layers: tuple | None = setting(None, "layers to steer (default: the best ones from the sweep)", cli="tune",
                                         flag="--layers")
    steer_alphas: tuple | None = setting(None, "one alpha, or one per layer (default: from the sweep)", _finite,
                                         cli="tune", flag="--alpha")
    n_best_layers: int = setting(2, "layers the sweep chooses to steer together", _positive)
    schedule: str | None = setting(None, "when steering acts: all (every token), window (the first --window tokens), "
                                         "fence (until the fence line), gated (while the probe's p(target) < --gate); "
                                         "default: the sweep's choice", _one_of(SCHEDULES, "schedule", optional=True),
                                   cli="tune")
    schedule_window: int = setting(8, "generated tokens the window schedule steers", _positive, cli="tune", flag="--window")
    gate: float = setting(0.5, "the gated schedule steers while the probe's p(target) is below this", _fraction, cli="tune")
    conditional: bool = setting(False, "steer only prompts that leave the language open: a prompt the run's condition "
                                       "reads as asking for another language is answered unsteered (CAST-like)",
                                cli="tune", flag="--conditional")
    alpha_unit: str = setting("absolute", "alphas as given (absolute), or multiples of the layer's mean residual norm "
                                          "(norm; mean difference and G-ACT)", _one_of(ALPHA_UNITS, "alpha unit"),
                              cli="tune")
    sweep_schedules: tuple = setting(("all", "window", "fence", "gated"), "schedules the sweep's selection tries ('gated' "
                                                                          "only where the probes have an 'off' class)",
                                     _one_of(SCHEDULES, "schedule(s)"))
    sweep_margins: tuple = setting((1.0, 1.5, 2.0), "multiples of the smallest alphas that steer the held-in phrasings, "
                                                    "tried by the selection (a margin for phrasings it never sees); past "
                                                    "the largest, the margin doubles while the share still rises, up to "
                                                    "the method's alpha limit", _finite)
    select_quality_drop: float = setting(0.15, "a margin above sweep_margins is tried only while its code's mean "
                                               "log-probability as the asked answer stays within this many nats per "
                                               "token of the asked answers' own", _not_negative)
    select_tokens: int = setting(32, "tokens of code after the fence's tag that the selection scores in each held-in continuation",
                                 _positive)
    select_prose: int = setting(128, "tokens the selection lets a held-in continuation write before its fence "
                                     "(instruct models may open with prose, and choose the language there)", _positive)
    select_screen: float = setting(1 / 3, "share of the held-in paraphrases every selection candidate is read on first; "
                                          "only those within select_screen_tolerance of their method's best share there "
                                          "are read on the rest (1: every candidate on every paraphrase)", _share)
    select_screen_tolerance: float = setting(0.15, "how far below its method's best screened share a candidate may be "
                                                   "and still be read on the rest of the paraphrases", _share)
    neuron_factor: float = setting(10.0, "the neuron method scales the attributed neuron by this, not by alpha", _finite)
    neuron_scoring: str = setting("paper", "neuron baseline: the paper's W_up*sigmoid(W_gate) via the LM head (paper), "
                                           "W_out rows (output), or activation on target answers (activation)",
                                  _one_of(NEURON_SCORINGS, "neuron_scoring"), cli="tune")
    refine_steps: int = setting(30, "gradient refinement steps", cli="tune")
    refine_lr: float = setting(0.05, "refinement learning rate")
    refine_prox: float = setting(0.1, "refinement's proximal term")
    refine_fluency: float = setting(1.0, "weight of the KL to the unsteered next-token distribution inside the code")
    refine_gains: bool = setting(True, "learn a per-layer gain on alpha")
    refine_offsets: bool = setting(False, "learn per-cluster offsets of the steering vectors")
    refine_online: bool = setting(False, "refine one prompt at a time, as the paper does", cli="tune", flag="--online")
    online_steps: int = setting(3, "method gact_online: refinement steps per prompt, during generation", _non_negative)
    eval_samples: int = setting(1, "evaluation samples per task", _positive, cli="tune", flag="--samples", same=True)
    eval_temperature: float = setting(0.0, "evaluation sampling temperature, 0 for greedy (steered and baseline answers "
                                           "then differ only by the steering)", _at_least_zero, cli="tune", same=True)
    eval_sets: tuple = setting(("neutral", "heldout"), "what the run's eval stage answers", _one_of(PROMPT_SETS, "prompt set(s)"))
    compare_methods: tuple = setting(("act", "mean_diff"), "methods a run evaluates beside G-ACT, on the held-out "
                                                         "phrasings only (where the methods are ranked)",
                                     _one_of(tuple(METHODS), "method(s)"))
    max_new_tokens: int = setting(1024, "answer budget in tokens: the cap of the 'asked' budget, which the asked "
                                        "answers decode to before their 95th percentile sets it", _positive)
    eval_budget: str = setting("asked", "evaluation budget: the asked-explicitly answers' 95th percentile of length, "
                                        "rounded up to 16 tokens, at most max_new_tokens (asked); or max_new_tokens (fixed)",
                               _one_of(("asked", "fixed"), "eval_budget"), cli="tune", same=True)
    batch_size: int = setting(48, "prompts per forward pass; on CPU a decoding step of 48 costs under twice one of 16",
                              _positive)
    projections: tuple = setting(("pca", "umap"), "projections precomputed when the run finishes",
                                 _one_of(PROJECTIONS, "projection(s)"))

    def __post_init__(self):
        """The languages become ``Language`` values where they enter: checked once, not at every use."""
        if isinstance(self.target, str):  # another type is refused by ``validate``, with the others
            self.target = check_language(self.target)
        if isinstance(self.contrast, str) and self.contrast != "neutral":
            self.contrast = check_language(self.contrast)

    @classmethod
    def from_json(cls, values: dict) -> "PipelineSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})  # JSON has no tuples

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def validate(self, model, prompts: PromptSet) -> None:
        """Each field's own check, then what depends on the model and the prompts: found now,
        before anything runs or is written."""
        for f in fields(self):
            _of_type(f.name, str(f.type), getattr(self, f.name))
            if f.metadata.get("check"):
                f.metadata["check"](f.name, getattr(self, f.name))
        self.target = check_language(self.target)
        if self.contrast != "neutral":
            self.contrast = check_language(self.contrast)
            if self.contrast == self.target:
                raise ValueError("the contrast language must differ from the target")
            prompts.require(self.contrast)
        prompts.require(self.target)
        if self.k > len(prompts):
            raise ValueError(f"K={self.k} is larger than the number of tasks ({len(prompts)})")
        if self.steer_layers is not None:
            check_layers(self.steer_layers, model.n_layers)
            if self.steer_alphas is not None and len(self.steer_alphas) not in (1, len(self.steer_layers)):
                raise ValueError("give one alpha, or one alpha per steered layer")
        self._check_lengths(model, prompts)

    def _check_lengths(self, model, prompts: PromptSet) -> None:
        """Every prompt (neutral, explicit, paraphrase), formatted and with the answer's opening,
        must leave room in the model's context: found now, not mid-run after writing."""
        tok = model.tokenizer
        opening = len(tok(self.answer_prefix, add_special_tokens=False)["input_ids"]) if self.answer_prefix else 0
        for task in prompts:
            for text in (task.neutral, *task.prompts.values(), *task.paraphrases):
                n = len(tok(format_prompt(tok, text, model.instruction), add_special_tokens=False)["input_ids"]) + opening
                if n >= model.facts.n_ctx:
                    raise ValueError(f"task {task.id!r} has a prompt of {n} tokens (formatted, with the answer's "
                                     f"opening); this model's context is {model.facts.n_ctx} tokens")


def compared_settings() -> tuple[str, ...]:
    """The settings two runs must share to be compared side by side (declared ``same=True``)."""
    return tuple(f.name for f in fields(PipelineSettings) if f.metadata.get("same"))


def cli_settings(group: str) -> list:
    """The fields the command line offers in ``group`` (``new`` or ``tune``), in order."""
    return [f for f in fields(PipelineSettings) if f.metadata.get("cli") == group]
