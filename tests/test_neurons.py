"""The static neuron baseline: the paper's gated score, and the most active neuron."""

from __future__ import annotations

import pytest
import torch

from steering.methods.neurons import active_neurons, attribute_neurons


def test_paper_neuron_score_reads_the_gated_effective_weight(embedded):
    bridge = embedded.bridge
    (best,) = attribute_neurons(embedded, "cpp", layers=[2], scoring="paper", top_n=1)
    w_eff = bridge.W_in[2][:, best.neuron] * torch.sigmoid(bridge.W_gate[2][:, best.neuron])
    probs = torch.softmax(w_eff @ bridge.W_U + bridge.b_U, dim=-1)
    from steering.methods.neurons import language_tag_token

    target = language_tag_token(embedded.tokenizer, "cpp")
    assert best.score == pytest.approx(float(probs[target] / probs.topk(10).values.mean()), rel=1e-4)
    (output,) = attribute_neurons(embedded, "cpp", layers=[2], scoring="output", top_n=1)
    assert (output.layer, output.neuron) != (best.layer, best.neuron) or output.score != best.score


def test_paper_scoring_needs_a_gated_mlp_and_activation_selection_finds_the_active_neuron(tiny_gpt2):
    with pytest.raises(ValueError, match="needs a gated MLP"):
        attribute_neurons(tiny_gpt2, "cpp", scoring="paper")
    good, bad = torch.zeros(5, 2, 6), torch.zeros(7, 2, 6)
    good[:, 1, 4] = 3.0
    (top,) = active_neurons(good, bad, top_n=1)
    assert (top.layer, top.neuron, top.score) == (1, 4, 3.0)
