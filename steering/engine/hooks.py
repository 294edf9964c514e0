"""Hooks named in TransformerLens's vocabulary, run on the Hugging Face model, owned by one thread
for one call.

Users name places in the model as TransformerLens does (``blocks.3.hook_out``...). The engine's
fast path runs the underlying Hugging Face model directly, with its own KV cache, and puts torch
forward hooks only on the modules that compute the named places (``HookMap``). Several dashboard
sessions share one loaded model, so a hook added by one session's call would also fire in a call
that another session runs at the same moment: ``thread_hooks`` gates every hook on the thread
that added it, and removes it when the ``with`` block ends, whatever happens inside.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

HookFn = Callable  # (activation, hook) -> activation or None
_REGISTRY_LOCK = threading.Lock()  # adding and removing hooks edits dicts shared by all threads


@dataclass(frozen=True)
class HookPoint:
    """What a hook function receives as ``hook``: the TransformerLens name it was attached to."""

    name: str


# The one table of hook places: Steerscope's short name -> (TransformerLens name after
# "blocks.{layer}.", its aliases, the component path in the adapter's mapping, and whether the
# value is the module's output or its first input).
_TABLE = {
    "resid_post": ("hook_out", ("hook_resid_post",), (), "output"),  # residual stream after the block (default)
    "attn_out": ("attn.hook_out", ("hook_attn_out",), ("attn",), "output"),
    "mlp_out": ("mlp.hook_out", ("hook_mlp_out",), ("mlp",), "output"),
    "attn_z": ("attn.hook_z", (), ("attn", "o"), "input"),  # per-head outputs before W_O, side by side (ACT reads it)
    "mlp_post": ("mlp.hook_post", (), ("mlp", "out"), "input"),  # neuron activations, before the down projection
}
HOOK_POINTS: dict[str, str] = {point: f"blocks.{{layer}}.{name}" for point, (name, *_) in _TABLE.items()}
_PLACES: dict[str, tuple[tuple[str, ...], str]] = {
    tl: (path, where) for name, aliases, path, where in _TABLE.values() for tl in (name, *aliases)}
_NAME = re.compile(r"blocks\.(\d+)\.(.+)")


class HookMap:
    """Where each supported TransformerLens hook name lives in the Hugging Face model, read from
    the TransformerLens architecture adapter's component mapping (so any architecture the bridge
    supports maps the same way)."""

    def __init__(self, hf_model, component_mapping):
        self.hf_model = hf_model
        self.n_layers = len(hf_model.get_submodule(component_mapping["blocks"].name))
        self._blocks = component_mapping["blocks"]

    def resolve(self, name: str):
        """``(module, "output" or "input", HookPoint)`` for a hook name; a ValueError otherwise."""
        match = _NAME.fullmatch(name)
        if not match or match.group(2) not in _PLACES:
            supported = ", ".join(f"blocks.L.{p}" for p in _PLACES)
            raise ValueError(f"hook {name!r} is not supported by the fast path; supported: {supported}")
        layer = int(match.group(1))
        if layer >= self.n_layers:
            raise ValueError(f"hook {name!r}: this model has layers 0..{self.n_layers - 1}")
        path, where = _PLACES[match.group(2)]
        component, parts = self._blocks, [self._blocks.name, str(layer)]
        for key in path:
            component = component.submodules[key]
            parts.append(component.name)
        return self.hf_model.get_submodule(".".join(parts)), where, HookPoint(name)


def _gated(fn: HookFn, where: str, point: HookPoint):
    """A torch hook that calls ``fn(activation, hook=point)`` on this thread's passes only."""
    owner = threading.get_ident()

    if where == "output":
        def hook(module, args, output):
            if threading.get_ident() != owner:
                return None  # another thread's forward pass: leave it untouched
            value = output[0] if isinstance(output, tuple) else output
            new = fn(value, hook=point)
            if new is None:
                return None
            return (new, *output[1:]) if isinstance(output, tuple) else new
    else:
        def hook(module, args):
            if threading.get_ident() != owner:
                return None
            new = fn(args[0], hook=point)
            return None if new is None else (new, *args[1:])

    return hook


_ATTACHED = threading.local()  # how many hooks this thread has attached (``thread_hooks``)


def hooks_attached() -> int:
    """How many hooks this thread's forward passes run now: 0 means a pass computes what the
    model alone computes (``generation`` then shares prompt passes between rows)."""
    return getattr(_ATTACHED, "count", 0)


@contextmanager
def thread_hooks(model, fwd_hooks: Iterable[tuple[str, HookFn]]) -> Iterator[None]:
    """Attach ``fwd_hooks`` (TransformerLens name, function) to ``model`` for this thread's
    forward passes inside the block."""
    resolved = [(model.hook_map.resolve(name), fn) for name, fn in fwd_hooks]
    handles = []
    with _REGISTRY_LOCK:
        for (module, where, point), fn in resolved:
            gated = _gated(fn, where, point)
            register = module.register_forward_hook if where == "output" else module.register_forward_pre_hook
            handles.append(register(gated))
    _ATTACHED.count = hooks_attached() + len(handles)
    try:
        yield
    finally:
        _ATTACHED.count = hooks_attached() - len(handles)
        with _REGISTRY_LOCK:
            for handle in handles:
                handle.remove()
