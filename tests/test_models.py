"""Loading a model: the embedded one, Hugging Face directories, dtypes, and the fast path
against TransformerLens's own bridge (tokens plain and steered, every hook point)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from steering.engine.activations import extract_activations
from steering.engine.forward import encode_prompts
from steering.engine.generation import GenerationConfig, generate
from steering.engine.hooks import thread_hooks
from steering.engine.models import (CPU_BF16_MIN_PARAMS, HOOK_POINTS, ModelLoadError, check_layers, choose_dtype,
                                    cpu_bf16_units, load_model, pick_dtype)
from steering.interface.cli.main import main

PROMPTS = ["Write a function that sorts an array with merge sort.", "Add two numbers."]


def test_embedded_model_loads_with_no_argument(embedded):
    facts = embedded.facts
    assert facts.source == "embedded" and facts.architecture == "LlamaForCausalLM"
    assert facts.n_layers >= 8 and facts.d_model > 0 and facts.n_heads > 0
    assert facts.device == "cpu" and facts.dtype == "float32"
    assert 1e6 < facts.n_params and facts.n_hook_points > facts.n_layers
    for point in HOOK_POINTS:
        assert embedded.hook_name(facts.n_layers - 1, point) in embedded.bridge.hook_dict


def test_embedded_model_stays_small():
    from steering.engine.models import EMBEDDED_MODEL_DIR

    total = sum(f.stat().st_size for f in EMBEDDED_MODEL_DIR.iterdir())
    assert total < 20 * 2**20
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (EMBEDDED_MODEL_DIR / name).is_file()


@pytest.mark.parametrize("fixture, arch", [("tiny_llama", "LlamaForCausalLM"), ("tiny_gpt2", "GPT2LMHeadModel")])
def test_random_init_models_load_through_the_same_path(request, fixture, arch):
    model = request.getfixturevalue(fixture)
    assert model.facts.architecture == arch and model.facts.source == "local"
    assert model.facts.n_layers == 3 and model.facts.d_model == 64
    for point in HOOK_POINTS:
        assert model.hook_name(2, point) in model.bridge.hook_dict
    logits = model.bridge(torch.tensor([[1, 2, 3]]))
    assert logits.shape == (1, 3, model.facts.d_vocab)


def test_layers_and_hook_points_are_checked(tiny_llama):
    with pytest.raises(ValueError, match="layer 3 is out of range: this model has layers 0..2"):
        tiny_llama.hook_name(3)
    with pytest.raises(ValueError, match="unknown hook point 'resid_mid'"):
        tiny_llama.hook_name(0, "resid_mid")
    with pytest.raises(ValueError, match="out of range"):
        check_layers([-1], 3)


def test_unknown_hub_name_fails_fast_and_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache"):
        load_model("no-such-org/no-such-model")


def test_missing_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="no model directory"):
        load_model(str(tmp_path / "absent"))
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_model(str(tmp_path))


def _copy(src, tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def test_corrupt_checkpoint(tiny_llama_dir, tmp_path):
    broken = _copy(tiny_llama_dir, tmp_path, "corrupt")
    (broken / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    with pytest.raises(ModelLoadError, match="could not be loaded \\(corrupt or incompatible\\)"):
        load_model(str(broken))


def test_truncated_checkpoint_is_not_silently_random(tiny_llama_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    partial = _copy(tiny_llama_dir, tmp_path, "partial")
    weights = load_file(partial / "model.safetensors")
    dropped = sorted(weights)[0]
    del weights[dropped]
    save_file(weights, partial / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="lacks 1 weight"):
        load_model(str(partial))


def test_pickled_checkpoints_are_refused(tiny_llama_dir, tmp_path):
    pickled = _copy(tiny_llama_dir, tmp_path, "pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="does not unpickle"):
        load_model(str(pickled))


def test_too_large_for_memory_is_refused_before_loading(tiny_llama_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="needs about .* but only"):
        load_model(tiny_llama_dir, max_memory_bytes=1000)
    huge = _copy(tiny_llama_dir, tmp_path, "huge")
    config = json.loads((huge / "config.json").read_text())
    config.update(hidden_size=16384, intermediate_size=65536, num_hidden_layers=200)
    (huge / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="GiB"):
        load_model(str(huge))


def test_dtype_and_device_choices():
    assert pick_dtype(None, torch.device("cpu")) == torch.float32
    assert pick_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        pick_dtype("float8", torch.device("cpu"))


@pytest.mark.parametrize("amx, avx512_bf16, units", [(True, True, "AMX"), (False, True, "AVX-512 BF16"), (False, False, None)])
def test_auto_runs_bfloat16_on_a_cpu_that_computes_it_natively_for_models_of_100m_parameters(monkeypatch, amx, avx512_bf16, units):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    cpu = torch.device("cpu")
    assert cpu_bf16_units() == units
    dtype, why = choose_dtype("auto", cpu, n_params=CPU_BF16_MIN_PARAMS)
    assert dtype == (torch.bfloat16 if units else torch.float32)
    assert (units in why) if units else ("no native bfloat16" in why)
    dtype, why = choose_dtype(None, cpu, n_params=CPU_BF16_MIN_PARAMS - 1)  # the embedded model's pace is Python's
    assert dtype == torch.float32 and ("under the 100M" in why if units else "no native bfloat16" in why)
    assert choose_dtype("float32", cpu, n_params=CPU_BF16_MIN_PARAMS) == (torch.float32, "given (--dtype)")


def test_the_model_command_shows_the_dtype_and_why(capsys):
    from steering.interface.cli.main import main

    assert main(["model"]) == 0
    out = capsys.readouterr().out
    assert "dtype_reason" in out and "float32" in out


def test_a_run_reopens_in_the_dtype_it_was_made_in(tmp_path, capsys):
    from steering.code.prompts import PromptSet

    prompts = tmp_path / "four.jsonl"
    prompts.write_text(PromptSet.load().head(4).to_jsonl())
    run = str(tmp_path / "run")
    assert main(["extract", "--out", run, "--dtype", "float32", "--prompts", str(prompts)]) == 0  # the embedded model
    capsys.readouterr()
    assert main(["cluster", run, "--dtype", "bfloat16"]) == 2
    assert "made in float32, loaded in bfloat16: load it with dtype float32" in capsys.readouterr().out
    assert main(["cluster", run]) == 0  # without --dtype: the run's own


def test_command_line_prints_facts_or_a_clear_error(tiny_llama_dir, capsys):
    assert main(["model", "--model", tiny_llama_dir]) == 0
    assert "n_layers" in capsys.readouterr().out
    assert main(["model", "--model", "/no/such/dir"]) == 2
    out = capsys.readouterr().out
    assert "error: no model directory" in out and "Traceback" not in out


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
