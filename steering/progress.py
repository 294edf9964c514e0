"""Progress of long work in words: done out of total, time elapsed, and an estimate of what is
left (the pace so far, carried forward), for the dashboard's stage bars."""

from __future__ import annotations


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
