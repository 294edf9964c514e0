"""The evaluation's measures: the success metric, fluency, the choice of layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import CPP_OK, CPP_UNDECLARED
from steering.code.toolchains import toolchain
from steering.engine.generation import Generation
from steering.pipeline.evaluation import best_layers, repeated_ngram_rate, summarize


def test_fluency_and_layer_choice_helpers():
    assert repeated_ngram_rate("a b c d e f g".split()) == 0
    assert repeated_ngram_rate(("x y z w " * 10).split()) > 0.8
    # One "word" of gibberish repeats on tokens (here characters), which whitespace words miss.
    assert repeated_ngram_rate("sizesizesizesizesize".split()) == 0
    assert repeated_ngram_rate(list("sizesizesizesizesize")) > 0.7
    grid = np.array([[0.1, 0.2], [0.9, 0.95], [0.95, 0.95]])
    assert best_layers(grid, [0, 1, 2], [1.0, 2.0], n=2) == ([1, 2], [2.0, 1.0])
    # Equal best: the layer that steers at more alphas wins, then the lower layer.
    grid = np.array([[0.0, 1.0], [0.5, 1.0], [0.5, 1.0]])
    assert best_layers(grid, [0, 1, 2], [1.0, 2.0], n=1) == ([1], [2.0])


def test_success_counts_only_fenced_parsing_target_code():
    answers = [Generation("p", text, 10, 0) for text in (
        f"```cpp\n{CPP_OK}```",  # counts
        f"```cpp\n{CPP_UNDECLARED}```",  # fenced C++ that parses: counts, but does not compile
        "// sum the values\n",  # parses as C++, but is no code block
        "sizesizesizesizesizesizesizesize",  # gibberish: no code block
        "```c\nint main(void) { return 0; }\n```",  # a language we do not study
    )]
    summary = summarize(answers, "cpp", max_new_tokens=10)
    assert summary["success"] == pytest.approx(2 / 5) and summary["fenced_target"] == pytest.approx(2 / 5)
    assert summary["no_code_block"] == pytest.approx(2 / 5) and summary["shares"]["other"] == pytest.approx(1 / 5)
    assert summary["cut_off"] == 1.0
    if toolchain("cpp"):
        assert summary["compiles"] == pytest.approx(1 / 2) and summary["compiler"] == "g++"
    else:
        assert summary["compiles"] is None


def test_continuation_logprob_scores_only_the_continuations_as_a_full_pass_would(embedded):
    from steering.engine.forward import encode_prompts, forward, positions_of
    from steering.pipeline.evaluation import continuation_logprob

    prompts, continuations = ["Sort a list.", "Sum numbers.", "Parse a date."], ["```cpp\nint x;", "", "```py\nx = 1\n"]
    ids, mask = encode_prompts(embedded, prompts, continuations)
    with torch.no_grad():
        logits, _ = forward(embedded, ids, mask, positions_of(mask), keep=None)
    full = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, ids[:, 1:, None])[..., 0]
    lengths = [len(embedded.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in continuations]
    expected = [float(full[i, -n:].mean()) if n else float("nan") for i, n in enumerate(lengths)]
    assert np.allclose(continuation_logprob(embedded, prompts, continuations), expected, atol=1e-5, equal_nan=True)
    assert np.isnan(continuation_logprob(embedded, prompts[:1], [""])).all()
