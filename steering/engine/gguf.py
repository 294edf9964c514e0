"""GGUF checkpoints (llama.cpp's format, often quantized) as Hugging Face directories.

transformers dequantizes a GGUF file into an ordinary model (``from_pretrained(dir,
gguf_file=...)``); that takes a minute or more for a 0.5B model, so the dequantized float32
model is saved once, as safetensors with its tokenizer and chat template, in a cache folder
keyed by the file's SHA-256. Every later load reads that directory like any other local model.
The file is checked (readable, complete, an architecture transformers can dequantize, small
enough for the free memory) before anything large is allocated.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

from ..core.files import atomic_write_json
from ..store.fingerprint import file_sha256
from ..store.storage import cache_home
from .gguf_layout import GGUFLayoutError, check_layout

GGUF_SUFFIX = ".gguf"
CONVERTED_MARK = "steerscope-gguf.json"  # written last: a directory without it is incomplete
_CONVERSION_HEADROOM = 1.6  # peak memory while dequantizing, over the float32 weights (measured 1.5)


class GGUFError(ValueError):
    """The GGUF file cannot be used; the message says why."""


def find_gguf(path: Path) -> Path | None:
    """``path`` itself if it is a .gguf file, the only .gguf file in directory ``path``, else None."""
    if path.is_file() and path.suffix.lower() == GGUF_SUFFIX:
        return path
    if path.is_dir() and not (path / "config.json").is_file():
        found = sorted(path.glob(f"*{GGUF_SUFFIX}"))
        if len(found) > 1:
            names = ", ".join(f.name for f in found)
            raise GGUFError(f"{path.name} holds {len(found)} GGUF files ({names}); give the path of one")
        return found[0] if found else None
    return None


def inspect_gguf(path: Path) -> dict:
    """Architecture, name and parameter count from the file's header and tensor table, without
    reading the weights; a GGUFError for a file that is not a complete GGUF."""
    try:
        check_layout(path)  # before GGUFReader, which trusts the counts a header declares
    except (GGUFLayoutError, OSError) as err:
        raise GGUFError(str(err)) from None
    try:
        from gguf import GGUFReader
    except ImportError:  # pragma: no cover - gguf is in requirements.txt
        raise GGUFError("reading GGUF files needs the 'gguf' package: pip install gguf") from None
    try:
        reader = GGUFReader(str(path))
    except Exception as err:  # numpy memmap errors for a truncated file, ValueError for a bad magic
        raise GGUFError(f"{path.name} is not a readable GGUF file (truncated or corrupt: {err})") from None

    def text(key: str) -> str | None:
        field = reader.fields.get(key)
        return bytes(field.parts[field.data[0]]).decode("utf-8", "replace") if field is not None else None

    return {
        "architecture": text("general.architecture"),
        "name": text("general.name"),
        "n_params": int(sum(int(t.n_elements) for t in reader.tensors)),
        "n_tensors": len(reader.tensors),
    }


def supported_architectures() -> list[str]:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return sorted(a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer"))


def cache_root() -> Path:
    return cache_home() / "gguf"


def converted_dir(path: Path, available_bytes: int, cache: Path | None = None) -> Path:
    """The float32 Hugging Face directory of GGUF file ``path``: from the cache, or converted now.

    ``available_bytes`` is the memory the conversion may use; a GGUFError says when it is short.
    """
    cache = cache or cache_root()
    target = cache / file_sha256(path)[:24]
    if (target / CONVERTED_MARK).is_file():
        return target
    info = inspect_gguf(path)  # ~10 s for a 150k-token vocabulary: only when converting
    arch = info["architecture"]
    if arch not in supported_architectures():
        raise GGUFError(
            f"{path.name} holds a {arch!r} model; transformers can dequantize only these GGUF "
            f"architectures: {', '.join(supported_architectures())}"
        )
    needed = int(info["n_params"] * 4 * _CONVERSION_HEADROOM)
    if needed > available_bytes:
        raise GGUFError(
            f"dequantizing {path.name} ({info['n_params'] / 1e6:.0f}M parameters) needs about "
            f"{needed / 2**30:.1f} GiB, but only {available_bytes / 2**30:.1f} GiB is available"
        )
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".converting-", dir=cache))
    try:
        _convert(path, work)
        atomic_write_json(work / CONVERTED_MARK, {"source": path.name, **info})
        shutil.rmtree(target, ignore_errors=True)  # an incomplete earlier attempt
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _convert(path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(path.parent), path.name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                         trust_remote_code=False)
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else ""
        raise GGUFError(f"transformers could not dequantize {name}: {type(err).__name__}: {first}") from None
    # A GGUF-loaded model refuses save_pretrained until it no longer says it is quantized; the
    # weights are plain float32 tensors by now (the saved directory reloads with equal logits).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
