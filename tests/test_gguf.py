"""GGUF files: loaded like their Hugging Face directory, converted once, refused clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from steering.engine import gguf as gguf_module
from steering.engine.models import ModelLoadError, load_model
from steering.interface.cli.main import main


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
