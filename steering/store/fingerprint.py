"""A model's identity from its content: the SHA-256 of every file that defines it (weights,
config, tokenizer, chat template), so that a byte-identical copy in another folder is the same
model and an edited file is another. Hashing a 7 GB model takes seconds, so each file's digest is
cached by its path, size, inode and modification time (a changed file is hashed again)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..core.files import atomic_write_json
from .storage import cache_home

MODEL_FILES = ("*.safetensors", "*.json", "*.jinja", "*.model", "*.txt")  # what loading a model reads
_CACHE_NAME = "digests.json"
_CACHE_MAX_BYTES = 8 * 2**20  # a larger cache file is not Steerscope's: start a new one
_CHUNK = 1 << 22


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of ``path``'s bytes, from the cache when the file has not changed since."""
    return _digests([Path(path)])[0]


def _digests(paths: list[Path]) -> list[str]:
    """Each file's SHA-256, the cache read once and written once (only if a file was hashed)."""
    keys = []
    for path in paths:
        path, info = path.resolve(), path.stat()
        keys.append((path, f"{path}|{info.st_size}|{info.st_ino}|{info.st_mtime_ns}"))
    cache = _read_cache()
    missing = [(path, key) for path, key in keys if key not in cache]
    for path, key in missing:
        cache[key] = _hash_file(path)
    if missing:
        _write_cache(cache)
    return [cache[key] for _, key in keys]


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(path: str | Path, **facts) -> str:
    """16 hex characters naming the model in folder ``path`` by the content of its files, with
    ``facts`` that change its behaviour without changing its files (dtype, instruction)."""
    files = sorted({f for pattern in MODEL_FILES for f in Path(path).glob(pattern) if f.is_file()})
    blob = json.dumps([[f.name, d] for f, d in zip(files, _digests(files))] + [facts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def former_fingerprint(path: str | Path, facts: dict) -> str:
    """The identity runs stored before issue 18: the model's facts plus the size and time of
    every weight file (so a copy elsewhere was another model). Read only to open those runs."""
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in Path(path).glob("*.safetensors"))
    return hashlib.sha256(json.dumps([facts, files], sort_keys=True).encode()).hexdigest()[:16]


def _read_cache() -> dict[str, str]:
    """The digests cached so far; an unreadable or foreign cache file counts as empty."""
    path = cache_home() / _CACHE_NAME
    try:
        if path.stat().st_size > _CACHE_MAX_BYTES:
            return {}
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(cached, dict):
        return {}
    return {k: v for k, v in cached.items() if isinstance(v, str) and len(v) == 64 and os.path.exists(k.split("|")[0])}


def _write_cache(cache: dict[str, str]) -> None:
    try:
        atomic_write_json(cache_home() / _CACHE_NAME, cache)
    except (OSError, ValueError):  # a cache that cannot be written costs a rehash next time, nothing more
        pass
