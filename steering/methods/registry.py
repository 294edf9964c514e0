"""Every steering method, declared once: ``METHODS[name]`` says its label, the stages it needs,
how its steerer is built from what a run learned, its alpha limit and starting alpha, and the
preset it adds to the Steer page. The CLI's choices, the evaluation, the Steer page, the report
and the artifacts all read this table; adding a method is one ``register`` call plus its class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..store.schema import ACT, DEFAULT_METHOD  # noqa: F401 (DEFAULT_METHOD: read with the registry)
from .steer import OFF_CLASS, GactSteerer, MeanDiffSteerer, NeuronSteerer, Steerer, SteeringSpec

G_ACT_STAGES = ("extract", "cluster", "probe", "sweep")  # what a spec chosen by the sweep needs


@dataclass(frozen=True)
class Method:
    """One steering method (or an evaluation variant of one: ``steers_as`` names the
    ``SteeringSpec`` method its steerer uses).

    ``build(learned, spec, settings, model)`` makes its steerer from a run's ``Learned`` state;
    ``stages(settings)`` are the stages that state comes from (a default spec included);
    ``needs(settings)``, those that steering with layers of one's own choosing needs (None: not
    offered on the Steer page). ``own_choice(learned, settings)`` gives the method's own
    ``(layers, alphas)`` when the sweep's should not be used; ``factor(settings)`` a fixed alpha;
    ``answers`` replaces plain steered generation in the evaluation; ``preset(results)`` names
    and makes a layer -> alpha preset for the Steer page. ``selection`` names the method whose
    candidates the sweep's selection steers to choose this one's margin and schedule (None: no
    selection; every token, at the alphas given). ``scale`` says in words what its alpha measures."""

    name: str
    label: str
    build: Callable
    stages: Callable
    needs: Callable | None = None
    steers_as: str = ""
    alpha_limit: float = 8.0
    start_alpha: Callable = lambda settings, results: 0.5
    own_choice: Callable | None = None
    factor: Callable | None = None
    answers: Callable | None = None
    preset: Callable | None = None
    selection: str | None = None
    variants: Callable | None = None
    scale: str = "alpha multiplies the layer's steering vector: 1 adds it once"
    # The ``Steerer`` class its specs steer with (a variant: its ``steers_as``'s), or a function that
    # imports and returns it on use (ACT's brings scikit-learn, which start-up need not pay for).
    steerer_type: type | Callable | None = None
    # Why a llama.cpp control vector (a constant per block) only approximates its steering; None:
    # exact. A method that does not say is taken as approximate.
    export_note: str | None = "its additions, which change with each activation, as their mean"
    residual_vectors: Callable | None = None  # (learned) -> [layers, ..., d_model]: what alpha scales, if a residual vector
    fitted: Callable = lambda learned: True  # whether the run learned the state of its own it steers with

    def __post_init__(self):
        object.__setattr__(self, "steers_as", self.steers_as or self.name)
        if self.steers_as == self.name and self.steerer_type is None:
            raise ValueError(f"method {self.name!r} steers with specs of its own: give its steerer_type (a Steerer class)")

    def spec(self, learned, settings) -> SteeringSpec:
        """The spec an evaluation uses: the layers and alphas given in the settings, else the
        method's own choice, else the sweep's, times the margin the selection chose for it."""
        layers, alphas = self.base(learned, settings)
        choice = learned.selection(self.selection) if self.selection else None
        if choice and settings.steer_alphas is None and self.factor is None:
            alphas = tuple(a * choice["margin"] for a in alphas)
        return self.make_spec(layers, alphas, settings, learned)

    def base(self, learned, settings) -> tuple[list[int], tuple[float, ...]]:
        """Layers and alphas before the selection's margin: given, the method's own, or the grid's."""
        layers, alphas = settings.steer_layers, settings.steer_alphas and tuple(map(self.check_alpha, settings.steer_alphas))
        if layers is None and self.own_choice is not None:
            layers, own = self.own_choice(learned, settings)
            alphas = alphas or own
        if layers is None:
            chosen = learned.base_alphas()
            if not chosen:
                raise ValueError("no layers chosen yet: run the sweep stage, or give --layers")
            layers, alphas = list(chosen), alphas or list(chosen.values())
        if self.factor is not None and settings.steer_alphas is None:
            alphas = (self.factor(settings),)
        alphas = tuple(alphas or (1.0,))
        return list(layers), alphas * len(layers) if len(alphas) == 1 else alphas

    def chosen_schedule(self, learned, settings) -> str:
        """The settings' schedule, else the selection's choice for this method, else every token."""
        choice = learned.selection(self.selection) if self.selection and learned is not None else None
        return settings.schedule or (choice["schedule"] if choice else "all")

    def make_spec(self, layers, alphas, settings, learned=None) -> SteeringSpec:
        """A spec of this method on ``layers`` at ``alphas``, on ``chosen_schedule`` and the
        settings' alpha unit (where the method has units)."""
        schedule = self.chosen_schedule(learned, settings)
        unit = settings.alpha_unit if self.steers_as in ("mean_diff", "gact") else "absolute"
        return SteeringSpec(tuple(layers), tuple(alphas), method=self.steers_as, hook_point=settings.hook_point,
                            schedule=schedule, window=settings.schedule_window, gate=settings.gate, alpha_unit=unit,
                            conditional=settings.conditional)

    def steerer(self, learned, settings, model, spec: SteeringSpec | None = None):
        """The steerer of ``spec`` (default: ``spec(learned, settings)``), with the run's condition
        when the spec is conditional."""
        steerer = self.build(learned, spec or self.spec(learned, settings), settings, model)
        if steerer.spec.conditional:
            steerer.condition = learned.condition(settings)
        return steerer

    def options(self, settings) -> list[dict]:
        """The settings the sweep's selection tries for this method besides margin and schedule,
        each a dict of setting values (``[{}]``: none); ``chosen_options`` reads its choice back."""
        return self.variants(settings) if self.variants else [{}]

    def chosen_options(self, learned, settings) -> dict:
        """The settings given, else the selection's choice among ``options`` (else their first)."""
        choice = (learned.selection(self.selection) if self.selection and learned is not None else None) or {}
        first = self.options(settings)[0]
        return {k: getattr(settings, k) if getattr(settings, k) is not None else choice.get(k, first.get(k))
                for k in first}

    def check_alpha(self, alpha: float, source: str = "alpha") -> float:
        """``alpha`` if it is a finite number within the method's interactive limit (beyond it the
        embedded model's answers are noise, and typing 1e9 should not freeze a demo); ``source``
        names the input in the refusal."""
        limit = self.alpha_limit
        if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and math.isfinite(alpha)
                and abs(alpha) <= limit):
            raise ValueError(f"{source} {alpha} is out of range for {self.label}: use a value in [-{limit:g}, {limit:g}]")
        return float(alpha)


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    METHODS[method.name] = method
    return method


