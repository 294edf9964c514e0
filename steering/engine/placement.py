"""Where a model's weights live: on one device, or spread by accelerate's device map over GPUs,
CPU memory and disk (``device_map="auto"``), for models larger than one device. Hooks need no
change: each runs on the device of the module it is on, and steering tensors follow the
activation they are added to (``.to(h)``)."""

from __future__ import annotations

import re

import torch

DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # accelerate's strategies
_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$", re.IGNORECASE)


def available_devices() -> list[str]:
    """The devices a model can be placed on here, as torch reports them."""
    found = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0)]
    return found + (["mps"] if torch.backends.mps.is_available() else [])


def parse_max_memory(items: list[str] | None) -> dict | None:
    """``["cuda:0=20GiB", "cpu=64GiB"]`` as accelerate's ``max_memory`` (``{0: "20GiB", "cpu":
    "64GiB"}``), or a ValueError naming the item that is not ``DEVICE=SIZE``."""
    if not items:
        return None
    caps: dict = {}
    for item in items:
        device, _, size = item.partition("=")
        device = device.strip().lower()
        key = int(device.removeprefix("cuda:")) if re.fullmatch(r"(cuda:)?\d+", device) else device
        if key not in ("cpu", "mps") and not isinstance(key, int) or not _SIZE.match(size.strip()):
            raise ValueError(f"max memory {item!r} is not DEVICE=SIZE (for example cuda:0=20GiB or cpu=64GiB)")
        here = available_devices()
        if key != "cpu" and (f"cuda:{key}" if isinstance(key, int) else key) not in here:
            gpus = sum(d.startswith("cuda:") for d in here)
            raise ValueError(f"--max-memory {item[:40]!r}: torch sees no such device here (CUDA GPUs: {gpus})")
        caps[key] = size.strip() if not size.strip().isdigit() else int(size)
    return caps


def placement(device_map: str | None, max_memory: dict | None) -> dict:
    """``from_pretrained``'s arguments for ``device_map`` (None: one device, moved there after
    loading) and the per-device caps."""
    if device_map is None:
        if max_memory:
            raise ValueError("max memory per device applies to a device map: give --device-map auto")
        return {}
    if device_map not in DEVICE_MAPS:
        raise ValueError(f"unknown device map {device_map!r}; expected one of {', '.join(DEVICE_MAPS)}")
    return {"device_map": device_map, **({"max_memory": max_memory} if max_memory else {})}


def input_device(hf_model) -> torch.device:
    """Where a model's inputs go: the device its embedding runs on (the CPU for weights on disk)."""
    where = getattr(hf_model, "hf_device_map", {}) or {}
    first = next(iter(where.values()), None)
    if first is None:
        return next(hf_model.parameters()).device
    return torch.device(f"cuda:{first}" if isinstance(first, int) else "cpu" if first == "disk" else first)


def describe(hf_model) -> str | None:
    """``"6 modules on disk, 2 on cpu"`` for a model spread by a device map; None on one device."""
    where = getattr(hf_model, "hf_device_map", None)
    if not where or len(set(where.values())) < 2:
        return None
    counts: dict[str, int] = {}
    for device in where.values():
        name = f"cuda:{device}" if isinstance(device, int) else str(device)
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{n} module{'s' * (n > 1)} on {d}" for d, n in sorted(counts.items(), key=lambda kv: -kv[1]))
