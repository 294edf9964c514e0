"""Thread count on a busy machine: the embedded model's whole pipeline (46 tasks) alone, then with
one other process spinning on a core, once with the thread count chosen from the free cores (the
default) and once with torch's usual one thread per core (``STEERSCOPE_THREADS`` = all cores).

    python bench/bench_threads.py

Each pipeline runs in a fresh ``python -m steering run`` process; the busy process is a bounded
Python loop that stops by itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pipeline_seconds(threads: str | None) -> float:
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("STEERSCOPE_THREADS", None)
    if threads:
        env["STEERSCOPE_THREADS"] = threads
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "steering", "run", "--out", f"{tmp}/run"], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - started


def busy(seconds: float) -> subprocess.Popen:
    """Another process keeping one core busy, for at most ``seconds``."""
    loop = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"
    return subprocess.Popen([sys.executable, "-c", loop])


def main() -> None:
    cores = str(os.cpu_count() or 1)
    alone = pipeline_seconds(None)
    print(f"pipeline alone, threads from the free cores: {alone:.0f} s")
    for label, threads in (("threads from the free cores", None), (f"{cores} threads (torch's default)", cores)):
        spinner = busy(1800)
        try:
            time.sleep(2)  # let the load show
            loaded = pipeline_seconds(threads)
        finally:
            spinner.kill()
        print(f"pipeline beside a busy process, {label}: {loaded:.0f} s ({loaded / alone:.2f}x alone)")


if __name__ == "__main__":
    main()
