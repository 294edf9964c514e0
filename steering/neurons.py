"""Static neuron attribution, the paper's brittle baseline: find the MLP neuron whose output
direction, read through the unembedding, most favours the target language's tag token."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .languages import check_language
from .models import check_layers


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


@torch.no_grad()
def attribute_neurons(model, language: str, layers=None, top_k_tokens: int = 10, top_n: int = 10,
                      chunk: int = 1024) -> list[NeuronScore]:
    """Score every MLP neuron of ``layers`` (default: all): ``A = P[target] / mean(P[top-k])``
    with ``P = softmax(W_out[neuron] @ W_U + b_U)``; return the ``top_n`` best."""
    bridge = model.bridge
    target = language_tag_token(model.tokenizer, language)
    layers = check_layers(range(model.n_layers) if layers is None else layers, model.n_layers)
    w_out, w_u = bridge.W_out, bridge.W_U.float()
    b_u = getattr(bridge, "b_U", None)
    scores: list[NeuronScore] = []
    for layer in layers:
        rows = w_out[layer].float()  # [d_mlp, d_model]: what each neuron writes
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
