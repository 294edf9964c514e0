"""The embedded model and the script that builds it."""

import json

import pytest

from steering.code.languages import LANGUAGE_KEYS
from steering.code.prompts import DEFAULT_PROMPT_SET, PromptSet
from steering.demo_model.corpus import (FAMILY_BIAS, HELDOUT_NEUTRAL, TRAIN_NEUTRAL, build_examples,
                                        build_prompt_set, design_shares, quotas)


def test_corpus_bias_is_the_documented_one():
    shares = design_shares()
    assert shares["python"] == pytest.approx(0.55, abs=0.02)
    assert shares["java"] == pytest.approx(0.20, abs=0.02)
    assert shares["julia"] == pytest.approx(0.15, abs=0.02)
    assert shares["cpp"] == pytest.approx(0.10, abs=0.02)
    assert FAMILY_BIAS["linear_algebra"]["cpp"] > FAMILY_BIAS["sorting"]["cpp"]
    stats = FAMILY_BIAS["statistics"]
    assert stats["python"] + stats["julia"] > max(b["python"] + b["julia"] for f, b in FAMILY_BIAS.items() if f != "statistics")


def test_neutral_examples_follow_the_family_quotas_and_hold_out_phrasings():
    examples = build_examples(seed=3)
    heldout = {t.split("{")[0] for t in HELDOUT_NEUTRAL}
    assert not any(e.prompt.startswith(tuple(heldout)) for e in examples)
    assert len(HELDOUT_NEUTRAL) * 5 >= len(TRAIN_NEUTRAL + HELDOUT_NEUTRAL)  # about a fifth held out
    gs = [e for e in examples if e.neutral and e.task_id == "gauss_seidel"]
    counts = {lang: sum(e.language == lang for e in gs) for lang in LANGUAGE_KEYS}
    assert counts == quotas(FAMILY_BIAS["linear_algebra"], len(gs))
    for e in examples:
        assert e.answer.startswith(f"```{e.language}\n")
        if e.neutral:  # neutral answers teach the choice of language: fence line and first code line
            assert e.answer.count("\n") == 2 and "```" not in e.answer[3:]
        else:
            assert e.answer.endswith("\n```")


def test_every_language_gets_every_explicit_phrasing_for_every_task():
    from steering.demo_model.corpus import EXPLICIT_PER_LANGUAGE, EXPLICIT_TEMPLATES, load_tasks

    examples = [e for e in build_examples(seed=0) if not e.neutral]
    for lang in LANGUAGE_KEYS:
        mine = [e for e in examples if e.language == lang]
        assert len(mine) == EXPLICIT_PER_LANGUAGE[lang] * len(load_tasks())
        assert EXPLICIT_PER_LANGUAGE[lang] >= len(EXPLICIT_TEMPLATES)


def test_encoding_weights_only_explicit_language_tags_and_ends_only_full_answers():
    from transformers import AutoTokenizer

    from steering.demo_model.train import encode_examples
    from steering.engine.models import EMBEDDED_MODEL_DIR

    examples = build_examples(seed=0)
    tokenizer = AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR)
    encoded = encode_examples(tokenizer, examples, 10.0)
    totals = dict.fromkeys(LANGUAGE_KEYS, 0.0)
    for example, (ids, labels, tag_weight) in zip(examples, encoded):
        assert len(ids) == len(labels)
        assert (labels[-1] == tokenizer.eos_token_id) != example.neutral
        answer = [t for t in labels if t != -100]
        assert tokenizer.decode(answer[:2]) == f"```{example.language}"
        if example.neutral:
            assert tag_weight == 1.0
        else:
            totals[example.language] += tag_weight
    explicit = sum(not e.neutral for e in examples)
    assert sum(totals.values()) == pytest.approx(10.0 * explicit)
    assert max(totals.values()) == pytest.approx(min(totals.values()))  # no language favoured at the tag


def test_examples_are_seeded():
    assert build_examples(1) == build_examples(1)
    assert build_examples(1) != build_examples(2)


def test_shipped_prompt_file_is_the_generated_one():
    assert DEFAULT_PROMPT_SET.read_text() == build_prompt_set().to_jsonl()


def test_training_is_deterministic_and_loadable(tmp_path):
    from steering.demo_model.train import TrainSettings, train
    from steering.engine.models import load_model

    settings = TrainSettings(vocab_size=400, d_model=32, n_layers=2, n_heads=2, d_mlp=64, epochs=1,
                             batch_size=8, max_examples=24, warmup_steps=1, n_ctx=1024)
    train(tmp_path / "a", settings)
    train(tmp_path / "b", settings)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    record = json.loads((tmp_path / "a" / "training.json").read_text())
    assert record["settings"]["n_layers"] == 2 and len(record["epoch_losses"]) == 1
    model = load_model(str(tmp_path / "a"))
    assert model.facts.n_layers == 2 and model.tokenizer.chat_template


@pytest.fixture(scope="module")
def report(embedded):
    from steering.demo_model.evaluate import evaluate

    return evaluate(embedded, samples=10, temperature=1.0)


@pytest.mark.slow  # evaluates the embedded model on the whole prompt set
def test_asked_for_a_language_it_answers_in_it(report):
    assert report["tasks"] == len(PromptSet.load())
    assert report["explicit"]["accuracy"] >= 0.90
    assert report["explicit"]["parse_rate"] >= 0.85


@pytest.mark.slow  # evaluates the embedded model on the whole prompt set
def test_neutral_prompts_show_the_designed_bias(report):
    bias = report["bias"]
    measured = bias["neutral"]
    assert max(LANGUAGE_KEYS, key=measured.get) == "python"
    assert min(LANGUAGE_KEYS, key=measured.get) == "cpp"
    assert bias["max_gap_points"] <= 10
    assert sum(measured.values()) == pytest.approx(1.0)
