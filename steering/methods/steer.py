"""Steering injections: on the chosen layers only, ``h_l += alpha_l * sum_k p_k(h_l) * v_{l,k}``.

A ``SteeringSpec`` says where and how strongly (layers, alpha per layer, method, positions); a
``Steerer`` of the method's class adds what was learned (vectors, probes, or a neuron) and makes
the TransformerLens hooks. Hooks are only ever attached through ``steering.engine.hooks.thread_hooks``: for one call, in one
thread, removed when the call ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..core.schedules import SCHEDULES, StepControl
from ..engine.models import HOOK_POINTS, check_layers
from ..store.schema import DEFAULT_METHOD

POSITIONS = ("generated", "all")
ALPHA_UNITS = ("absolute", "norm")  # norm: alpha times the layer's mean residual norm over the steering vector's
SELECTIONS = ("soft", "argmax")  # G-ACT's mix of cluster vectors: probe-weighted, or the probe's top cluster only
OFF_CLASS = ("weight", "gate")  # G-ACT's "off" class weights the zero vector, or only gates (see ``direction``)


@dataclass(frozen=True)
class SteeringSpec:
    """Which layers are on, alpha per layer, the method, and the positions steered.

    ``positions="generated"`` (the default) steers from the last prompt position (which
    predicts the first answer token) on; ``"all"`` also steers the prompt. ``schedule``
    (``SCHEDULES``) says for how long: ``window`` generated tokens, until the fence line, or
    while a probe says the target is not yet chosen (below ``gate``). ``alpha_unit="norm"``
    reads each alpha as a multiple of the layer's mean residual norm, so that alphas compare
    across layers and models.
    """

    layers: tuple[int, ...]
    alphas: tuple[float, ...]
    method: str = DEFAULT_METHOD
    positions: str = "generated"
    hook_point: str = "resid_post"
    schedule: str = "all"
    window: int = 8
    gate: float = 0.5
    alpha_unit: str = "absolute"
    conditional: bool = False

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(int(layer) for layer in self.layers))
        object.__setattr__(self, "alphas", tuple(float(a) for a in self.alphas))
        # The method's name is checked where a spec becomes a steerer (``registry.steerer_class``).
        for what, value, choices in (("positions", self.positions, POSITIONS),
                                     ("hook point", self.hook_point, HOOK_POINTS), ("schedule", self.schedule, SCHEDULES),
                                     ("alpha unit", self.alpha_unit, ALPHA_UNITS)):
            if value not in choices:
                raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}")
        if not (isinstance(self.window, int) and not isinstance(self.window, bool) and self.window >= 1):
            raise ValueError(f"window must be a positive number of tokens, got {self.window!r}")
        if not isinstance(self.conditional, bool):
            raise ValueError(f"conditional must be true or false, got {self.conditional!r}")
        if not (isinstance(self.gate, (int, float)) and 0 < self.gate < 1):
            raise ValueError(f"gate must be a probability between 0 and 1, got {self.gate!r}")
        if len(self.alphas) != len(self.layers):
            raise ValueError(f"{len(self.layers)} layers but {len(self.alphas)} alphas: give one alpha per layer")
        if any(layer < 0 for layer in self.layers):
            raise ValueError(f"layers are numbered from 0; got {list(self.layers)}")
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"a layer is listed twice in {list(self.layers)}")
        for alpha in self.alphas:
            if not math.isfinite(alpha):
                raise ValueError(f"alpha must be a finite number, got {alpha}")

    @classmethod
    def uniform(cls, layers, alpha: float, **kwargs) -> "SteeringSpec":
        layers = tuple(layers)
        return cls(layers, (alpha,) * len(layers), **kwargs)

    def to_json(self) -> dict:
        return {"layers": list(self.layers), "alphas": list(self.alphas), "method": self.method,
                "positions": self.positions, "hook_point": self.hook_point, "schedule": self.schedule,
                "window": self.window, "gate": self.gate, "alpha_unit": self.alpha_unit,
                "conditional": self.conditional}

    @classmethod
    def from_json(cls, values: dict) -> "SteeringSpec":
        defaults = {f: getattr(cls, f) for f in ("method", "positions", "hook_point", "schedule", "window", "gate",
                                                  "alpha_unit", "conditional")}
        return cls(tuple(values["layers"]), tuple(values["alphas"]), **{k: values.get(k, v) for k, v in defaults.items()})

    def describe(self) -> str:
        """The schedule in words, e.g. "first 8 tokens"."""
        when = {"all": "every token", "window": f"first {self.window} tokens", "fence": "until the fence line",
                "gated": f"while p(target) < {self.gate:g}"}[self.schedule]
        return when + (", where the prompt leaves the language open" if self.conditional else "")




def first_steered(spec: SteeringSpec, activation: torch.Tensor, start: int | None) -> int:
    """The first position of ``activation[batch, pos, ...]`` to steer: 0 for ``positions="all"``;
    else ``start``, or (``None``) the last position of the call, which is the last prompt token
    at prefill and the one new token at every KV-cached step after it."""
    if spec.positions == "all":
        return 0
    return activation.shape[1] - 1 if start is None else start


def schedule_weights(spec: SteeringSpec, control: StepControl | None, steered: torch.Tensor,
                     target_probability=None) -> torch.Tensor | None:
    """Per position, 1 where ``spec``'s schedule steers ``steered[batch, pos, ...]`` (the
    positions from ``first_steered`` on) and 0 where it does not, as ``[batch, pos, 1]``; None
    when it steers them all. ``target_probability(steered) -> [batch, pos]`` is the gate's probe."""
    if spec.schedule == "all" and (control is None or bool(control.steered.all())):
        return None
    batch, positions = steered.shape[:2]
    weights = torch.ones(batch, positions, device=steered.device)
    if control is not None:
        weights = weights * control.rows().to(steered.device)[:, None]
    if spec.schedule == "window":
        index = (control.step if control is not None else 0) + torch.arange(positions, device=steered.device)
        weights = weights * (index < spec.window)
    elif spec.schedule == "gated":
        if target_probability is None:
            raise ValueError(f"the gated schedule needs a probe of the target; method {spec.method!r} has none")
        weights = weights * (target_probability(steered) < spec.gate)
    return weights[..., None]