def method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name]


def label(name: str) -> str:
    """How the pages name method ``name`` ("G-ACT", "mean difference"); other row names (the
    baseline, the references) as they are."""
    return METHODS[name].label if name in METHODS else name


def alpha_limits() -> dict[str, float]:
    """Each registered method's alpha limit (``docs/limits.md`` lists them)."""
    return {name: m.alpha_limit for name, m in METHODS.items()}


def residual_vectors(name: str, learned):
    """What method ``name``'s alpha multiplies in the residual stream, or None (a per-head or per-neuron method)."""
    vectors = METHODS[method(name).steers_as].residual_vectors
    return None if vectors is None else vectors(learned)


def export_note(name: str) -> str | None:
    """Why a spec of method ``name`` exports to llama.cpp only approximately (None: exactly)."""
    return METHODS[method(name).steers_as].export_note


def steerer_class(name: str) -> type[Steerer]:
    """The ``Steerer`` class that steers a spec of method ``name`` (the one check of a spec's method)."""
    if name not in steering_methods():
        raise ValueError(f"unknown steering method {name!r}; expected one of {', '.join(steering_methods())}")
    found = METHODS[name].steerer_type
    return found if isinstance(found, type) else found()


def steering_methods() -> list[str]:
    """The methods one can steer with (not evaluation variants)."""
    return [m.name for m in METHODS.values() if m.steers_as == m.name]


