"""Generation: the prompt format, batching with a shared start, KV-cached decoding that matches a full
forward, seeded sampling, stop rules, and decoding steered and plain rows side by side."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from conftest import wrap_forward
from steering.code.fences import closes_code_block, cut_after_block, fence_written
from steering.engine.activations import extract_activations
from steering.engine.forward import encode_prompts, format_prompt, shared_columns
from steering.engine.generation import GenerationConfig, generate
from steering.engine.prefix import PromptPrefix

PROMPTS = ["Write a function that sorts an array with merge sort.", "Add two numbers."]


def test_prompt_format_uses_the_chat_template(embedded, tiny_llama):
    text = format_prompt(embedded.tokenizer, "Sort a list.")
    assert text.startswith("<|endoftext|><|user|>\nSort a list.") and text.endswith("<|assistant|>\n")
    assert format_prompt(tiny_llama.tokenizer, "hi") == "<|endoftext|>hi\n"  # no template: plain text
    with pytest.raises(ValueError, match="empty"):
        format_prompt(embedded.tokenizer, "  ")


def test_fence_helpers():
    assert closes_code_block("```py\nx = 1\n```") and not closes_code_block("```py\nx = 1\n")
    assert cut_after_block("```py\nx\n```\nand more") == "```py\nx\n```"


def test_rows_share_their_common_start_then_are_padded_before_their_own_tokens(embedded):
    """The chat template's start that every row has comes first (issue 29: it runs once), then
    each row's padding, then its own tokens, so that the last column is every row's last token."""
    prompts = ["Sort.", "Add two numbers and return their sum, a much longer prompt."]
    ids, mask = encode_prompts(embedded, prompts)
    shared = shared_columns(ids, mask)
    assert shared == len(embedded.tokenizer("<|endoftext|><|user|>\n", add_special_tokens=False)["input_ids"])
    assert mask[0, :shared].all() and mask[0, shared] == 0 and mask[0, -1] == 1 and mask[1].all()
    assert ids[0, shared] == embedded.tokenizer.pad_token_id
    for i, prompt in enumerate(prompts):  # a row's own tokens, in order, are its prompt encoded alone
        assert ids[i][mask[i].bool()].tolist() == encode_prompts(embedded, [prompt])[0][0].tolist()


def test_continuations_are_appended_as_their_own_tokens(embedded):
    tok = embedded.tokenizer
    ids, mask = encode_prompts(embedded, ["Sort.", "Sort a longer list."], "```cpp")
    tail = tok("```cpp", add_special_tokens=False)["input_ids"]
    assert ids[:, -len(tail):].tolist() == [tail, tail] and mask[:, -len(tail):].all()
    ids, _ = encode_prompts(embedded, ["a", "b"], ["x", "yy zz"])
    assert tok.decode(ids[1]).endswith("<|assistant|>\nyy zz")
    with pytest.raises(ValueError, match="2 prompts but 1 continuations"):
        encode_prompts(embedded, ["a", "b"], ["x"])


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


def test_hooks_of_one_thread_never_touch_another(tiny_llama):
    """Two generations at once on one model, one with a hook that wrecks the residual stream."""
    config = GenerationConfig(max_new_tokens=20)
    expected = generate(tiny_llama, ["def f"], config)[0].text
    started = threading.Barrier(2)
    results = {}

    def wreck(activation, hook):
        return activation * 0 + 100.0

    def steered():
        started.wait()
        results["steered"] = generate(tiny_llama, ["def f"], config, fwd_hooks=[("blocks.1.hook_out", wreck)])[0].text

    def plain():
        started.wait()
        results["plain"] = [generate(tiny_llama, ["def f"], config)[0].text for _ in range(3)]

    threads = [threading.Thread(target=steered), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["plain"] == [expected] * 3
    assert results["steered"] != expected
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in tiny_llama.hf_model.modules())


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


def test_non_finite_scores_stop_the_answer_with_a_reason(embedded):
    """Issue 18: a residual stream that turns NaN (steering far too strong, broken vectors) ends
    the answer with a reason, never an empty answer without a word or a sampling crash."""
    config = GenerationConfig(max_new_tokens=8, temperature=1.0, seed=1)

    def wreck(act, hook):
        return act * float("nan")

    for temperature in (0.0, 1.0):
        answer = generate(embedded, ["Sort a list.", "Sum a list."], GenerationConfig(max_new_tokens=8, temperature=temperature),
                          fwd_hooks=[("blocks.1.hook_resid_post", wreck)])[0]
        assert answer.n_tokens == 0 and "NaN or infinite" in answer.stop_reason
    assert generate(embedded, "Sort a list.", config)[0].stop_reason is None


def test_a_temperature_near_zero_samples_the_greedy_answer(embedded):
    """Issue 18: 1e-300 used to overflow to inf and then NaN probabilities; the scores are now
    shifted by their maximum before they are divided, so a tiny temperature is greedy."""
    greedy = generate(embedded, "Sort a list.", GenerationConfig(max_new_tokens=12))[0]
    tiny = generate(embedded, "Sort a list.", GenerationConfig(max_new_tokens=12, temperature=1e-300, seed=3))[0]
    assert tiny.text == greedy.text and tiny.stop_reason is None


def test_a_chat_template_that_hangs_on_a_long_prompt_stops_in_seconds(tiny_qwen2, monkeypatch):
    """Issue 18: the load check renders a one-line prompt; a template that loops only on longer
    prompts is stopped at generation by the render's deadline, in one line."""
    import time

    from steering.engine.chat import RENDER_SECONDS, ChatTemplateError

    slow = ("{% if messages[-1]['content'] | length > 500 %}{% for i in range(99999) %}{% for j in range(99999) %}"
            "{% endfor %}{% endfor %}{% endif %}{{ messages[-1]['content'] }}")
    monkeypatch.setattr(tiny_qwen2.tokenizer, "chat_template", slow)
    assert generate(tiny_qwen2, "short", GenerationConfig(max_new_tokens=2))
    start = time.monotonic()
    with pytest.raises(ChatTemplateError, match="took more than"):
        generate(tiny_qwen2, "x" * 600, GenerationConfig(max_new_tokens=2))
    assert time.monotonic() - start < RENDER_SECONDS + 2
    monkeypatch.setattr(tiny_qwen2.tokenizer, "chat_template", "{{ messages[-1]['content'] * 1000 }}")
    with pytest.raises(ChatTemplateError, match="may add at most"):
        generate(tiny_qwen2, "y" * 600, GenerationConfig(max_new_tokens=2))


