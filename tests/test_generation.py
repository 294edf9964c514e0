"""Generation: the prompt format, batching with a shared start, KV-cached decoding that matches a full
forward, seeded sampling, stop rules, and decoding steered and plain rows side by side."""

from __future__ import annotations

import pytest
import torch

from conftest import wrap_forward
from steering.code.fences import fence_written
from steering.engine.forward import encode_prompts, shared_columns
from steering.engine.generation import GenerationConfig, generate

def test_greedy_is_deterministic_and_batch_independent(tiny_llama):
    config = GenerationConfig(max_new_tokens=12)
    alone = generate(tiny_llama, ["def f"], config)[0]
    batched = generate(tiny_llama, ["a longer prompt first", "def f"], config)[1]
    assert alone.text == batched.text and alone.n_tokens == 12


def test_kv_cached_generation_matches_a_full_forward(tiny_llama):
    answer = generate(tiny_llama, ["int f"], GenerationConfig(max_new_tokens=6, stop="none"))[0]
    ids, _ = encode_prompts(tiny_llama, ["int f"])
    tokens = ids[0].tolist()
    for _ in range(6):  # greedy without any cache, one full forward per token
        logits = tiny_llama.bridge(torch.tensor([tokens]))
        tokens.append(int(logits[0, -1].argmax()))
    assert tiny_llama.tokenizer.decode(tokens[ids.shape[1]:]).strip() == answer.text


def test_sampling_is_seeded_per_prompt(tiny_llama):
    config = GenerationConfig(max_new_tokens=10, temperature=1.0, seed=7, batch_size=2)
    first = [g.text for g in generate(tiny_llama, ["x", "y", "z"], config)]
    again = [g.text for g in generate(tiny_llama, ["x", "y", "z"], GenerationConfig(max_new_tokens=10, temperature=1.0, seed=7, batch_size=3))]
    assert first == again
    other = [g.text for g in generate(tiny_llama, ["x", "y", "z"], GenerationConfig(max_new_tokens=10, temperature=1.0, seed=8))]
    assert other != first


def test_bad_settings_are_refused(tiny_llama):
    with pytest.raises(ValueError, match="temperature"):
        GenerationConfig(temperature=float("nan"))
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationConfig(max_new_tokens=0)
    with pytest.raises(ValueError, match="non-empty"):
        generate(tiny_llama, [""])


def test_embedded_model_answers_in_a_closed_code_block(embedded):
    answer = generate(embedded, "Write a Python function that returns the n-th Fibonacci number computed iteratively.")[0]
    assert answer.text.startswith("```python\n") and answer.text.endswith("```")
    assert answer.detection.language == "python" and answer.detection.parses


def test_long_work_keeps_the_progress_display_alive(embedded):
    """Every decoding step beats, so a display refreshes (and a dashboard's Stop lands) while no
    answer has finished yet; outside a heartbeat, a beat does nothing."""
    from steering.core.progress import beat, heartbeat
    from steering.engine.generation import GenerationConfig, generate

    beats = []
    with heartbeat(lambda: beats.append(1), every=0):
        generate(embedded, "Write a loop.", GenerationConfig(max_new_tokens=6, stop="none"))
    assert len(beats) >= 6
    beat()  # no heartbeat: nothing to call
    with heartbeat(lambda: beats.append(1), every=3600):  # throttled
        generate(embedded, "Write a loop.", GenerationConfig(max_new_tokens=6, stop="none"))
    assert len(beats) < 12


