"""Steering injections: on the chosen layers only, ``h_l += alpha_l * sum_k p_k(h_l) * v_{l,k}``.

A ``SteeringSpec`` says where and how strongly (layers, alpha per layer, method, positions); a
``Steerer`` of the method's class adds what was learned (vectors, probes, or a neuron) and makes
the TransformerLens hooks. Hooks are only ever attached through ``steering.hooks.thread_hooks``: for one call, in one
thread, removed when the call ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .models import HOOK_POINTS, check_layers

POSITIONS = ("generated", "all")
SELECTIONS = ("soft", "argmax")  # G-ACT's mix of cluster vectors: probe-weighted, or the probe's top cluster only


@dataclass(frozen=True)
class SteeringSpec:
    """Which layers are on, alpha per layer, the method, and the positions steered.

    ``positions="generated"`` (the default) steers every generated token: the last prompt
    position (which predicts the first answer token) and each new token after it. ``"all"``
    also steers the prompt.
    """

    layers: tuple[int, ...]
    alphas: tuple[float, ...]
    method: str = "gact"
    positions: str = "generated"
    hook_point: str = "resid_post"

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(int(layer) for layer in self.layers))
        object.__setattr__(self, "alphas", tuple(float(a) for a in self.alphas))
        from .methods import steering_methods  # the registry imports the steerers below

        if self.method not in steering_methods():
            raise ValueError(f"unknown steering method {self.method!r}; expected one of {', '.join(steering_methods())}")
        if self.positions not in POSITIONS:
            raise ValueError(f"unknown positions {self.positions!r}; expected one of {', '.join(POSITIONS)}")
        if self.hook_point not in HOOK_POINTS:
            raise ValueError(f"unknown hook point {self.hook_point!r}; expected one of {', '.join(HOOK_POINTS)}")
        if len(self.alphas) != len(self.layers):
            raise ValueError(f"{len(self.layers)} layers but {len(self.alphas)} alphas: give one alpha per layer")
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
                "positions": self.positions, "hook_point": self.hook_point}

    @classmethod
    def from_json(cls, values: dict) -> "SteeringSpec":
        return cls(tuple(values["layers"]), tuple(values["alphas"]), values.get("method", "gact"),
                   values.get("positions", "generated"), values.get("hook_point", "resid_post"))


def first_steered(spec: SteeringSpec, activation: torch.Tensor, start: int | None) -> int:
    """The first position of ``activation[batch, pos, ...]`` to steer: 0 for ``positions="all"``;
    else ``start``, or (``None``) the last position of the call, which is the last prompt token
    at prefill and the one new token at every KV-cached step after it."""
    if spec.positions == "all":
        return 0
    return activation.shape[1] - 1 if start is None else start


class Steerer:
    """A spec plus the learned state its method needs, making the TransformerLens hooks that
    steer. One subclass per method: ``MeanDiffSteerer``, ``GactSteerer``, ``NeuronSteerer``, and
    ``act.ActSteerer`` (per head)."""

    method: str = ""  # the spec's method this class steers with
    spec: SteeringSpec

    def __post_init__(self):
        if self.spec.method != self.method:
            raise ValueError(f"a {type(self).__name__} steers with method {self.method!r}, not {self.spec.method!r}")

    def hooks(self, model, start: int | None = None) -> list[tuple[str, object]]:
        """TransformerLens hooks for ``model``; ``start``: see ``first_steered``."""
        raise NotImplementedError

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """What the steerer learned, as tensors and JSON-able parameters (``artifacts`` saves them)."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, spec: SteeringSpec, tensors: dict[str, torch.Tensor], params: dict) -> "Steerer":
        raise NotImplementedError


def steerer_class(method: str) -> type[Steerer]:
    """The ``Steerer`` subclass that steers with ``method`` (a spec's method)."""
    from . import act  # noqa: F401  (ActSteerer is defined there)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in subclasses(Steerer):
        if cls.method == method:
            return cls
    raise ValueError(f"no steerer class steers with method {method!r}")


