"""A model is known by its content, not its folder; the digest cache's setting is checked."""

from __future__ import annotations

import json
import shutil

import pytest

from steering.engine.models import load_model
from steering.interface.cli.main import main


def test_a_model_is_known_by_its_content_not_its_folder(tiny_llama_dir, tmp_path, monkeypatch):
    """Issue 18: a byte-identical copy in another folder is the same model (its runs and vectors
    open with it); one edited file makes another model. Digests are cached, so a second load
    hashes nothing; runs made before content fingerprints still open (``made_from``)."""
    import steering.store.fingerprint as fingerprint

    copy = shutil.copytree(tiny_llama_dir, tmp_path / "copy")
    first, again = load_model(tiny_llama_dir), load_model(str(copy))
    assert first.fingerprint == again.fingerprint and first.former_fingerprint != again.former_fingerprint
    assert again.made_from(first.fingerprint) and again.made_from(again.former_fingerprint)
    with monkeypatch.context() as patch:
        patch.setattr(fingerprint, "_hash_file", lambda path: pytest.fail(f"{path.name} hashed again"))
        assert load_model(str(copy)).fingerprint == first.fingerprint
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "rms_norm_eps": 1e-5}))
    assert not load_model(str(copy)).made_from(first.fingerprint)


def test_a_cache_setting_that_is_not_a_folder_is_named(tmp_path, monkeypatch, capsys):
    """Issue 18: STEERSCOPE_CACHE pointing at a file said only 'Not a directory'."""
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("STEERSCOPE_CACHE", str(tmp_path / "file"))
    assert main(["model"]) == 2
    assert "STEERSCOPE_CACHE is" in capsys.readouterr().out and (tmp_path / "file").read_text() == "not a folder"
