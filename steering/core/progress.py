"""Progress of long work in words: done out of total, time elapsed, and an estimate of what is
left (the pace so far, carried forward once it is credible), for the dashboard's stage bars, the
terminal's and a log's lines."""

from __future__ import annotations

import threading
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


CREDIBLE = 0.1  # the share of a stage's work done before its pace is carried forward as an estimate


def estimate_left(done: float, total: float, elapsed: float) -> float | None:
    """Seconds left at the pace so far, or None until ``CREDIBLE`` of the work is done: the
    first units of a stage carry its start-up (a model's first pass, a cache to fill), and one
    of them carried forward gave "16 h left" for a 25-minute stage. Stages count work in units
    of comparable cost (answers as fractions decoded, the sweep's cheap cells weighted by their
    tokens: ``Context.tick``), so the pace carries."""
    if total <= 0 or done < CREDIBLE * total or done >= total or elapsed <= 0:
        return None
    return elapsed / done * (total - done)


def progress_text(done: float, total: int, elapsed: float) -> str:
    """``"12/46 · 35 s elapsed · about 1 min 39 s left"``, or ``"· estimating…"`` until the
    estimate is credible (``estimate_left``). ``done`` may be fractional (answers part-decoded)."""
    text = f"{int(done)}/{total} · {duration(elapsed)} elapsed"
    if done < total:
        left = estimate_left(done, total, elapsed)
        text += " · estimating…" if left is None else f" · about {duration(left)} left"
    return text


class LogProgress:
    """Progress where no bar can draw (a log file): a line when each stage starts and ends, and
    between them the latest count at least every ``every`` seconds, written by a timer thread of
    its own, so that no long step (a batch's prompt pass, a probe's fit) can hold a line back.
    Called as ``report(stage, done, total)``; ``stage(label, seconds=None)`` at a stage's start
    and end; ``stop()`` ends the timer."""

    def __init__(self, write: Callable[[str], None], every: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.write, self.every, self.clock = write, every, clock
        self.began = clock()
        self.latest: tuple | None = None  # (stage, done, total)
        self.started: dict[str, float] = {}  # a reporting stage -> its start
        self.last_line = self.began
        self.lock = threading.RLock()  # the timer and the caller both read and write what is shown
        self.done = threading.Event()
        self.timer = threading.Thread(target=self._tick, name="steerscope-log-progress", daemon=True)
        if every > 0:  # 0: a line at every report, and no timer
            self.timer.start()

    def line(self, text: str) -> None:
        with self.lock:
            now = self.clock()
            self.last_line = now
            self.write(f"[{duration(now - self.began)}] {text}")

    def __call__(self, stage: str, done: float, total: int) -> None:
        with self.lock:
            now = self.clock()
            self.started.setdefault(stage, now)
            self.latest = (stage, done, total)
            if now - self.last_line >= self.every:
                self._count()

    def _count(self) -> None:
        with self.lock:
            if self.latest is not None:
                stage, done, total = self.latest
                self.line(f"{stage}: {progress_text(done, total, self.clock() - self.started[stage])}")

    def stage(self, label: str, seconds: float | None = None) -> None:
        with self.lock:
            if seconds is None:
                self.started.clear()  # stages report under shared labels ("eval"): each times from its own start
                self.latest = None
            self.line(f"{label}: started" if seconds is None else f"{label}: done in {duration(seconds)}")

    def _tick(self) -> None:
        while not self.done.wait(min(self.every / 4, 1.0)):
            with self.lock:
                if self.latest is not None and self.clock() - self.last_line >= self.every:
                    self._count()

    def stop(self) -> None:
        self.done.set()