class ResidualSteerer(Steerer):
    """Adds ``strength(l) * direction(l, h)`` to the residual stream of each steered layer."""

    def direction(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def strength(self, layer: int, alpha: float):
        return alpha

    def _width(self) -> int:
        raise NotImplementedError

    def hooks(self, model, start: int | None = None) -> list[tuple[str, object]]:
        check_layers(self.spec.layers, model.n_layers)
        if self._width() != model.d_model:
            raise ValueError(f"steering vectors have d_model {self._width()}, the model has {model.d_model}")
        return [
            (model.hook_name(layer, self.spec.hook_point), self._residual_hook(layer, alpha, start))
            for layer, alpha in zip(self.spec.layers, self.spec.alphas)
            if alpha != 0
        ]

    def _residual_hook(self, layer: int, alpha: float, start: int | None):
        def hook(activation, hook):
            first = first_steered(self.spec, activation, start)
            steered = activation[:, first:] + self.strength(layer, alpha) * self.direction(layer, activation[:, first:])
            return torch.cat([activation[:, :first], steered], dim=1) if first else steered

        return hook


@dataclass
class MeanDiffSteerer(ResidualSteerer):
    """CAA/ActAdd: the mean difference ``mean_vectors[n_layers, d_model]`` at every position."""

    spec: SteeringSpec
    mean_vectors: torch.Tensor
    method = "mean_diff"

    def direction(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        return self.mean_vectors[layer].to(h).expand_as(h)

    def _width(self) -> int:
        return self.mean_vectors.shape[-1]

    def state(self):
        return {"mean_vectors": self.mean_vectors}, {}

    @classmethod
    def from_state(cls, spec, tensors, params):
        return cls(spec, tensors["mean_vectors"])


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
    method = "gact"

    def __post_init__(self):
        super().__post_init__()
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; expected one of {', '.join(SELECTIONS)}")

    def direction(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """The steering direction ``sum_k p_k(h) v_{l,k}`` for activations ``h[..., d]``."""
        coef, intercept = self.probe_params or (None, None)
        logits = self.probe.layer_logits(layer, h.float(), coef, intercept)
        # A probe with more classes than there are vectors has an "off" class (the last): its
        # share of the weight steers by the zero vector, so activations that already look like
        # the target are left (almost) alone.
        weights = torch.softmax(logits, dim=-1)
        if self.selection == "argmax":
            weights = torch.nn.functional.one_hot(weights.argmax(-1), weights.shape[-1]).to(weights)
        vectors = self.vectors[layer] if self.offsets is None else self.vectors[layer] + self.offsets[layer]
        return (weights[..., : self.vectors.shape[1]] @ vectors.to(weights)).to(h.dtype)

    def strength(self, layer: int, alpha: float):
        """``alpha``, times the refined gain of ``layer`` when there is one (a tensor then)."""
        return alpha if self.log_gains is None else alpha * torch.exp(self.log_gains[layer])

    def _width(self) -> int:
        return self.vectors.shape[-1]

    def state(self):
        tensors = {"vectors": self.vectors, **{f"probe.{k}": v for k, v in self.probe.state_tensors().items()}}
        tensors.update({k: getattr(self, k) for k in ("log_gains", "offsets") if getattr(self, k) is not None})
        return tensors, {"selection": self.selection}

    @classmethod
    def from_state(cls, spec, tensors, params):
        from .probes import GactProbe

        probe = GactProbe.from_state_tensors({k.removeprefix("probe."): v for k, v in tensors.items() if k.startswith("probe.")})
        return cls(spec, tensors["vectors"], probe, log_gains=tensors.get("log_gains"), offsets=tensors.get("offsets"),
                   selection=params.get("selection", "soft"))


@dataclass
class NeuronSteerer(Steerer):
    """The paper's static neuron baseline: ``neurons`` maps a layer to the MLP neuron it scales,
    by that layer's alpha (a factor)."""

    spec: SteeringSpec
    neurons: dict[int, int]
    method = "neuron"

    def hooks(self, model, start: int | None = None) -> list[tuple[str, object]]:
        check_layers(self.spec.layers, model.n_layers)
        unknown = [layer for layer in self.spec.layers if layer not in self.neurons]
        if unknown:
            raise ValueError(f"no attributed neuron for layer(s) {unknown}")
        return [(model.hook_name(layer, "mlp_post"), self._neuron_hook(self.neurons[layer], factor, start))
                for layer, factor in zip(self.spec.layers, self.spec.alphas)]

    def state(self):
        layers = sorted(self.neurons)
        return {"layers": torch.tensor(layers), "neurons": torch.tensor([self.neurons[l] for l in layers])}, {}

    @classmethod
    def from_state(cls, spec, tensors, params):
        return cls(spec, dict(zip(tensors["layers"].tolist(), tensors["neurons"].tolist())))

    def _neuron_hook(self, neuron: int, factor: float, start: int | None):
        def hook(activation, hook):
            first = first_steered(self.spec, activation, start)
            activation = activation.clone()
            activation[:, first:, neuron] *= factor
            return activation

        return hook
