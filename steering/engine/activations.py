"""Read a model's activations for a list of prompts: every layer (or a subset) at one hook point,
at the last prompt token, averaged over the prompt, or inside a teacher-forced answer, in one
forward pass per batch.

Capture goes through thread-owned hooks on exactly the hook points asked for (the same idea as
``run_with_cache(names_filter=...)``, whose cache hooks would also record other threads' forward
passes on a shared model), and keeps only the position asked for, as float32 on the CPU. The pass
runs the Hugging Face model's base (no unembedding: no logits are needed) and stops after the
deepest layer asked for. Results are cached on disk, keyed by model, prompts, hook point and
position.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..core.progress import beat
from ..store.storage import StorageError, cache_home, load_tensors, save_tensors
from .forward import encode_prompts, positions_of, shared_start_cache
from .hooks import thread_hooks
from .models import HOOK_POINTS, check_layers

POSITIONS = ("last", "mean", "answer")


def _check(position: str, hook_point: str) -> None:
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}; expected one of {', '.join(POSITIONS)}")
    if hook_point not in HOOK_POINTS:
        raise ValueError(f"unknown hook point {hook_point!r}; expected one of {', '.join(HOOK_POINTS)}")


def cache_key(model, prompts: Sequence[str], layers: Sequence[int], hook_point: str, position: str,
              continuations: Sequence[str], per_answer: int) -> str:
    blob = json.dumps([model.fingerprint, list(prompts), list(layers), hook_point, position, list(continuations), per_answer])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _read_weights(mask: torch.Tensor, answer_lengths: list[int], position: str, per_answer: int) -> torch.Tensor:
    """``[batch, rows per prompt, width]`` weights over token columns: which positions are read.

    Rows are padded before their own tokens (``encode_prompts``), so the last column is every
    row's last token and an answer of ``n`` tokens fills the last ``n`` columns.
    """
    batch, width = mask.shape
    if position == "mean":
        return (mask / mask.sum(dim=1, keepdim=True)).unsqueeze(1).float()
    if position == "last":
        weights = torch.zeros(batch, 1, width)
        weights[:, 0, -1] = 1.0
        return weights
    weights = torch.zeros(batch, per_answer, width)
    for i, n in enumerate(answer_lengths):
        # Inside the answer, after its first token: the language is already written there.
        offsets = torch.linspace(min(1, n - 1), n - 1, per_answer).round().long()
        weights[i, torch.arange(per_answer), width - n + offsets] = 1.0
    return weights


class _Captured(Exception):
    """Raised by the deepest layer's hook: nothing after it is needed."""


@torch.no_grad()
def _extract(model, prompts, continuations, layers, hook_point, position, per_answer, batch_size, progress) -> torch.Tensor:
    names = {model.hook_name(layer, hook_point): i for i, layer in enumerate(layers)}
    deepest = model.hook_name(max(layers), hook_point)
    per_prompt = per_answer if position == "answer" else 1
    out = None  # [prompts, rows per prompt, layers, width]: the width is the hook point's (d_model, d_mlp...)
    tok = model.tokenizer
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        tails = continuations[start : start + batch_size]
        ids, mask = encode_prompts(model, chunk, tails)
        lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) if t else 0 for t in tails]
        weights = _read_weights(mask.cpu(), lengths, position, per_answer).to(ids.device)

        def capture(activation, hook, rows=slice(start, start + len(chunk))):
            nonlocal out
            picked = torch.einsum("bpw,bwd->bpd", weights, activation.float())
            if out is None:
                out = torch.empty((len(prompts), per_prompt, len(layers), picked.shape[-1]), dtype=torch.float32)
            out[rows, :, names[hook.name]] = picked.cpu()
            if hook.name == deepest:
                raise _Captured

        # The start every row shares runs once, before the hooks, up to the first column read.
        cache, shared = shared_start_cache(model, ids, mask, limit=int(weights.sum((0, 1)).nonzero()[0]))
        weights = weights[..., shared:]
        with thread_hooks(model, [(name, capture) for name in names]):
            try:
                model.hf_model.base_model(input_ids=ids[:, shared:], attention_mask=mask, position_ids=positions_of(mask)[:, shared:],
                                          past_key_values=cache, use_cache=cache is not None)
            except _Captured:
                pass
        if progress is not None:
            progress(len(chunk))
        beat()
    return out.flatten(0, 1)


def extract_activations(
    model,
    prompts: Sequence[str],
    layers: Sequence[int] | None = None,
    hook_point: str = "resid_post",
    position: str = "last",
    continuation: str | Sequence[str] = "",
    per_answer: int = 4,
    batch_size: int = 16,
    cache_dir: str | Path | bool | None = True,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Activations as a float32 CPU tensor of shape ``[rows, len(layers), width]`` (``d_model``
    for the residual stream; ``n_heads * d_head`` for ``attn_z``, ``d_mlp`` for ``mlp_post``).

    Each prompt is read after its generation prompt and ``continuation`` (the start of an answer,
    e.g. ``"```"``; one text for all, or one per prompt), at its last token or averaged over all
    its tokens (one row per prompt), or, with ``position="answer"``, at ``per_answer`` positions
    spread over the continuation after its first token (``per_answer`` rows per prompt, in
    order). ``layers`` defaults to every layer. ``progress`` is called with the number of
    prompts done after each batch. With ``cache_dir`` (True: ``storage.cache_home()``; None or
    False: no cache), a second call with the same arguments and model reads the file instead of
    running the model.
    """
    _check(position, hook_point)
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompts to extract activations for")
    continuations = [continuation] * len(prompts) if isinstance(continuation, str) else list(continuation)
    if len(continuations) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    if position == "answer" and (per_answer < 1 or not all(continuations)):
        raise ValueError("position 'answer' reads inside the continuations: give every prompt one, and per_answer >= 1")
    layers = check_layers(range(model.n_layers) if layers is None else layers, model.n_layers)
    per_answer = per_answer if position == "answer" else 0
    path = None
    if cache_dir:
        cache_dir = cache_home() if cache_dir is True else cache_dir
        key = cache_key(model, prompts, layers, hook_point, position, continuations, per_answer)
        path = Path(cache_dir) / "activations" / f"{key}.safetensors"
        expected = {"key": key, "model": model.facts.name, "fingerprint": model.fingerprint, "hook_point": hook_point,
                    "position": position, "layers": layers, "n_prompts": len(prompts)}
        if path.is_file():
            try:
                tensors, meta = load_tensors(path)
                cached = tensors.get("activations")
                rows = len(prompts) * (per_answer if position == "answer" else 1)
                if (cached is not None and cached.dtype == torch.float32 and cached.ndim == 3
                        and tuple(cached.shape[:2]) == (rows, len(layers)) and torch.isfinite(cached).all()
                        and all(meta.get(k) == v for k, v in expected.items())):
                    if progress is not None:
                        progress(len(prompts))
                    return cached
            except StorageError:
                pass
            path.unlink(missing_ok=True)  # a damaged or foreign cache entry is recomputed, never trusted
    acts = _extract(model, prompts, continuations, layers, hook_point, position, per_answer, batch_size, progress)
    if path is not None:
        save_tensors(path, {"activations": acts}, expected)
    return acts
