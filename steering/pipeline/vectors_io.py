"""Export and import steering vectors as safetensors, with the facts needed to use them safely:
the model they came from, its width, the hook point and position they were read at, and the
weight processing applied (none: vectors from a model with folded LayerNorm do not transfer)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..methods.registry import METHODS
from ..store.schema import CHOSEN_SCHEDULE, CLUSTERS, DELTAS
from ..store.storage import StorageError, load_tensors, save_tensors, tensors_bytes
from .settings import PipelineSettings

REQUIRED_METADATA = ("model", "d_model", "n_layers", "hook_point", "position", "weight_processing")
# Steerscope's own choices where the paper is silent (see the README's ablations): exported with the
# vectors, so whoever reuses them knows how they were made.
CHOICES = ("answer_prefix", "adaptive", "selection", "off_class", "cluster_mode", "probe_paraphrases", "refine_gains", "k", "contrast")


def run_vectors(run) -> tuple[dict[str, torch.Tensor], dict]:
    """A run's steering vectors (clusters and mean differences) and the metadata to export them with."""
    deltas, meta = run.load(DELTAS)
    clusters, _ = run.load(CLUSTERS)
    keep = {key: meta[key] for key in REQUIRED_METADATA}
    settings = run.settings.get("pipeline", {})
    return ({"vectors": clusters["vectors"], "mean_vectors": deltas["mean_vectors"]},
            {**keep, "target": meta.get("target"), "method": "clusters", "choices": _choices(run, settings)})


def _choices(run, settings: dict) -> dict:
    """The run's ``CHOICES``, a choice left to the sweep's selection (G-ACT's ``off_class``) as it chose."""
    choices = {key: settings[key] for key in CHOICES if key in settings}
    selection = METHODS["gact"].selection
    chosen = next((m["extra"] for m in run.metrics("sweep")
                   if m["name"] == CHOSEN_SCHEDULE and (m["extra"] or {}).get("method") == selection), {})
    for key, first in METHODS[selection].options(PipelineSettings.from_json(settings))[0].items():
        if choices.get(key) is None:
            choices[key] = chosen.get(key, first)
    return choices


def max_state_bytes(model) -> int:
    """The largest steering file read for ``model``: 256 float32 vectors of its width per layer
    (a run's vectors take a few), and a header."""
    return model.n_layers * model.d_model * 4 * 256 + 2**20


def _check_metadata(metadata: dict) -> None:
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ValueError(f"vector metadata lacks {', '.join(missing)}")


def export_vectors(path: Path, vectors: dict[str, torch.Tensor], metadata: dict, force: bool = False) -> Path:
    """Vectors and their metadata as a safetensors file; an existing file is replaced only with ``force``."""
    _check_metadata(metadata)
    save_tensors(Path(path), vectors, metadata, replace=force)
    return Path(path)


def vectors_bytes(vectors: dict[str, torch.Tensor], metadata: dict) -> bytes:
    """What ``export_vectors`` writes, as bytes (for a download)."""
    _check_metadata(metadata)
    return tensors_bytes(vectors, metadata)


def import_vectors(path: Path, model) -> tuple[dict[str, torch.Tensor], dict]:
    """Load vectors for ``model``; refuse files for another width or depth, or not ours."""
    tensors, metadata = load_tensors(Path(path), max_bytes=max_state_bytes(model))
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise StorageError(f"{Path(path).name} is not a Steerscope vector file (no {', '.join(missing)} in its header)")
    for key in ("d_model", "n_layers"):
        if not isinstance(metadata[key], int) or isinstance(metadata[key], bool):
            raise StorageError(f"{Path(path).name} has {key} {metadata[key]!r} in its header; expected an integer")
    for key in ("model", "hook_point", "position", "weight_processing"):
        if not isinstance(metadata[key], str):
            raise StorageError(f"{Path(path).name} has {key} {str(metadata[key])[:80]!r} in its header; expected a name")
    if not tensors:
        raise StorageError(f"{Path(path).name} holds no tensors")
    for key, t in tensors.items():  # what steering adds to the residual stream: real, finite numbers
        if not t.dtype.is_floating_point or t.dtype == torch.float64:
            raise StorageError(f"{Path(path).name} holds {key} as {str(t.dtype).removeprefix('torch.')}; steering "
                               "vectors are float32, float16 or bfloat16")
        if not torch.isfinite(t).all():
            raise StorageError(f"{Path(path).name} holds {key} with NaN or infinite values")
    flat = [key for key, t in tensors.items() if t.dim() < 2]
    if flat:
        raise StorageError(f"{Path(path).name} holds {', '.join(flat)} with {tensors[flat[0]].dim()} dimension(s); "
                           "steering vectors are [layers, ..., d_model]")
    short = [key for key, t in tensors.items() if t.shape[0] != metadata["n_layers"]]
    if short:
        raise StorageError(f"{Path(path).name} holds {short[0]} for {tensors[short[0]].shape[0]} layers, though its "
                           f"header says {metadata['n_layers']}")
    if metadata["d_model"] != model.d_model or any(t.shape[-1] != model.d_model for t in tensors.values()):
        raise StorageError(
            f"{Path(path).name} holds vectors for d_model {metadata['d_model']} ({metadata['model']}), "
            f"but {model.facts.name} has d_model {model.d_model}"
        )
    if metadata["n_layers"] != model.n_layers:
        raise StorageError(f"{Path(path).name} has vectors for {metadata['n_layers']} layers; "
                           f"{model.facts.name} has {model.n_layers}")
    if metadata["weight_processing"] != "none":
        raise StorageError(f"{Path(path).name} was read from a model with weight processing "
                           f"{metadata['weight_processing']!r}; Steerscope steers unprocessed weights")
    return tensors, metadata