def check_alpha(alpha: float, name: str) -> float:
    return method(name).check_alpha(alpha)


def presets(n_layers: int, chosen: dict | None, alpha: float = 0.5, extra: dict | None = None) -> dict[str, dict[int, float]]:
    """Layer -> alpha settings a demo starts from: the sweep's choice, the first third of the
    layers (where the paper finds language best encoded) at ``alpha`` each, the methods' own
    (``extra``), or nothing."""
    early = range(max(1, n_layers // 3))
    out = {
        "best layers from sweep": dict(zip(chosen["layers"], chosen["alphas"])) if chosen else {},
        "early layers": {layer: alpha for layer in early},
        **{name: setting for name, setting in (extra or {}).items() if setting},
    }
    out["all off"] = {}
    return out


def run_presets(results) -> dict[str, dict[int, float]]:
    """``presets`` of an open run (``results.RunResults``), with every method's own."""
    extra = dict(m.preset(results) for m in METHODS.values() if m.preset is not None)
    return presets(results.n_layers, results.chosen, extra=extra)


# --- the methods ------------------------------------------------------------------------------

def residual_extras(learned, spec, settings) -> dict:
    """What a residual steerer's unit and schedule need from the run: the layers' residual norm
    over the steering vector's norm (``alpha_unit="norm"``), and the G-ACT probe's "off" class
    as the gate (``schedule="gated"``)."""
    extras = {}
    if spec.alpha_unit == "norm":
        from ..store.schema import ACTIVATIONS

        residual = learned.tensors(ACTIVATIONS)["neutral"].float().norm(dim=-1).mean(0)  # [layers]
        extras["unit_scale"] = residual / learned.mean_vectors().float().norm(dim=-1).clamp_min(1e-8)
    if spec.schedule == "gated":
        if not settings.adaptive:
            raise ValueError("the gated schedule reads the probe's 'off' class, which a run with --no-adaptive has not")
        extras["gate_probe"] = learned.probe("gact")
    return extras


def _gact(refined: bool):
    def build(learned, spec, settings, model) -> GactSteerer:
        tensors = learned.refined() if refined else None
        if tensors is not None:  # the refined probe and what refinement learned with it
            from .probes import GactProbe

            probe = GactProbe.from_state_tensors(tensors)
            extra = {k: tensors[k] for k in ("log_gains", "offsets") if k in tensors}
        else:
            probe, extra = learned.probe("gact"), {}
        extra.update({k: v for k, v in residual_extras(learned, spec, settings).items() if k != "gate_probe"})
        off_class = METHODS["gact_unrefined"].chosen_options(learned, settings)["off_class"]
        return GactSteerer(spec, learned.cluster_vectors(), probe, selection=settings.selection, off_class=off_class,
                           **extra)
    return build


def _online_answers(steerer, model, prompts, settings, config, advance):
    from .refine import online_answers

    s = settings
    return online_answers(steerer, model, prompts, s.target, config, steps=s.online_steps, on_answers=advance,
                          lr=s.refine_lr, prox=s.refine_prox, fluency=s.refine_fluency, gains=s.refine_gains,
                          offsets=s.refine_offsets)


def _act_steerer():
    from .act import ActSteerer  # on use: act brings scikit-learn (not for the CLI's or a page's start-up)

    return ActSteerer


def _act(learned, spec, settings, model):
    return _act_steerer()(spec, learned.act(), beta=settings.act_beta)


def _act_choice(learned, settings):
    layers = learned.act().layers_  # first: an unfitted ACT says why
    return layers, (settings.act_alpha if settings.act_alpha is not None else learned.act_alpha(),)


def _neurons(learned, spec, settings, model):
    from .neurons import active_neurons, attribute_neurons

    if settings.neuron_scoring == "activation":
        tensors = learned.tensors(ACT)
        if "mlp_good_mean" not in tensors:
            raise ValueError("no neuron activations in this run: run the 'act' stage with neuron_scoring 'activation'")
        good, bad = tensors["mlp_good_mean"][None], tensors["mlp_bad_mean"][None]
        neurons = {layer: active_neurons(good, bad, layers=[layer], top_n=1)[0].neuron for layer in spec.layers}
    else:
        neurons = {layer: attribute_neurons(model, settings.target, layers=[layer], scoring=settings.neuron_scoring,
                                            top_n=1)[0].neuron for layer in spec.layers}
    return NeuronSteerer(spec, neurons)


def _off_classes(settings) -> list[dict]:
    """G-ACT's "off" class as given, else both ways (a run without the class has only one)."""
    if settings.off_class is not None or not settings.adaptive:
        return [{"off_class": settings.off_class or OFF_CLASS[0]}]
    return [{"off_class": off} for off in OFF_CLASS]


def _fixed(*stages):
    return lambda settings: stages


register(Method("mean_diff", "mean difference",
                lambda learned, spec, s, model: MeanDiffSteerer(spec, learned.mean_vectors(), **residual_extras(learned, spec, s)),
                stages=_fixed(*G_ACT_STAGES), needs=_fixed("extract"), selection="mean_diff", steerer_type=MeanDiffSteerer,
                export_note=None, residual_vectors=lambda learned: learned.mean_vectors(),
                scale="alpha multiplies the layer's mean difference vector (target-language prompt minus neutral "
                      "prompt): 1 adds it once"))
register(Method("act", "ACT (per-head, adaptive)", _act, stages=_fixed("extract", "act"), needs=_fixed("act"),
                alpha_limit=40.0, own_choice=_act_choice, steerer_type=_act_steerer, fitted=lambda learned: learned.has(ACT),
                export_note="ACT's per-head additions, gated by each head's probe, as their mean through the output "
                            "projection",  # ACT's alpha multiplies a head's projected std (paper: 12-15)
                start_alpha=lambda settings, results: max(results.act_choice.values(), default=0.5),
                preset=lambda results: ("ACT's heads", results.act_choice), selection="act",
                scale="alpha is in units of each kept head's activation spread (standard deviation) along its "
                      "direction; the paper uses 12-15"))
register(Method("gact", "G-ACT", _gact(refined=True), stages=_fixed(*G_ACT_STAGES, "refine"), needs=_fixed("probe"),
                selection="gact_unrefined", steerer_type=GactSteerer, residual_vectors=lambda learned: learned.cluster_vectors(),
                export_note="G-ACT's probe-weighted mixture of cluster vectors, which changes with each activation, as "
                            "its mean",
                scale="alpha multiplies the probe-weighted mix of the layer's cluster vectors: 1 adds it once"))
register(Method("gact_unrefined", "G-ACT before refinement", _gact(refined=False), stages=_fixed(*G_ACT_STAGES),
                steers_as="gact", selection="gact_unrefined", variants=_off_classes))
register(Method("gact_online", "G-ACT refined online", _gact(refined=True), stages=_fixed(*G_ACT_STAGES, "refine"),
                steers_as="gact", answers=_online_answers, selection="gact_unrefined"))
register(Method("neuron", "neuron", _neurons, alpha_limit=100.0, steerer_type=NeuronSteerer,  # alpha: the neuron's factor
                export_note="the neuron's scaled activation, which changes with each token, as its mean through the down "
                            "projection",
                stages=lambda s: (*G_ACT_STAGES, "act") if s.neuron_scoring == "activation" else G_ACT_STAGES,
                needs=lambda s: ("act",) if s.neuron_scoring == "activation" else (),
                factor=lambda settings: settings.neuron_factor, scale="the factor the neuron's activation is multiplied by",
                start_alpha=lambda settings, results: settings.neuron_factor))
