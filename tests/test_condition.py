"""``condition.PromptCondition`` and conditional steering (issue 30): steering that yields to a
prompt naming another language, read from the prompt as the run reads its activations."""

import numpy as np
import pytest
import torch

from steering.code.languages import LANGUAGE_KEYS
from steering.code.prompts import PromptSet
from steering.engine.activations import extract_activations
from steering.engine.generation import GenerationConfig, generate
from steering.methods.condition import OPEN, PromptCondition
from steering.methods.steer import MeanDiffSteerer, SteeringSpec


def _separable(n_tasks=40, layers=3, width=6, seed=0):
    """Rows whose class shows only from layer 1 on: open prompts and two languages."""
    rng = np.random.default_rng(seed)
    labels = [OPEN, "python", "java"] * n_tasks
    groups = np.repeat(np.arange(n_tasks), 3)
    X = rng.normal(size=(len(labels), layers, width)).astype(np.float32)
    for i, label in enumerate(labels):
        X[i, 1:, [OPEN, "python", "java"].index(label)] += 6.0
    return torch.from_numpy(X), labels, groups


def test_the_condition_reads_the_first_layer_that_tells_the_classes_apart_and_round_trips():
    X, labels, groups = _separable()
    condition = PromptCondition("cpp", random_state=0).fit(X, labels, groups)
    assert condition.layer_ == 1 and condition.val_accuracy_[1] == 1.0 and condition.val_accuracy_[0] < 0.8
    assert condition.read(X[:6, 1]) == labels[:6]
    again = PromptCondition.from_state_tensors(condition.state_tensors(), target="cpp")
    assert again.layer_ == 1 and again.classes_ == condition.classes_ and again.read(X[:, 1]) == condition.read(X[:, 1])
    held_out = set(groups[condition.val_idx_])
    assert held_out and not held_out & set(groups[np.setdiff1d(np.arange(len(labels)), condition.val_idx_)])


def test_the_condition_skips_a_layer_that_reads_only_the_wording_it_was_fitted_on():
    """Qwen Julia's finding (issue 30): layer 1 told the fitted phrasings apart by their wording and
    read 40 of 46 unseen phrasings as C++ requests. Here layer 1 separates the fitted rows by a
    feature the paraphrases do not share (they carry the "java" marker); layer 2 by one they do.
    Without the unseen rows layer 1 wins; with them, layer 2."""
    rng = np.random.default_rng(0)
    n = 40
    labels = [OPEN, "python", "java"] * n + [OPEN] * n  # the last n: paraphrases of the open prompts
    groups = np.concatenate([np.repeat(np.arange(n), 3), np.arange(n)])
    X = rng.normal(size=(len(labels), 3, 6)).astype(np.float32)
    for i, label in enumerate(labels):
        paraphrase = i >= 3 * n
        X[i, 1, [OPEN, "python", "java"].index("java" if paraphrase else label)] += 6.0  # wording
        X[i, 2, [OPEN, "python", "java"].index(label)] += 6.0  # meaning
    unseen = np.arange(len(labels)) >= 3 * n
    wording = PromptCondition("cpp").fit(torch.from_numpy(X[~unseen]), labels[:3 * n], groups[~unseen])
    assert wording.layer_ == 1
    meaning = PromptCondition("cpp").fit(torch.from_numpy(X), labels, groups, unseen)
    assert meaning.layer_ == 2 and meaning.val_accuracy_[1] < 0.1 and meaning.val_accuracy_[2] == 1.0
    assert meaning.read(X[unseen][:, 2]) == [OPEN] * n


@pytest.mark.parametrize("labels, message", [(["open", "c#"], "unknown condition label"), (["open", "open"], "two kinds")])
def test_the_condition_refuses_labels_it_cannot_learn(labels, message):
    with pytest.raises(ValueError, match=message):
        PromptCondition("cpp").fit(torch.zeros(2, 1, 3), labels, [0, 1])


@pytest.fixture(scope="module")
def fitted(embedded):
    """A condition fitted on the embedded model's reading of the shipped prompts, and the tasks."""
    tasks = PromptSet.load().tasks
    sets = {OPEN: [t.neutral for t in tasks], **{lang: [t.prompts[lang] for t in tasks] for lang in LANGUAGE_KEYS}}
    X = torch.cat([extract_activations(embedded, prompts, continuation="```") for prompts in sets.values()])
    labels = [label for label, prompts in sets.items() for _ in prompts]
    groups = np.tile(np.arange(len(tasks)), len(sets))
    return PromptCondition("cpp").fit(X, labels, groups), tasks


def test_conditional_steering_leaves_a_prompt_naming_another_language_as_unsteered_and_steers_open_ones(embedded, fitted):
    """The condition decides per prompt before decoding (``steered_rows``): conditional answers are
    the plain steered ones on open prompts and the unsteered ones on prompts asking for Python,
    row by row, in one batch."""
    condition, tasks = fitted
    assert condition.val_accuracy_[condition.layer_] >= 0.95
    prompts = [t.neutral for t in tasks[:6]] + [t.prompts["python"] for t in tasks[:6]]
    assert condition.steers(embedded, prompts) == [True] * 6 + [False] * 6
    vectors = torch.randn(embedded.n_layers, embedded.d_model, generator=torch.Generator().manual_seed(0))
    spec = SteeringSpec((1, 2), (4.0, 4.0), "mean_diff")
    plain = MeanDiffSteerer(spec, vectors)
    conditional = MeanDiffSteerer(SteeringSpec((1, 2), (4.0, 4.0), "mean_diff", conditional=True), vectors)
    conditional.condition = condition
    config = GenerationConfig(max_new_tokens=16)
    unsteered, steered, yielded = (generate(embedded, prompts, config, steerer=s) for s in (None, plain, conditional))
    assert [a.text for a in yielded] == [a.text for a in steered[:6] + unsteered[6:]]
    assert [a.text for a in steered[:6]] != [a.text for a in unsteered[:6]]  # the steering does change them
    with pytest.raises(ValueError, match="the 'probe' stage fits"):
        generate(embedded, prompts[:1], config, steerer=MeanDiffSteerer(conditional.spec, vectors))
    assert conditional.spec.describe() == "every token, where the prompt leaves the language open"
    assert SteeringSpec.from_json(conditional.spec.to_json()).conditional
