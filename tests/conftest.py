"""Shared fixtures: the embedded model, and tiny random-init models the tests build and save
themselves (no network)."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach for the network
# Activation caches go to a fresh folder, not the user's ~/.cache (set before steering is imported).
os.environ["STEERSCOPE_CACHE"] = tempfile.mkdtemp(prefix="steerscope-test-cache-")


def hashes(folder) -> dict[str, str]:
    """Every file under ``folder`` by relative path, with its SHA-256: equal dicts mean a
    byte-identical folder."""
    import hashlib
    from pathlib import Path

    root = Path(folder)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def blobs(n=60, layers=3, d=8, k=3, seed=0):
    """Deltas with k well-separated clusters in every layer."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    centres = torch.randn(k, layers, d, generator=g) * 5
    return centres[labels] + torch.randn(n, layers, d, generator=g) * 0.3, labels.numpy()


def _tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(["def f(x):\n    return x\n", "int f(int x) { return x; }"] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", pad_token="<|endoftext|>")


TINY_CHAT_TEMPLATE = ("{% for m in messages %}<|endoftext|>{{ m['role'] }}\n{{ m['content'] }}\n{% endfor %}"
                      "{% if add_generation_prompt %}<|endoftext|>assistant\n{% endif %}")


def build_tiny_model(path, architecture: str, layers: int = 3, context: int = 256) -> str:
    """Save a random-init tiny ``llama``, ``gpt2``, ``qwen2`` or ``gemma3`` of ``layers`` blocks in
    Hugging Face layout at ``path`` (the last two with a chat template, as their real instruct
    models have)."""
    import torch
    from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                              LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM)

    torch.manual_seed(0)
    tokenizer = _tiny_tokenizer()
    if architecture == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
            tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, pad_token_id=0))
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
    elif architecture == "gemma3":
        model = Gemma3ForCausalLM(Gemma3TextConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=1, head_dim=16, max_position_embeddings=context,
            sliding_window=16, bos_token_id=0, eos_token_id=0, pad_token_id=0))
        tokenizer.chat_template = TINY_CHAT_TEMPLATE
    elif architecture == "llama":
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=context,
            bos_token_id=0, eos_token_id=0, pad_token_id=0))
    elif architecture == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(
            vocab_size=len(tokenizer), n_embd=64, n_layer=layers, n_head=4, n_positions=context,
            bos_token_id=0, eos_token_id=0))
    else:
        raise ValueError(architecture)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_llama"), "llama")


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_gpt2"), "gpt2")


def build_tiny_gguf(path, hf_dir) -> str:
    """Write the tiny ``qwen2`` model of ``hf_dir`` as a float32 GGUF file at ``path``, with its
    tokenizer (byte-level BPE) and chat template in the metadata, as llama.cpp's converter does."""
    import gguf
    import json
    from pathlib import Path

    from safetensors.numpy import load_file

    config = json.loads((Path(hf_dir) / "config.json").read_text())
    tokenizer = json.loads((Path(hf_dir) / "tokenizer.json").read_text())
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name("tiny-qwen2")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_freq_base(config.get("rope_theta") or config.get("rope_parameters", {}).get("rope_theta", 10000.0))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    vocab = sorted(tokenizer["model"]["vocab"].items(), key=lambda kv: kv[1])
    specials = {t["content"] for t in tokenizer["added_tokens"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list([token for token, _ in vocab])
    writer.add_token_types([gguf.TokenType.CONTROL if token in specials else gguf.TokenType.NORMAL for token, _ in vocab])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(0)
    writer.add_pad_token_id(0)
    writer.add_chat_template(TINY_CHAT_TEMPLATE)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, config["num_hidden_layers"])
    for name, tensor in load_file(str(Path(hf_dir) / "model.safetensors")).items():
        writer.add_tensor(names.get_name(name, try_suffixes=(".weight", ".bias")), tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_qwen2"), "qwen2")


@pytest.fixture(scope="session")
def tiny_gguf(tiny_qwen2_dir, tmp_path_factory):
    return build_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-qwen2.gguf", tiny_qwen2_dir)


@pytest.fixture(scope="session")
def embedded():
    from steering.engine.models import load_model

    return load_model()


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir):
    from steering.engine.models import load_model

    return load_model(tiny_llama_dir)


@pytest.fixture(scope="session")
def tiny_qwen2(tiny_qwen2_dir):
    from steering.engine.models import load_model

    return load_model(tiny_qwen2_dir)


@pytest.fixture(scope="session")
def tiny_gemma3(tmp_path_factory):
    from steering.engine.models import load_model

    return load_model(build_tiny_model(tmp_path_factory.mktemp("tiny_gemma3"), "gemma3"))


@pytest.fixture
def gguf_cache(tmp_path, monkeypatch):
    """A fresh conversion cache for this test."""
    monkeypatch.setattr("steering.engine.gguf.cache_root", lambda: tmp_path / "gguf-cache")
    return tmp_path / "gguf-cache"


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_gpt2_dir):
    from steering.engine.models import load_model

    return load_model(tiny_gpt2_dir)


CPP_OK = "#include <vector>\nint total(const std::vector<int>& v) { int s = 0; for (int x : v) s += x; return s; }\n"
CPP_UNDECLARED = "int total() { return missing_function(); }\n"  # parses, does not compile
DASHBOARD_RUN = "dashboard"

