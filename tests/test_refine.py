"""Refinement by gradient through the frozen model, in batch and online."""

from __future__ import annotations

from dataclasses import replace

import torch

from steering.engine.prefix import PromptPrefix
from steering.methods.refine import online_answers, opening_loss, refine_steering


def test_refinement_learns_a_gain_that_lowers_the_loss_and_leaves_the_input_alone(fitted_pipeline, embedded):
    weak = fitted_pipeline.steerer("gact_unrefined")
    weak = replace(weak, spec=replace(weak.spec, alphas=tuple(a * 0.3 for a in weak.spec.alphas)))
    prefix = PromptPrefix(embedded, fitted_pipeline.context.neutral_prompts)
    before = opening_loss(weak, prefix, "cpp").item()
    refined, losses = refine_steering(weak, prefix, "cpp", steps=15, lr=0.1, prox=0.01, fluency=1.0, gains=True,
                                      offsets=True, batch_size=12)
    assert weak.log_gains is None and weak.offsets is None  # the input is never changed
    assert (torch.exp(refined.log_gains[list(weak.spec.layers)]) > 1.05).all()  # it learned to steer harder
    assert refined.offsets.abs().sum() > 0
    assert opening_loss(refined, prefix, "cpp").item() < before
    assert len(losses) == 15
    probe_only, _ = refine_steering(weak, prefix, "cpp", steps=3, gains=False)
    assert probe_only.log_gains is None


def test_online_refinement_answers_each_prompt_from_the_same_start(fitted_pipeline, embedded):
    from steering.engine.generation import GenerationConfig

    steerer = fitted_pipeline.steerer("gact_unrefined")
    snapshot = steerer.probe.coef_.clone()
    prompts = fitted_pipeline.context.neutral_prompts[:2]
    answers = online_answers(steerer, embedded, prompts, "cpp", GenerationConfig(max_new_tokens=24), steps=2)
    assert len(answers) == 2 and torch.equal(steerer.probe.coef_, snapshot) and steerer.log_gains is None
    # The second prompt alone (with the seed it had as prompt 1) answers the same: nothing carried over.
    alone = online_answers(steerer, embedded, prompts[1:], "cpp", GenerationConfig(max_new_tokens=24, seed=1), steps=2)
    assert alone[0].text == answers[1].text and alone[0].seed == answers[1].seed
