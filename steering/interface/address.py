"""The Steer page's address (``?method=gact&layers=21,23&alphas=0.5,0.25&task=...&seed=0``),
read parameter by parameter: a bad parameter is named, with its value and what it allows, and
dropped; the good ones are kept. The layers are checked as the command line checks them (in
range, none twice) and each alpha within its method's limit."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from ..core.limits import LimitError, check as check_limit, shown
from ..methods.registry import METHODS


@dataclass
class SteerAddress:
    """What the address asks for (None where it says nothing or what it says was dropped) and,
    in ``problems``, one sentence per parameter dropped."""

    method: str | None = None
    steering: dict[int, float] | None = None
    task: str | None = None
    seed: int | None = None
    problems: list[str] = field(default_factory=list)


def _items(text: str, name: str, kind) -> list:
    values = []
    for index, item in enumerate(text.split(",")):
        try:
            values.append(kind(item.strip()))
        except ValueError:
            raise ValueError(f"{name}: item {index + 1}, {shown(item)}, is not {'an integer' if kind is int else 'a number'}") \
                from None
    return values


def _steering(query: Mapping[str, str], n_layers: int, method: str) -> dict[int, float]:
    layers = _items(query["layers"], "layers", int) if query["layers"].strip() else []
    wrong = [layer for layer in layers if not 0 <= layer < n_layers]
    if wrong:
        raise ValueError(f"layers: {', '.join(map(str, wrong))} out of range; this run's model has layers 0 to {n_layers - 1}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers: a layer is listed twice in {shown(query['layers'])}")
    alphas = _items(query.get("alphas", ""), "alphas", float) if query.get("alphas", "").strip() else []
    if len(alphas) != len(layers):
        raise ValueError(f"alphas: {len(alphas)} given for {len(layers)} layers; give one alpha per layer")
    return {layer: METHODS[method].check_alpha(alpha, f"alphas: layer {layer}'s alpha") for layer, alpha in zip(layers, alphas)}


def parse_steer_address(query: Mapping[str, str], n_layers: int, methods: Sequence[str], tasks: Collection[str],
                        default_method: str) -> SteerAddress:
    """The address's parameters that fit this run (``methods`` it can steer with, ``tasks`` of
    its prompt set); each one that does not is named in ``problems`` and left out."""
    out = SteerAddress()
    if "method" in query:
        if query["method"] in methods:
            out.method = query["method"]
        else:
            out.problems.append(f"method: {shown(query['method'])} is not one this run can steer with "
                                f"({', '.join(methods)})")
    if "layers" in query:
        try:
            out.steering = _steering(query, n_layers, out.method or default_method)
        except ValueError as err:
            out.problems.append(f"{err} (the layers and alphas were not applied)")
    if "task" in query:
        if query["task"] in tasks:
            out.task = query["task"]
        else:
            out.problems.append(f"task: {shown(query['task'])} is not a task of this run's prompt set")
    if "seed" in query:
        try:
            seed = int(query["seed"])
        except ValueError:
            seed = query["seed"]  # refused below, named as given
        try:
            out.seed = check_limit("seed", seed, "seed")
        except LimitError as err:
            out.problems.append(str(err))
    return out
