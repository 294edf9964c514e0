"""Read a model's activations for a list of prompts: every layer (or a subset) at one hook point,
at the last prompt token or averaged over the prompt, in one forward pass per batch.

Capture goes through thread-owned hooks on exactly the hook points asked for (the same idea as
``run_with_cache(names_filter=...)``, whose cache hooks would also record other threads' forward
passes on a shared model), and keeps only the position asked for, as float32 on the CPU. Results
are cached on disk, keyed by model, prompts, hook point and position.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import torch

from .generation import encode_prompts
from .hooks import thread_hooks
from .models import HOOK_POINTS, check_layers
from .storage import StorageError, load_tensors, save_tensors

POSITIONS = ("last", "mean")
DEFAULT_CACHE_DIR = Path(os.environ.get("STEERSCOPE_CACHE", Path.home() / ".cache" / "steerscope"))


def _check(position: str, hook_point: str) -> None:
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}; expected one of {', '.join(POSITIONS)}")
    if hook_point not in HOOK_POINTS:
        raise ValueError(f"unknown hook point {hook_point!r}; expected one of {', '.join(HOOK_POINTS)}")


def cache_key(model, prompts: Sequence[str], layers: Sequence[int], hook_point: str, position: str) -> str:
    blob = json.dumps([model.fingerprint, list(prompts), list(layers), hook_point, position])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@torch.no_grad()
def _extract(model, prompts, layers, hook_point, position, batch_size, progress) -> torch.Tensor:
    names = {model.hook_name(layer, hook_point): i for i, layer in enumerate(layers)}
    out = torch.empty((len(prompts), len(layers), model.d_model), dtype=torch.float32)
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        ids, mask = encode_prompts(model, chunk)
        weights = (mask / mask.sum(dim=1, keepdim=True)).unsqueeze(-1).to(torch.float32)

        def capture(activation, hook, rows=slice(start, start + len(chunk))):
            if position == "last":  # left padding: the last column is every row's true last token
                picked = activation[:, -1, :].float()
            else:
                picked = (activation.float() * weights).sum(dim=1)
            out[rows, names[hook.name]] = picked.cpu()

        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with thread_hooks(model.bridge, [(name, capture) for name in names]):
            model.bridge(ids, attention_mask=mask, position_ids=positions)
        if progress is not None:
            progress(len(chunk))
    return out


def extract_activations(
    model,
    prompts: Sequence[str],
    layers: Sequence[int] | None = None,
    hook_point: str = "resid_post",
    position: str = "last",
    batch_size: int = 16,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Activations as a float32 CPU tensor of shape ``[len(prompts), len(layers), d_model]``.

    ``layers`` defaults to every layer. ``progress`` is called with the number of prompts done
    after each batch. With ``cache_dir`` set, a second call with the same model, prompts, layers,
    hook point and position reads the file instead of running the model.
    """
    _check(position, hook_point)
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompts to extract activations for")
    layers = check_layers(range(model.n_layers) if layers is None else layers, model.n_layers)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / "activations" / f"{cache_key(model, prompts, layers, hook_point, position)}.safetensors"
        if path.is_file():
            try:
                tensors, _ = load_tensors(path)
                if progress is not None:
                    progress(len(prompts))
                return tensors["activations"]
            except StorageError:
                path.unlink(missing_ok=True)  # a damaged cache entry is recomputed, never trusted
    acts = _extract(model, prompts, layers, hook_point, position, batch_size, progress)
    if path is not None:
        save_tensors(path, {"activations": acts}, {
            "model": model.facts.name, "hook_point": hook_point, "position": position,
            "layers": layers, "n_prompts": len(prompts),
        })
    return acts