def test_a_template_without_a_system_role_gets_the_instruction_after_the_prompt(tiny_qwen2, monkeypatch):
    """Templates such as Gemma 2's raise on a system message; the instruction then follows the
    prompt (the limits of chat.py are never retried that way)."""
    refuses = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
               "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}")
    monkeypatch.setattr(tiny_qwen2.tokenizer, "chat_template", refuses)
    assert format_prompt(tiny_qwen2.tokenizer, "Sort a list.", "Use a code block.") == "<user>Sort a list.\n\nUse a code block."


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


def test_stop_rules(embedded):
    prompt = "Write a Python function that returns the n-th Fibonacci number computed iteratively."
    tag = generate(embedded, prompt, GenerationConfig(stop="tag"))[0]
    block = generate(embedded, prompt, GenerationConfig(stop="block"))[0]
    assert tag.text == "```python" and tag.detection.language == "python" and tag.detection.fenced
    assert block.text.startswith("```python\n") and block.text.endswith("```") and block.n_tokens > tag.n_tokens
    with pytest.raises(ValueError, match="unknown stop rule"):
        GenerationConfig(stop="never")


def test_the_prompts_shared_start_runs_once_and_they_read_as_each_prompt_alone(tiny_qwen2, monkeypatch):
    """Issue 29: a chat template's system turn starts every prompt. ``encode_prompts`` puts it in
    the first columns and ``prompt_cache`` runs it once for all rows; what each row then reads,
    and answers, is what its prompt alone reads and answers."""
    from steering.engine.forward import shared_columns

    prompts = PROMPTS + ["Parse a date written in the ISO 8601 format and return its parts."]
    ids, mask = encode_prompts(tiny_qwen2, prompts)
    shared = shared_columns(ids, mask)
    assert shared > 2 and all(torch.equal(encode_prompts(tiny_qwen2, [p])[0][0, :shared], ids[0, :shared]) for p in prompts)
    passes = []
    wrap_forward(monkeypatch, lambda real, model, ids, *a, **k: passes.append(tuple(ids.shape)) or real(model, ids, *a, **k))
    prefix = PromptPrefix(tiny_qwen2, prompts)
    assert passes == [(1, shared), (len(prompts), ids.shape[1] - 1 - shared)]
    tail = prefix.continue_with("```cpp")
    for i, prompt in enumerate(prompts):
        assert torch.allclose(tail[i], PromptPrefix(tiny_qwen2, [prompt]).continue_with("```cpp")[0], atol=1e-4)
    config = GenerationConfig(max_new_tokens=12)
    assert [a.tokens for a in generate(tiny_qwen2, prompts, config)] == \
        [generate(tiny_qwen2, [prompt], config)[0].tokens for prompt in prompts]
    for position, tail in (("last", ""), ("answer", "```cpp\nint x = 1;")):  # activations too, read after it
        together = extract_activations(tiny_qwen2, prompts, position=position, continuation=tail, cache_dir=False)
        alone = extract_activations(tiny_qwen2, prompts, position=position, continuation=tail, cache_dir=False, batch_size=1)
        assert torch.allclose(together, alone, atol=1e-4)
