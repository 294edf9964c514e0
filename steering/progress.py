"""Progress of long work in words: done out of total, time elapsed, and an estimate of what is
left (the pace so far, carried forward), for the dashboard's stage bars."""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable

_HEARTBEAT: ContextVar[Callable[[], None] | None] = ContextVar("heartbeat", default=None)


@contextmanager
def heartbeat(report: Callable[[], None], every: float = 1.0):
    """Call ``report`` at most every ``every`` seconds while long work inside the block calls
    ``beat()`` (every decoding step does), so a progress display shows elapsed time even while
    no unit of work finishes, and a dashboard's Stop, raised from ``report``, lands within a step."""
    last = [time.monotonic()]

    def throttled() -> None:
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            report()

    token = _HEARTBEAT.set(throttled)
    try:
        yield
    finally:
        _HEARTBEAT.reset(token)


def beat() -> None:
    """A step of long work is done: let the current ``heartbeat``, if any, report."""
    report = _HEARTBEAT.get()
    if report is not None:
        report()


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def progress_text(done: int, total: int, elapsed: float) -> str:
    """``"12/46 · 35 s elapsed · about 1 min 39 s left"``; no estimate before the first unit is done."""
    text = f"{done}/{total} · {duration(elapsed)} elapsed"
    if 0 < done < total:
        text += f" · about {duration(elapsed / done * (total - done))} left"
    return text
