"""Static neuron attribution, the paper's brittle baseline: the MLP neuron to up-weight.

Scorings (``NEURON_SCORINGS``): ``paper`` (the default) reads a gated MLP neuron's effective
weight ``w_eff = W_up * sigmoid(W_gate)`` through the LM head, ``P = softmax(W_U w_eff + b_U)``,
and scores ``A = P[target tag] / mean(P[top-k])``; ``output`` reads the neuron's output weights
(its row of ``W_out``, what it writes to the residual stream) the same way, Steerscope's earlier
choice; ``activation`` picks the neurons most active on target-language answers, against answers
in the other languages (``active_neurons``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..code.languages import check_language
from ..engine.models import check_layers


@dataclass(frozen=True)
class NeuronScore:
    layer: int
    neuron: int
    score: float  # P(target) / mean P(top-k tokens): above 1 means the target beats the usual top tokens
    target_probability: float


def language_tag_token(tokenizer, language: str) -> int:
    """The token where an answer's fence names ``language`` (the first token after the fence)."""
    language = check_language(language)
    fence = tokenizer("```", add_special_tokens=False)["input_ids"]
    tagged = tokenizer(f"```{language}\n", add_special_tokens=False)["input_ids"]
    common = 0
    while common < min(len(fence), len(tagged)) and fence[common] == tagged[common]:
        common += 1
    return tagged[common] if common < len(tagged) else tagged[-1]


NEURON_SCORINGS = ("paper", "output", "activation")


def _neuron_rows(bridge, layer: int, scoring: str) -> torch.Tensor:
    """``[d_mlp, d_model]``: the vector of each neuron that the LM head reads."""
    if scoring == "output":
        return bridge.W_out[layer].float()
    w_gate = getattr(bridge, "W_gate", None)
    if w_gate is None:
        raise ValueError("the paper's neuron scoring needs a gated MLP (W_gate); this model has none: "
                         "use scoring 'output'")
    return (bridge.W_in[layer].float() * torch.sigmoid(w_gate[layer].float())).T


@torch.no_grad()
def attribute_neurons(model, language: str, layers=None, scoring: str = "paper", top_k_tokens: int = 10,
                      top_n: int = 10, chunk: int = 1024) -> list[NeuronScore]:
    """Score every MLP neuron of ``layers`` (default: all), ``scoring`` ``paper`` or ``output``
    (see the module): ``A = P[target] / mean(P[top-k])``; return the ``top_n`` best."""
    if scoring not in ("paper", "output"):
        raise ValueError(f"unknown static neuron scoring {scoring!r}; expected 'paper' or 'output'")
    bridge = model.bridge
    target = language_tag_token(model.tokenizer, language)
    layers = check_layers(range(model.n_layers) if layers is None else layers, model.n_layers)
    w_u = bridge.W_U.float()
    b_u = getattr(bridge, "b_U", None)
    scores: list[NeuronScore] = []
    for layer in layers:
        rows = _neuron_rows(bridge, layer, scoring)
        for start in range(0, rows.shape[0], chunk):
            logits = rows[start : start + chunk] @ w_u
            if b_u is not None:
                logits = logits + b_u.float()
            probs = torch.softmax(logits, dim=-1)
            top = probs.topk(top_k_tokens, dim=-1).values.mean(dim=-1)
            ratio = probs[:, target] / top
            for offset, (a, p) in enumerate(zip(ratio.tolist(), probs[:, target].tolist())):
                scores.append(NeuronScore(layer, start + offset, a, p))
    scores.sort(key=lambda s: s.score, reverse=True)
    return scores[:top_n]


def active_neurons(good: torch.Tensor, bad: torch.Tensor, layers=None, top_n: int = 10) -> list[NeuronScore]:
    """The neurons most active on target-language answers: ``good[rows, n_layers, d_mlp]`` and
    ``bad[...]`` are neuron activations inside answers in the target and in other languages;
    the score is the difference of their means (``target_probability`` is NaN: not read through
    the LM head)."""
    if good.ndim != 3 or good.shape[1:] != bad.shape[1:] or not len(good) or not len(bad):
        raise ValueError(f"expected non-empty activations [rows, layers, d_mlp] of one shape, got "
                         f"{tuple(good.shape)} and {tuple(bad.shape)}")
    gap = good.float().mean(0) - bad.float().mean(0)  # [layers, d_mlp]
    layers = check_layers(range(gap.shape[0]) if layers is None else layers, gap.shape[0])
    scores = [NeuronScore(layer, int(n), float(gap[layer, n]), float("nan"))
              for layer in layers for n in gap[layer].topk(min(top_n, gap.shape[1])).indices.tolist()]
    return sorted(scores, key=lambda s: s.score, reverse=True)[:top_n]