@pytest.mark.parametrize("schedule", ["all", "fence"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_side_by_side_decodes_baseline_and_steered_in_one_batch_as_separate_calls_would(embedded, schedule, temperature):
    """The per-row steering mask: only the second row is steered; both rows keep the one seed;
    what streams is what the call returns."""
    from steering.methods.steer import MeanDiffSteerer, SteeringSpec
    from steering.pipeline.evaluation import side_by_side

    vectors = torch.zeros(embedded.n_layers, embedded.d_model)
    vectors[4] = torch.randn(embedded.d_model, generator=torch.Generator().manual_seed(0))
    steerer = MeanDiffSteerer(SteeringSpec((4,), (6.0,), "mean_diff", schedule=schedule), vectors)
    config, prompt = GenerationConfig(max_new_tokens=40, temperature=temperature, seed=3), "Write a function that sorts a list."
    streamed = []
    baseline, steered = side_by_side(embedded, prompt, steerer, config, on_token=lambda rows: streamed.append([list(r) for r in rows]))
    assert baseline.text == generate(embedded, prompt, config)[0].text
    assert steered.text == generate(embedded, prompt, config, steerer=steerer)[0].text != baseline.text
    assert streamed[-1] == [baseline.tokens, steered.tokens]
    assert all(len(step[1]) <= len(later[1]) for step, later in zip(streamed, streamed[1:]))  # text only grows


def test_side_by_side_streams_the_asked_answer_as_a_third_unsteered_row(embedded):
    """Issue 17: the ceiling decodes in the same batch, unsteered, as its own call would."""
    from steering.methods.steer import MeanDiffSteerer, SteeringSpec
    from steering.pipeline.evaluation import side_by_side

    vectors = torch.zeros(embedded.n_layers, embedded.d_model)
    vectors[4] = torch.randn(embedded.d_model, generator=torch.Generator().manual_seed(0))
    steerer = MeanDiffSteerer(SteeringSpec((4,), (6.0,), "mean_diff"), vectors)
    config = GenerationConfig(max_new_tokens=32, seed=1)
    prompt, asked = "Write a function that sorts a list.", "Write a C++ function that sorts a list."
    streamed = []
    answers = side_by_side(embedded, prompt, steerer, config, on_token=lambda rows: streamed.append(len(rows)), asked=asked)
    assert len(answers) == 3 and set(streamed) == {3}
    assert answers[2].text == generate(embedded, asked, config)[0].text
    assert answers[0].text == generate(embedded, prompt, config)[0].text


def test_a_task_set_decodes_baseline_and_steered_in_one_batch_as_two_calls_would(embedded):
    """Issues 17 and 19: each batch's baseline and steered rows share one batch (the per-row
    mask), with the seeds and answers of two separate calls, and each batch is handed out as it
    finishes."""
    from steering.methods.steer import MeanDiffSteerer, SteeringSpec
    from steering.pipeline.evaluation import evaluate_steering

    vectors = torch.zeros(embedded.n_layers, embedded.d_model)
    vectors[4] = torch.randn(embedded.d_model, generator=torch.Generator().manual_seed(0))
    steerer = MeanDiffSteerer(SteeringSpec((4,), (6.0,), "mean_diff"), vectors)
    prompts = ["Write a function that sorts a list.", "Write a loop that sums numbers.", "Compute a mean.",
               "Reverse a string."]
    batches = []
    for temperature in (0.0, 1.0):
        result = evaluate_steering(embedded, prompts, steerer, "cpp", temperature=temperature, seed=5, max_new_tokens=24,
                                   batch_size=3, on_batch=lambda start, b, s: batches.append((start, len(b), len(s))))
        config = GenerationConfig(max_new_tokens=24, temperature=temperature, seed=5, batch_size=3)
        assert [a.text for a in result["answers"]["baseline"]] == [a.text for a in generate(embedded, prompts, config)]
        assert [a.text for a in result["answers"]["steered"]] == \
            [a.text for a in generate(embedded, prompts, config, steerer=steerer)]
    assert batches == [(0, 3, 3), (3, 1, 1)] * 2


def test_the_command_line_prints_why_an_answer_stopped(dashboard_runs, monkeypatch, capsys):
    """Issue 18: `steer` prints the reason an answer stopped early, under that answer."""
    from conftest import DASHBOARD_RUN

    from steering.interface.cli.main import main

    wrap_forward(monkeypatch, lambda real, *a, **k: (lambda out: (out[0] * float("nan"), out[1]))(real(*a, **k)))
    assert main(["steer", str(dashboard_runs / DASHBOARD_RUN), "--prompt", "Sort a list."]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 2 and all("stopped after 0 tokens" in n and "NaN or infinite" in n for n in notes)


def test_pairs_decode_each_batch_with_its_steered_twins_as_two_calls_would(embedded):
    """Issue 19: the evaluation's baseline and steered answers decode together, each batch of the
    plain call with its steered twins (the per-row mask), copies of a prompt included, and give
    the answers of two separate calls, greedy and sampled."""
    from steering.engine.generation import generate_pairs
    from steering.methods.steer import MeanDiffSteerer, SteeringSpec

    vectors = torch.zeros(embedded.n_layers, embedded.d_model)
    vectors[4] = torch.randn(embedded.d_model, generator=torch.Generator().manual_seed(1))
    steerer = MeanDiffSteerer(SteeringSpec((4,), (6.0,), "mean_diff"), vectors)
    prompts = [p for p in ("Sort a list.", "Sum numbers.", "Compute a mean.", "Reverse a string.", "Parse a date.")
               for _ in range(2)]
    for temperature in (0.0, 1.0):
        config = GenerationConfig(max_new_tokens=20, temperature=temperature, seed=9, batch_size=2)
        plain, steered = generate_pairs(embedded, prompts, config, steerer)
        assert [a.tokens for a in plain] == [a.tokens for a in generate(embedded, prompts, config)]
        assert [a.tokens for a in steered] == [a.tokens for a in generate(embedded, prompts, config, steerer=steerer)]
        assert [a.tokens for a in plain] != [a.tokens for a in steered]


def test_candidates_decode_side_by_side_as_separate_calls_would(embedded):
    """Issue 19: the sweep's candidates (several steerings, other schedules and strengths, G-ACT
    and mean difference on the same layer) decode in one batch, each copy of the prompts steered
    by its own, and give each separate call's answers, greedy and sampled."""
    from steering.engine.generation import generate_each
    from steering.methods.steer import MeanDiffSteerer, SteeringSpec

    vectors = torch.zeros(embedded.n_layers, embedded.d_model)
    vectors[4] = torch.randn(embedded.d_model, generator=torch.Generator().manual_seed(1))
    steerers = [None] + [MeanDiffSteerer(SteeringSpec((4,), (alpha,), "mean_diff", schedule=schedule, window=3), vectors)
                         for alpha, schedule in ((6.0, "all"), (6.0, "window"), (6.0, "fence"), (3.0, "all"))]
    prompts = ["Sort a list.", "Sum numbers.", "Compute a mean.", "Sort a list.", "Parse a date."]
    for temperature in (0.0, 1.0):
        config = GenerationConfig(max_new_tokens=24, temperature=temperature, seed=9, batch_size=2)
        together = generate_each(embedded, prompts, config, steerers)
        apart = [generate(embedded, prompts, config, steerer=s) for s in steerers]
        assert [[a.tokens for a in answers] for answers in together] == [[a.tokens for a in answers] for answers in apart]
        assert len({tuple(map(tuple, (a.tokens for a in answers))) for answers in apart}) == len(steerers)  # all differ


def test_each_prompt_runs_its_prompt_pass_once_whatever_its_copies_and_their_steerings(embedded, monkeypatch):
    """Issue 29: steering acts from the last prompt token on, so the prompt up to it runs once per
    different prompt, unsteered; only the last token runs per (prompt, steering) row. The answers
    are those of whole prompt passes (hooks attached by the caller, as ``artifacts.apply`` does,
    keep whole passes: such a hook may steer the whole prompt)."""
    from steering.engine.generation import generate_each
    from steering.engine.hooks import thread_hooks
    from steering.methods.steer import MeanDiffSteerer, SteeringSpec

    vectors = torch.zeros(embedded.n_layers, embedded.d_model)
    vectors[4] = torch.randn(embedded.d_model, generator=torch.Generator().manual_seed(1))
    steerers = [None] + [MeanDiffSteerer(SteeringSpec((4,), (alpha,), "mean_diff", schedule=schedule), vectors)
                         for alpha, schedule in ((6.0, "all"), (6.0, "fence"), (3.0, "all"))]
    prompts = ["Sort a list.", "Sum numbers.", "Compute a mean."]
    config = GenerationConfig(max_new_tokens=16, batch_size=3)
    passes = []
    wrap_forward(monkeypatch, lambda real, model, ids, *a, **k: passes.append(tuple(ids.shape)) or real(model, ids, *a, **k))
    shared = generate_each(embedded, prompts, config, steerers)
    ids, mask = encode_prompts(embedded, prompts)
    width, start = ids.shape[1], shared_columns(ids, mask)
    # the template's shared start once, the 3 prompts' own prefixes once, then 12 rows' last token
    assert start > 1 and passes[:3] == [(1, start), (3, width - 1 - start), (12, 1)]
    passes.clear()
    with thread_hooks(embedded, [("blocks.0.hook_resid_post", lambda act, hook: None)]):  # a caller's hook
        whole = generate_each(embedded, prompts, config, steerers)
    assert passes[0] == (12, width)
    assert [[a.tokens for a in answers] for answers in shared] == [[a.tokens for a in answers] for answers in whole]


def test_a_steering_until_the_fence_forks_from_every_token_at_its_fence_line(embedded, monkeypatch):
    """Issue 29: steering until the fence is steering every token until the fence line, so its
    rows decode as the every-token rows until there and fork from a copy of their cache. The
    answers are those decoded apart (greedy and sampled, a fence line written or never, both stop
    rules), fewer rows run, and the progress still adds up to one answer per row."""
    from steering.engine.generation import generate_each
    from steering.methods.steer import MeanDiffSteerer, SteeringSpec

    vectors = torch.zeros(embedded.n_layers, embedded.d_model)
    vectors[4] = torch.randn(embedded.d_model, generator=torch.Generator().manual_seed(1))
    steerers = [MeanDiffSteerer(SteeringSpec((4,), (6.0,), "mean_diff", schedule=schedule), vectors)
                for schedule in ("all", "fence")] + [None]
    prompts = ["Sort a list.", "Sum numbers.", "Compute a mean.", "Sort a list.", "Parse a date."]
    rows = []
    wrap_forward(monkeypatch, lambda real, model, ids, *a, **k: rows.append(ids.shape[0]) or real(model, ids, *a, **k))
    for config in (GenerationConfig(max_new_tokens=40, seed=9, batch_size=2),
                   GenerationConfig(max_new_tokens=40, temperature=1.0, seed=9, batch_size=2, stop="tag", after_tag=6)):
        rows.clear()
        counts = []
        forked = generate_each(embedded, prompts, config, steerers, on_answers=counts.append, forks={1: 0})
        forked_rows = sum(rows)
        rows.clear()
        apart = generate_each(embedded, prompts, config, steerers)
        assert [[(a.tokens, a.stop_reason) for a in answers] for answers in forked] == \
            [[(a.tokens, a.stop_reason) for a in answers] for answers in apart]
        assert [a.tokens for a in apart[0]] != [a.tokens for a in apart[1]]  # the fork did go its own way
        assert not all(fence_written(a.text) for a in apart[0])  # and some leads never wrote a fence line
        assert forked_rows < sum(rows)
        assert sum(counts) == pytest.approx(len(steerers) * len(prompts))
    with pytest.raises(ValueError, match="fork 0 -> 1"):
        generate_each(embedded, prompts, GenerationConfig(max_new_tokens=4), steerers, forks={0: 1})


def test_identical_prompts_share_one_prefill_and_keep_their_own_seeds(tiny_qwen2):
    config = GenerationConfig(max_new_tokens=10, temperature=1.0, seed=3, stop="none")
    together = generate(tiny_qwen2, ["def f", "def f", "int g"], config)
    alone = [generate(tiny_qwen2, [p], GenerationConfig(max_new_tokens=10, temperature=1.0, seed=3 + i, stop="none"))[0]
             for i, p in enumerate(["def f", "def f", "int g"])]
    assert [a.text for a in together] == [a.text for a in alone]
    assert together[0].text != together[1].text  # same prompt, own seed


def test_batches_count_different_prompts_and_cap_the_rows():
    from steering.engine.generation import REPEAT_ROWS, _batches

    assert _batches(list("aaaabbbbcccc"), 2) == [(0, 8), (8, 12)]  # 4 samples of each prompt ride along
    assert _batches(list("abcdefg"), 3) == [(0, 3), (3, 6), (6, 7)]
    assert _batches(["x"] * 10, 2) == [(0, 2 * REPEAT_ROWS), (2 * REPEAT_ROWS, 10)]
    assert _batches([], 3) == []


def test_progress_counts_every_answer_as_it_finishes(embedded):
    calls = []
    prompts = ["Write a Python function that adds two numbers.", "Write a C++ function that sorts an array with merge sort.",
               "Add."] * 2
    generate(embedded, prompts, GenerationConfig(max_new_tokens=40, batch_size=2), on_answers=calls.append)
    assert sum(calls) == pytest.approx(len(prompts)) and len(calls) >= 3  # answers reported as they end, not only per batch
    assert len(calls) >= 10 and all(c > 0 for c in calls)  # a share of an answer at every decoding step
