"""Steering-vector files: checked against the model they are read for."""

from __future__ import annotations

import pytest
import torch

from steering.pipeline.vectors_io import export_vectors, import_vectors
from steering.store.storage import StorageError


def test_vector_files_are_checked(tiny_llama, tiny_gpt2, tmp_path):
    meta = {"model": "tiny", "d_model": 64, "n_layers": 3, "hook_point": "resid_post", "position": "last",
            "weight_processing": "none"}
    path = export_vectors(tmp_path / "v.safetensors", {"vectors": torch.randn(3, 2, 64)}, meta)
    tensors, back = import_vectors(path, tiny_llama)
    assert tensors["vectors"].shape == (3, 2, 64) and back == meta
    wide = export_vectors(tmp_path / "w.safetensors", {"vectors": torch.randn(3, 2, 32)}, {**meta, "d_model": 32})
    with pytest.raises(StorageError, match="d_model 32 .* has d_model 64"):
        import_vectors(wide, tiny_llama)
    data = bytearray(path.read_bytes())
    data[8:20] = b'{"garbage": '  # tamper with the JSON header
    (tmp_path / "t.safetensors").write_bytes(bytes(data))
    with pytest.raises(StorageError, match="not a valid safetensors file"):
        import_vectors(tmp_path / "t.safetensors", tiny_llama)
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    (tmp_path / "huge.safetensors").write_bytes((header_len * 1000).to_bytes(8, "little") + path.read_bytes()[8:])
    with pytest.raises(StorageError):
        import_vectors(tmp_path / "huge.safetensors", tiny_llama)