def needs_control(spec: SteeringSpec, control, start) -> None:
    if spec.schedule in ("window", "fence") and control is None and start is None:
        raise ValueError(f"the {spec.schedule!r} schedule counts generated tokens: steer through "
                         "generation.generate(..., steerer=...), which drives it")


class Steerer:
    """A spec plus the learned state its method needs, making the TransformerLens hooks that
    steer. One subclass per method: ``MeanDiffSteerer``, ``GactSteerer``, ``NeuronSteerer``, and
    ``act.ActSteerer`` (per head)."""

    method: str = ""  # the spec's method this class steers with
    spec: SteeringSpec
    condition = None  # a ``condition.PromptCondition``: which prompts a conditional spec steers (``steered_rows``)

    def steered_rows(self, model, prompts) -> list[bool] | None:
        """Per prompt, whether this steerer steers it: all (None) unless its spec is conditional."""
        if not self.spec.conditional:
            return None
        if self.condition is None:
            raise ValueError("conditional steering needs the run's condition, which the 'probe' stage fits")
        return self.condition.steers(model, prompts)

    def __post_init__(self):
        if self.spec.method != self.method:
            raise ValueError(f"a {type(self).__name__} steers with method {self.method!r}, not {self.spec.method!r}")

    def hooks(self, model, start: int | None = None, control: StepControl | None = None) -> list[tuple[str, object]]:
        """TransformerLens hooks for ``model``; ``start``: see ``first_steered``; ``control``: the
        decoding loop's state that a schedule reads (``generate(..., steerer=...)`` gives it)."""
        raise NotImplementedError

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """What the steerer learned, as tensors and JSON-able parameters (``artifacts`` saves them)."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, spec: SteeringSpec, tensors: dict[str, torch.Tensor], params: dict) -> "Steerer":
        raise NotImplementedError


class ResidualSteerer(Steerer):
    """Adds ``strength(l) * direction(l, h)`` to the residual stream of each steered layer."""

    def direction(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    unit_scale: torch.Tensor | None = None  # per layer: mean residual norm / steering vector norm (alpha_unit "norm")
    gate_probe: object = None  # a GactProbe with an "off" class, for the gated schedule

    def strength(self, layer: int, alpha: float):
        return alpha * self._unit(layer)

    def _unit(self, layer: int) -> float:
        if self.spec.alpha_unit == "absolute":
            return 1.0
        if self.unit_scale is None:
            raise ValueError("alpha_unit 'norm' needs the layers' residual norms (unit_scale): made from a run's activations")
        return float(self.unit_scale[layer])

    def can_gate(self) -> bool:
        return self.gate_probe is not None

    def target_probability(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """The gate's probe: the probability of its "off" class (the answer is already in the target)."""
        return torch.softmax(self.gate_probe.layer_logits(layer, h.float()), dim=-1)[..., -1]

    def _width(self) -> int:
        raise NotImplementedError

    def hooks(self, model, start: int | None = None, control: StepControl | None = None) -> list[tuple[str, object]]:
        check_layers(self.spec.layers, model.n_layers)
        needs_control(self.spec, control, start)
        if self._width() != model.d_model:
            raise ValueError(f"steering vectors have d_model {self._width()}, the model has {model.d_model}")
        if self.spec.schedule == "gated" and not self.can_gate():
            raise ValueError("the gated schedule needs a G-ACT probe with an 'off' class (an adaptive run)")
        return [
            (model.hook_name(layer, self.spec.hook_point), self._residual_hook(layer, alpha, start, control))
            for layer, alpha in zip(self.spec.layers, self.spec.alphas)
            if alpha != 0
        ]

    def _residual_hook(self, layer: int, alpha: float, start: int | None, control: StepControl | None):
        def hook(activation, hook):
            first = first_steered(self.spec, activation, start)
            h = activation[:, first:]
            delta = self.strength(layer, alpha) * self.direction(layer, h)
            weights = schedule_weights(self.spec, control, h, lambda x: self.target_probability(layer, x))
            steered = h + (delta if weights is None else delta * weights.to(delta.dtype))
            return torch.cat([activation[:, :first], steered], dim=1) if first else steered

        return hook


