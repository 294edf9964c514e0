"""``steering.core.progress``: an estimate of the time left that is never far above the truth once
it is shown, "estimating…" before, and log lines that a blocked step cannot hold back."""

from __future__ import annotations

import time

import numpy as np
import pytest

from steering.core.progress import CREDIBLE, LogProgress, duration, estimate_left, progress_text
from steering.pipeline.stages.sweep import CELL_COST


def _uneven_work(seed: int, budget: int = 160) -> tuple[list[tuple[float, float]], int]:
    """``(clock, done)`` as the sweep reports them, and its total: a start-up with nothing done
    (the prompt prefixes), 120 grid cells counted at ``CELL_COST`` each but taking 0.3x to 3x
    that, then continuations decoded in batches of 48 rows whose lengths vary 30-fold (log-normal,
    cut at the budget), a step costing a fixed part plus a part per live row, each row counted in
    shares of its budget as it decodes and the rest of its answer when it ends."""
    rng = np.random.default_rng(seed)
    cells, rows = 120, 18 * 46
    total = int(np.ceil(CELL_COST * cells)) + rows
    step_fixed, per_row = 0.02, 0.004
    clock, done = 8.0, 0.0
    marks = [(clock, done)]
    for _ in range(cells):
        clock += CELL_COST * rng.uniform(0.3, 3.0) * per_row * budget * 0.6
        done += CELL_COST
        marks.append((clock, done))
    lengths = np.minimum(rng.lognormal(np.log(40), 0.9, rows), budget).astype(int) + 1
    for start in range(0, rows, 48):
        batch = list(lengths[start : start + 48])
        clock += 0.002 * 100 * len(batch)  # the batch's prompt pass
        for step in range(1, budget + 1):
            alive = [n for n in batch if n >= step]
            if not alive:
                break
            clock += step_fixed + per_row * len(alive)
            done += sum(1 / budget if n > step else 1 - (step - 1) / budget for n in alive)
            marks.append((clock, done))
    return marks, total


@pytest.mark.parametrize("seed", range(5))
def test_the_estimate_never_exceeds_twice_the_true_time_left_after_a_tenth_of_the_work(seed):
    marks, total = _uneven_work(seed)
    end = marks[-1][0]
    assert marks[-1][1] == pytest.approx(total, abs=1)
    shown = 0
    for clock, done in marks:
        left = estimate_left(done, total, clock)
        true_left = end - clock
        if done < CREDIBLE * total:
            assert left is None  # no estimate until a tenth of the work is done
            assert "estimating…" in progress_text(done, total, clock) or done >= total
        elif clock >= 0.1 * end and left is not None:
            # within 2x; in the last 2 seconds (the last rows of a batch end early, and their
            # budget's rest is counted as work), within 2 seconds
            assert left <= max(2 * true_left, true_left + 2.0), (clock, done, left, true_left)
            shown += 1
    assert shown > 100


def test_progress_in_words_counts_whole_units_and_waits_before_it_estimates():
    assert progress_text(0, 46, 3.2) == "0/46 · 3 s elapsed · estimating…"
    assert progress_text(3.7, 46, 20) == "3/46 · 20 s elapsed · estimating…"
    assert progress_text(12, 46, 35) == "12/46 · 35 s elapsed · about 1 min 39 s left"
    assert progress_text(46, 46, 130) == "46/46 · 2 min 10 s elapsed"
    assert duration(7300) == "2 h 01 min"


def test_a_log_writes_a_line_at_least_every_period_while_the_work_is_blocked():
    """The timer is a thread of its own: a step that holds the caller for 12 periods (a long
    prompt pass, with no progress call) still gets a line every period."""
    every, lines = 0.1, []
    log = LogProgress(lambda text: lines.append((time.monotonic(), text)), every=every)
    try:
        log.stage("sweep")
        log("sweep", 1, 10)
        time.sleep(12 * every)  # blocked: no call to the reporter
        log("sweep", 2, 10)
        time.sleep(3 * every)
        log.stage("sweep", 1.5)
    finally:
        log.stop()
    stamps = [t for t, _ in lines]
    gaps = np.diff(stamps)
    assert len(lines) >= 14 and gaps.max() <= every * 1.5, gaps
    assert any("sweep: 1/10" in text for _, text in lines) and any("sweep: 2/10" in text for _, text in lines)
    assert lines[-1][1].endswith("sweep: done in 2 s")
    stopped = len(lines)
    time.sleep(3 * every)
    assert len(lines) == stopped  # stop() ends the timer
    assert not log.timer.is_alive()
