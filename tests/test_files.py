"""The one write guard: atomic, with the umask's mode."""

from __future__ import annotations

import os

import pytest
import torch

from steering.store.storage import Run, atomic_write_bytes


def test_written_files_keep_the_umask_mode(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    atomic_write_bytes(tmp_path / "f.json", b"{}")
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temporary file left


def test_writes_are_atomic(tmp_path, monkeypatch):
    import os

    from steering.store import storage

    run = Run(tmp_path / "run", create=True)
    with run.writing():
        run.save("vectors", {"v": torch.ones(2)}, model="m")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt), run.writing():
        run.save("vectors", {"v": torch.zeros(2)}, model="m")
    monkeypatch.undo()
    assert torch.equal(run.load("vectors")[0]["v"], torch.ones(2))  # the old file is intact
    assert [p.name for p in (tmp_path / "run" / "tensors").iterdir()] == ["vectors.safetensors"]  # no debris
    assert storage.load_tensors(run.tensor_path("vectors"))[1] == {"model": "m"}