@dataclass
class MeanDiffSteerer(ResidualSteerer):
    """CAA/ActAdd: the mean difference ``mean_vectors[n_layers, d_model]`` at every position."""

    spec: SteeringSpec
    mean_vectors: torch.Tensor
    unit_scale: torch.Tensor | None = field(default=None, repr=False)
    gate_probe: object = field(default=None, repr=False)
    method = "mean_diff"

    def direction(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        return self.mean_vectors[layer].to(h).expand_as(h)

    def _width(self) -> int:
        return self.mean_vectors.shape[-1]

    def state(self):
        return {"mean_vectors": self.mean_vectors, **_extra_state(self)}, {}

    @classmethod
    def from_state(cls, spec, tensors, params):
        return cls(spec, tensors["mean_vectors"], **_extra_from(tensors))


def _extra_state(steerer) -> dict:
    """What a residual steerer's schedule and unit need besides its vectors, as tensors."""
    out = {} if steerer.unit_scale is None else {"unit_scale": steerer.unit_scale}
    if steerer.gate_probe is not None:
        out.update({f"gate.{k}": v for k, v in steerer.gate_probe.state_tensors().items()})
    return out


def _extra_from(tensors: dict) -> dict:
    from .probes import GactProbe

    gate = {k.removeprefix("gate."): v for k, v in tensors.items() if k.startswith("gate.")}
    return {"unit_scale": tensors.get("unit_scale"), "gate_probe": GactProbe.from_state_tensors(gate) if gate else None}


@dataclass
class GactSteerer(ResidualSteerer):
    """G-ACT: ``vectors[n_layers, K, d_model]`` (the cluster steering vectors) mixed by a fitted
    ``GactProbe`` over all layers (``layer_logits``), with K classes or K + 1 (the last one
    meaning "already on target: do not steer"). ``probe_params`` optionally overrides the probe's
    (coef, intercept), e.g. with tensors that require grad during refinement. What refinement
    learns on top: ``log_gains[L]`` (layer l is steered at ``alpha_l * exp(log_gains[l])``) and
    ``offsets[L, K, d_model]`` (added to the cluster vectors). ``selection`` mixes the cluster
    vectors by the probe's probabilities (``soft``) or takes its top class only (``argmax``, an
    ablation)."""

    spec: SteeringSpec
    vectors: torch.Tensor
    probe: object
    probe_params: tuple | None = field(default=None, repr=False)
    log_gains: torch.Tensor | None = field(default=None, repr=False)
    offsets: torch.Tensor | None = field(default=None, repr=False)
    selection: str = "soft"
    unit_scale: torch.Tensor | None = field(default=None, repr=False)
    off_class: str = "weight"
    method = "gact"  # it gates with its own probe (``target_probability``), not a ``gate_probe``

    def __post_init__(self):
        super().__post_init__()
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; expected one of {', '.join(SELECTIONS)}")
        if self.off_class not in OFF_CLASS:
            raise ValueError(f"unknown off_class {self.off_class!r}; expected one of {', '.join(OFF_CLASS)}")

    def direction(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """The steering direction ``sum_k p_k(h) v_{l,k}`` for activations ``h[..., d]``."""
        coef, intercept = self.probe_params or (None, None)
        logits = self.probe.layer_logits(layer, h.float(), coef, intercept)
        # A probe with more classes than vectors has an "off" class (the last). "weight": its share
        # steers by the zero vector, so activations that look like the target are left (almost)
        # alone; "gate": it is left out of the mix, and only the gated schedule reads it.
        n_vectors = self.vectors.shape[1]
        weights = torch.softmax(logits if self.off_class == "weight" else logits[..., :n_vectors], dim=-1)
        if self.selection == "argmax":
            weights = torch.nn.functional.one_hot(weights.argmax(-1), weights.shape[-1]).to(weights)
        vectors = self.vectors[layer] if self.offsets is None else self.vectors[layer] + self.offsets[layer]
        return (weights[..., :n_vectors] @ vectors.to(weights)).to(h.dtype)

    def strength(self, layer: int, alpha: float):
        """``alpha`` (in its unit), times the refined gain of ``layer`` when there is one (a tensor then)."""
        alpha = alpha * self._unit(layer)
        return alpha if self.log_gains is None else alpha * torch.exp(self.log_gains[layer])

    def can_gate(self) -> bool:
        return self.probe.coef_.shape[-1] > self.vectors.shape[1]

    def target_probability(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """Its own probe's "off" class: the activation already looks like the target."""
        coef, intercept = self.probe_params or (None, None)
        return torch.softmax(self.probe.layer_logits(layer, h.float(), coef, intercept), dim=-1)[..., -1]

    def _width(self) -> int:
        return self.vectors.shape[-1]

    def state(self):
        tensors = {"vectors": self.vectors, **{f"probe.{k}": v for k, v in self.probe.state_tensors().items()}}
        tensors.update({k: getattr(self, k) for k in ("log_gains", "offsets") if getattr(self, k) is not None})
        return {**tensors, **_extra_state(self)}, {"selection": self.selection, "off_class": self.off_class}

    @classmethod
    def from_state(cls, spec, tensors, params):
        from .probes import GactProbe

        probe = GactProbe.from_state_tensors({k.removeprefix("probe."): v for k, v in tensors.items() if k.startswith("probe.")})
        return cls(spec, tensors["vectors"], probe, log_gains=tensors.get("log_gains"), offsets=tensors.get("offsets"),
                   selection=params.get("selection", "soft"), unit_scale=tensors.get("unit_scale"),
                   off_class=params.get("off_class", "weight"))


@dataclass
class NeuronSteerer(Steerer):
    """The paper's static neuron baseline: ``neurons`` maps a layer to the MLP neuron it scales,
    by that layer's alpha (a factor)."""

    spec: SteeringSpec
    neurons: dict[int, int]
    method = "neuron"

    def hooks(self, model, start: int | None = None, control: StepControl | None = None) -> list[tuple[str, object]]:
        check_layers(self.spec.layers, model.n_layers)
        needs_control(self.spec, control, start)
        if self.spec.schedule == "gated" or self.spec.alpha_unit != "absolute":
            raise ValueError("the neuron method scales a neuron by a factor: it has no probe to gate with and no norm unit")
        unknown = [layer for layer in self.spec.layers if layer not in self.neurons]
        if unknown:
            raise ValueError(f"no attributed neuron for layer(s) {unknown}")
        return [(model.hook_name(layer, "mlp_post"), self._neuron_hook(self.neurons[layer], factor, start, control))
                for layer, factor in zip(self.spec.layers, self.spec.alphas)]

    def state(self):
        layers = sorted(self.neurons)
        return {"layers": torch.tensor(layers), "neurons": torch.tensor([self.neurons[l] for l in layers])}, {}

    @classmethod
    def from_state(cls, spec, tensors, params):
        return cls(spec, dict(zip(tensors["layers"].tolist(), tensors["neurons"].tolist())))

    def _neuron_hook(self, neuron: int, factor: float, start: int | None, control: StepControl | None):
        def hook(activation, hook):
            first = first_steered(self.spec, activation, start)
            activation = activation.clone()
            weights = schedule_weights(self.spec, control, activation[:, first:])
            scale = factor if weights is None else 1 + (factor - 1) * weights[..., 0].to(activation.dtype)
            activation[:, first:, neuron] *= scale
            return activation

        return hook
