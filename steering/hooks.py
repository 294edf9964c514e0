"""Hooks that belong to one thread, for one call.

Several dashboard sessions share one loaded model. TransformerLens hooks are attached to the
model itself, so a hook added by one session's generation would also fire in a generation that
another session runs at the same moment. ``thread_hooks`` gates every hook on the thread that
added it, and removes it when the ``with`` block ends, whatever happens inside.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

HookFn = Callable  # (activation, hook) -> activation or None
_REGISTRY_LOCK = threading.Lock()  # adding and removing hooks edits lists shared by all threads


def _owned_by_current_thread(fn: HookFn) -> HookFn:
    owner = threading.get_ident()

    def hook(activation, hook):
        if threading.get_ident() != owner:
            return None  # another thread's forward pass: leave it untouched
        return fn(activation, hook=hook)

    return hook


@contextmanager
def thread_hooks(bridge, fwd_hooks: Iterable[tuple[str, HookFn]]) -> Iterator[None]:
    """Attach ``fwd_hooks`` to ``bridge`` for this thread's forward passes inside the block."""
    gated = [(name, _owned_by_current_thread(fn)) for name, fn in fwd_hooks]
    if not gated:
        yield
        return
    context = bridge.hooks(fwd_hooks=gated)
    with _REGISTRY_LOCK:
        context.__enter__()
    try:
        yield
    finally:
        with _REGISTRY_LOCK:
            context.__exit__(None, None, None)
