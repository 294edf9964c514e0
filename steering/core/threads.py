"""How many threads torch may use: the cores that other work leaves free.

torch starts one thread per core. When another process keeps a core busy, its threads wait on
each other at every operation and a run slows tenfold (the embedded model's pipeline took
1,045 s instead of 117 s). So the count follows the cores actually free, measured as the whole
machine's load minus this process's own, and is re-read at every pipeline stage;
``STEERSCOPE_THREADS=N`` fixes it instead.
"""

from __future__ import annotations

import os

import psutil
import torch

ENV_VAR = "STEERSCOPE_THREADS"
_SAMPLE_SECONDS = 0.25


def free_cores(sample_seconds: float = _SAMPLE_SECONDS) -> int:
    """Cores not busy with other processes over a short sample (at least 1)."""
    cores = psutil.cpu_count() or 1
    me = psutil.Process()
    me.cpu_percent(None)
    machine = psutil.cpu_percent(interval=sample_seconds)  # percent of the whole machine
    own = me.cpu_percent(None) / 100  # in cores
    others = max(0.0, machine / 100 * cores - own)
    return max(1, min(cores, int(cores - others + 0.5)))


def configure_threads() -> int:
    """Set torch's intra-op thread count from ``STEERSCOPE_THREADS`` or the free cores; return it."""
    wanted = os.environ.get(ENV_VAR, "").strip()
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            raise ValueError(f"{ENV_VAR} must be a positive integer, got {wanted!r}")
        count = int(wanted)
    else:
        count = free_cores()
    if count != torch.get_num_threads():
        torch.set_num_threads(count)
    return count