# What makes a test slow: a run the pipeline built (these fixtures), or a module that drives a
# browser, llama.cpp, Ray or a real model. Tests that run a pipeline themselves say so with
# ``@pytest.mark.slow``. ``python -m pytest -m "not slow"`` is the fast suite.
SLOW_FIXTURES = {"dashboard_runs", "compare_runs", "wide_runs", "browser_runs", "embedded_pipeline", "fitted_pipeline"}
SLOW_MODULES = {"test_browser", "test_llama_cpp", "test_real_models", "test_run_safety", "test_parallel",
                "test_compare_runs"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__ in SLOW_MODULES or SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def dashboard_runs(embedded, tmp_path_factory):
    """A runs folder holding one complete run on 8 tasks of the shipped set (quick settings), for
    the dashboard tests: ``STEERSCOPE_RUNS`` points at it."""
    from steering.code.prompts import PromptSet
    from steering.pipeline.runner import Pipeline, PipelineSettings
    from steering.store.storage import Run

    root = tmp_path_factory.mktemp("runs")
    settings = PipelineSettings(probe_epochs=300, sweep_alphas=(0.5, 1.0), refine_steps=3, max_new_tokens=96,
                                bias_samples=2, projections=("pca",))
    Pipeline(embedded, PromptSet.load().head(8), Run(root / DASHBOARD_RUN, create=True), settings).run_all()
    return root


COMPARED_RUNS = (DASHBOARD_RUN, "random-4", "random-6")


@pytest.fixture(scope="session")
def compare_runs(dashboard_runs, tmp_path_factory):
    """A runs folder for comparisons: the dashboard's run (the embedded model, 8 layers) and runs
    of two random models of 4 and 6 layers on the same 8 tasks and target (quicker settings, none
    of those a comparison must share)."""
    import shutil

    from steering.code.prompts import PromptSet
    from steering.engine.models import load_model
    from steering.pipeline.runner import Pipeline, PipelineSettings
    from steering.store.storage import Run

    root = tmp_path_factory.mktemp("compare")
    shutil.copytree(dashboard_runs / DASHBOARD_RUN, root / "runs" / DASHBOARD_RUN)
    settings = PipelineSettings(probe_epochs=50, sweep_alphas=(0.5,), refine_steps=1, max_new_tokens=16, bias_samples=1,
                                projections=("pca",), select_prose=8, select_tokens=8)
    for name, layers in (("random-4", 4), ("random-6", 6)):
        model_dir = build_tiny_model(root / f"model-{layers}", "qwen2", layers=layers, context=1024)
        Pipeline(load_model(model_dir), PromptSet.load().head(8), Run(root / "runs" / name, create=True), settings,
                 model_ref=model_dir).run_all()
    return root / "runs"


@pytest.fixture(scope="session")
def fitted_pipeline(embedded, tmp_path_factory):
    """The embedded model through the sweep on 12 tasks, for the tests of refinement and held-out phrasings."""
    from steering.code.prompts import PromptSet
    from steering.pipeline.runner import Pipeline, PipelineSettings
    from steering.store.storage import Run

    pipeline = Pipeline(embedded, PromptSet.load().head(12), Run(tmp_path_factory.mktemp("m") / "run", create=True),
                        PipelineSettings(probe_epochs=200, sweep_alphas=(0.25, 0.5), max_new_tokens=48))
    pipeline.run_all(("extract", "cluster", "probe", "sweep"))
    return pipeline


def stage_context(prompts, model=None, layers: int = 3, d_model: int = 8, **settings):
    """A stage's ``Context`` on ``prompts``: with ``model``, or, for a stage that reads only
    earlier results, a stand-in that names its shape (what ``Context.meta`` records)."""
    from types import SimpleNamespace

    from steering.pipeline.settings import PipelineSettings
    from steering.pipeline.stages.base import Context

    model = model or SimpleNamespace(facts=SimpleNamespace(name="synthetic"), d_model=d_model, n_layers=layers)
    return Context(model, prompts, PipelineSettings(**settings))


def wrap_forward(monkeypatch, wrapper):
    """Every pass of the model, wherever it runs from (generation, prefixes, activations...),
    through ``wrapper(real_forward, model, ids, *args, **kwargs)``."""
    import sys

    from steering.engine import forward as module

    real = module.forward

    def wrapped(model, ids, *args, **kwargs):
        return wrapper(real, model, ids, *args, **kwargs)

    for name, loaded in list(sys.modules.items()):
        if name.startswith("steering.") and getattr(loaded, "forward", None) is real:
            monkeypatch.setattr(loaded, "forward", wrapped)


@pytest.fixture(scope="session")
def results(dashboard_runs):
    """``RunResults`` of the dashboard's run (read-only: a test that writes copies the run first)."""
    from steering.pipeline.results import RunResults

    return RunResults(dashboard_runs / DASHBOARD_RUN)


def quick_settings(**overrides):
    """Settings that run every stage in seconds on a tiny model (a test of behaviour, not of results)."""
    from steering.pipeline.settings import PipelineSettings

    base = dict(probe_epochs=100, sweep_alphas=(1.0, 4.0), refine_steps=3, eval_samples=1, max_new_tokens=24)
    return PipelineSettings(**{**base, **overrides})
