"""Real-model paths: GGUF loading (a tiny GGUF the tests write, and its failures), the fast path
against TransformerLens's own bridge on the embedded model and random-init Qwen2 and Gemma 3,
prompt prefixes, stop rules, and a smoke test on the real Qwen2.5-Coder GGUF when it has
been fetched."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from steering.engine import gguf as gguf_module
from steering.engine.activations import extract_activations
from steering.engine.generation import GenerationConfig, encode_prompts, generate
from steering.engine.hooks import thread_hooks
from steering.engine.models import HOOK_POINTS, ModelLoadError, load_model
from steering.engine.prefix import PromptPrefix, tag_success, tag_tokens
from steering.interface.cli import main

REAL_MODEL = Path(os.environ.get("STEERSCOPE_REAL_MODEL",
                                 Path.home() / ".cache" / "steerscope" / "models" / "qwen2.5-coder-0.5b-instruct.gguf"))
PROMPTS = ["Write a function that sorts an array with merge sort.", "Add two numbers."]


@pytest.fixture(scope="module")
def tiny_qwen2(tiny_qwen2_dir):
    return load_model(tiny_qwen2_dir)


@pytest.fixture(scope="module")
def tiny_gemma3(tmp_path_factory):
    from conftest import build_tiny_model

    return load_model(build_tiny_model(tmp_path_factory.mktemp("tiny_gemma3"), "gemma3"))


@pytest.fixture
def gguf_cache(tmp_path, monkeypatch):
    """A fresh conversion cache for this test."""
    monkeypatch.setattr(gguf_module, "cache_root", lambda: tmp_path / "gguf-cache")
    return tmp_path / "gguf-cache"


# --- GGUF ------------------------------------------------------------------------------------


def test_gguf_loads_like_its_hugging_face_directory_and_is_converted_once(tiny_gguf, tiny_qwen2, gguf_cache, monkeypatch):
    model = load_model(tiny_gguf)
    assert model.facts.source == "gguf" and model.facts.name == "tiny-qwen2"
    assert model.facts.architecture == "Qwen2ForCausalLM" and model.facts.n_layers == 3
    ids = torch.tensor([[5, 9, 30, 2, 7]])
    with torch.no_grad():
        assert torch.equal(model.hf_model(ids).logits, tiny_qwen2.hf_model(ids).logits)
    assert model.tokenizer("def f(x): return x")["input_ids"] == tiny_qwen2.tokenizer("def f(x): return x")["input_ids"]
    assert model.tokenizer.chat_template == tiny_qwen2.tokenizer.chat_template
    [converted] = [p for p in gguf_cache.iterdir() if not p.name.startswith(".")]
    assert (converted / "model.safetensors").is_file() and (converted / gguf_module.CONVERTED_MARK).is_file()

    def no_second_conversion(*_):
        raise AssertionError("the cached conversion should have been used")

    monkeypatch.setattr(gguf_module, "_convert", no_second_conversion)
    again = load_model(str(Path(tiny_gguf).parent))  # a directory holding one GGUF file
    assert again.facts.source == "gguf" and again.fingerprint == model.fingerprint


def test_gguf_loading_failures_are_clear(tiny_gguf, tmp_path, gguf_cache):
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(Path(tiny_gguf).read_bytes()[: Path(tiny_gguf).stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        load_model(str(truncated))
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"not a gguf file at all" * 100)
    with pytest.raises(ModelLoadError, match="not a readable GGUF"):
        load_model(str(garbage))
    import gguf

    odd = tmp_path / "odd" / "rwkv.gguf"
    odd.parent.mkdir()
    writer = gguf.GGUFWriter(str(odd), "rwkv6")
    writer.add_tensor("token_embd.weight", torch.zeros(4, 4).numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match="'rwkv6' model; transformers can dequantize only these GGUF architectures: .*qwen2"):
        load_model(str(odd))
    shutil.copy(tiny_gguf, odd.parent / "second.gguf")
    with pytest.raises(ModelLoadError, match="holds 2 GGUF files"):
        load_model(str(odd.parent))
    with pytest.raises(ModelLoadError, match="needs about .* GiB, but only"):
        load_model(tiny_gguf, max_memory_bytes=1000)
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a GGUF model"):
        load_model(str(not_a_model))
    assert not [p for p in gguf_cache.glob("*") if p.is_dir() and not p.name.startswith(".")]  # nothing half-written


def test_cli_loads_a_gguf(tiny_gguf, gguf_cache, capsys):
    assert main(["model", "--model", tiny_gguf]) == 0
    assert "Qwen2ForCausalLM" in capsys.readouterr().out
    assert main(["model", "--model", str(Path(tiny_gguf).with_name("absent.gguf"))]) == 2


# --- the fast path against TransformerLens ------------------------------------------------------


def _bridge_greedy(model, prompt: str, n: int, fwd_hooks=()) -> list[int]:
    """Greedy tokens through the TransformerLens bridge, a full forward per token, no cache:
    the path the engine took before it ran the Hugging Face model directly."""
    ids, _ = encode_prompts(model, [prompt])
    tokens = ids[0].tolist()
    with torch.no_grad(), model.bridge.hooks(fwd_hooks=list(fwd_hooks)):
        for _ in range(n):
            tokens.append(int(model.bridge(torch.tensor([tokens]))[0, -1].argmax()))
    return tokens[ids.shape[1]:]


def _push(activation, hook):
    return activation + 3.0  # a crude steering vector: every dimension up by 3


@pytest.mark.parametrize("fixture", ["embedded", "tiny_qwen2", "tiny_gemma3"])
def test_fast_path_gives_the_bridges_tokens_plain_and_steered(request, fixture):
    model = request.getfixturevalue(fixture)
    config = GenerationConfig(max_new_tokens=24, stop="none")
    prompt = "Write a function that integrates a function with Simpson's rule on n intervals."  # > the sliding window
    for hooks in ([], [("blocks.1.hook_out", _push)]):
        [answer] = generate(model, prompt, config, fwd_hooks=hooks)
        expected = _bridge_greedy(model, prompt, 24, hooks)
        # the engine stops at the end token; the reference runs on
        n = answer.n_tokens
        assert model.tokenizer.decode(expected[:n], skip_special_tokens=True).strip() == answer.text
        batched = generate(model, ["Add.", prompt], GenerationConfig(max_new_tokens=24, stop="none"), fwd_hooks=hooks)[1]
        assert batched.text == answer.text  # left padding and leaving rows change nothing


@pytest.mark.parametrize("fixture", ["embedded", "tiny_qwen2", "tiny_gemma3", "tiny_gpt2"])
def test_every_hook_point_reads_what_transformer_lens_reads(request, fixture):
    model = request.getfixturevalue(fixture)
    names = {point: model.hook_name(1, point) for point in HOOK_POINTS}
    names.update(neurons="blocks.1.mlp.hook_post", heads="blocks.1.attn.hook_z")
    ids, _ = encode_prompts(model, PROMPTS[:1], "```")
    _, cache = model.bridge.run_with_cache(ids, names_filter=lambda name: name in names.values())
    for point in HOOK_POINTS:
        got = extract_activations(model, PROMPTS[:1], layers=[1], hook_point=point, continuation="```", cache_dir=None)
        expected = cache[names[point]][0, -1].float().flatten()  # hook_z: [heads, d_head], read side by side
        assert torch.allclose(got[0, 0], expected, atol=1e-4), point
    seen = {}

    def keep(activation, hook):
        seen[hook.name] = activation.detach().clone()

    with torch.no_grad(), thread_hooks(model, [(names["neurons"], keep), (names["heads"], keep)]):
        model.hf_model(ids)
    assert torch.allclose(seen[names["neurons"]], cache[names["neurons"]], atol=1e-4)
    heads = cache[names["heads"]]  # [batch, pos, head, d_head] in TransformerLens
    assert torch.allclose(seen[names["heads"]], heads.reshape(*heads.shape[:2], -1), atol=1e-4)


def test_unsupported_hook_names_are_refused(tiny_qwen2):
    with pytest.raises(ValueError, match="not supported by the fast path"):
        with thread_hooks(tiny_qwen2, [("blocks.0.attn.hook_pattern", _push)]):
            pass
    with pytest.raises(ValueError, match="layers 0..2"):
        with thread_hooks(tiny_qwen2, [("blocks.7.hook_out", _push)]):
            pass


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


def test_prompt_prefix_reads_what_a_full_pass_reads(tiny_qwen2):
    prefix = PromptPrefix(tiny_qwen2, PROMPTS)
    tail = prefix.continue_with("```cpp")
    ids, mask = encode_prompts(tiny_qwen2, PROMPTS, "```cpp")
    with torch.no_grad():
        full = tiny_qwen2.hf_model(input_ids=ids, attention_mask=mask,
                                   position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    assert torch.allclose(tail, full[:, -tail.shape[1]:], atol=1e-4)
    assert torch.allclose(prefix.continue_with("```cpp", rows=[1]), tail[1:], atol=1e-4)
    assert torch.allclose(prefix.continue_with("```cpp"), tail)  # the cached prefix is left as it was



def test_the_prompts_shared_start_runs_once_and_they_read_as_each_prompt_alone(tiny_qwen2, monkeypatch):
    """Issue 29: a chat template's system turn starts every prompt. ``encode_prompts`` puts it in
    the first columns and ``prompt_cache`` runs it once for all rows; what each row then reads,
    and answers, is what its prompt alone reads and answers."""
    import steering.engine.generation as generation
    from steering.engine.generation import shared_columns

    prompts = PROMPTS + ["Parse a date written in the ISO 8601 format and return its parts."]
    ids, mask = encode_prompts(tiny_qwen2, prompts)
    shared = shared_columns(ids, mask)
    assert shared > 2 and all(torch.equal(encode_prompts(tiny_qwen2, [p])[0][0, :shared], ids[0, :shared]) for p in prompts)
    passes, forward = [], generation.forward
    monkeypatch.setattr(generation, "forward", lambda model, ids, *a, **k: passes.append(tuple(ids.shape)) or forward(model, ids, *a, **k))
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

def test_tag_success_reads_the_language_after_a_forced_fence(embedded):
    cpp = [t for t in ["Write a C++ function that sorts an array with merge sort.",
                       "Write a C++ function that returns the n-th Fibonacci number computed iteratively."]]
    assert tag_success([PromptPrefix(embedded, cpp)], "cpp") == 1.0
    assert tag_success([PromptPrefix(embedded, cpp)], "python") == 0.0
    assert tag_tokens(embedded.tokenizer, "cpp") and tag_tokens(embedded.tokenizer, "cpp") != tag_tokens(embedded.tokenizer, "java")


# --- the real model -----------------------------------------------------------------------------


@pytest.mark.skipif(not REAL_MODEL.is_file(), reason=f"the real model is not fetched ({REAL_MODEL}); "
                    "../shared/tools/fetch-real-model fetches it")
def test_real_qwen_loads_and_steers_two_tasks(monkeypatch):
    from steering.code.prompts import PromptSet
    from steering.methods.steer import MeanDiffSteerer, SteeringSpec

    # The dequantized model is cached by the file's hash: reuse the user's cache (a minute saved).
    monkeypatch.setenv("STEERSCOPE_CACHE", str(Path.home() / ".cache" / "steerscope"))
    model = load_model(str(REAL_MODEL))
    assert model.facts.architecture == "Qwen2ForCausalLM" and model.facts.n_layers == 24 and model.d_model == 896
    tasks = PromptSet.load().head(2).tasks
    layer = 12
    neutral = extract_activations(model, [t.neutral for t in tasks], layers=[layer], continuation="```", cache_dir=None)
    target = extract_activations(model, [t.prompts["cpp"] for t in tasks], layers=[layer], continuation="```", cache_dir=None)
    mean = torch.zeros(model.n_layers, model.d_model)
    mean[layer] = (target - neutral).mean(dim=0)[0]
    steerer = MeanDiffSteerer(SteeringSpec((layer,), (4.0,), "mean_diff"), mean)
    config = GenerationConfig(max_new_tokens=24, stop="tag")
    plain = generate(model, [t.neutral for t in tasks], config)
    steered = generate(model, [t.neutral for t in tasks], config, fwd_hooks=steerer.hooks(model))
    assert all(a.detection.fenced for a in plain), [a.text for a in plain]  # the code-block instruction works
    assert [a.detection.language for a in steered] == ["cpp", "cpp"], [a.text for a in steered]
