"""Shared fixtures: the embedded model, and tiny random-init models the tests build and save
themselves (no network)."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach for the network
# Activation caches go to a fresh folder, not the user's ~/.cache (set before steering is imported).
os.environ["STEERSCOPE_CACHE"] = tempfile.mkdtemp(prefix="steerscope-test-cache-")


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


def build_tiny_model(path, architecture: str) -> str:
    """Save a random-init tiny ``llama`` or ``gpt2`` in Hugging Face layout at ``path``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = _tiny_tokenizer()
    if architecture == "llama":
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
            bos_token_id=0, eos_token_id=0, pad_token_id=0))
    elif architecture == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(
            vocab_size=len(tokenizer), n_embd=64, n_layer=3, n_head=4, n_positions=256,
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


@pytest.fixture(scope="session")
def embedded():
    from steering.models import load_model

    return load_model()


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir):
    from steering.models import load_model

    return load_model(tiny_llama_dir)


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_gpt2_dir):
    from steering.models import load_model

    return load_model(tiny_gpt2_dir)


DASHBOARD_RUN = "dashboard"


@pytest.fixture(scope="session")
def dashboard_runs(embedded, tmp_path_factory):
    """A runs folder holding one complete run on 8 tasks of the shipped set (quick settings), for
    the dashboard tests: ``STEERSCOPE_RUNS`` points at it."""
    from steering.pipeline import Pipeline, PipelineSettings
    from steering.prompts import PromptSet
    from steering.storage import Run

    root = tmp_path_factory.mktemp("runs")
    settings = PipelineSettings(probe_epochs=300, sweep_alphas=(0.5, 1.0), refine_steps=3, max_new_tokens=96,
                                bias_samples=2, projections=("pca",))
    Pipeline(embedded, PromptSet.load().head(8), Run(root / DASHBOARD_RUN, create=True), settings).run_all()
    return root
