"""torch's thread count: the cores other processes leave free, or ``STEERSCOPE_THREADS``."""

from __future__ import annotations

import os

import pytest
import torch

from steering.core.threads import configure_threads


def test_free_cores_count_other_processes_not_this_one(monkeypatch):
    from steering.core import threads

    class Me:
        def __init__(self, own):
            self.own = own

        def cpu_percent(self, interval=None):
            return self.own

    monkeypatch.setattr(threads.psutil, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads.psutil, "cpu_percent", lambda interval=None: 50.0)  # one core of two busy
    monkeypatch.setattr(threads.psutil, "Process", lambda: Me(0.0))
    assert threads.free_cores() == 1  # another process keeps a core busy
    monkeypatch.setattr(threads.psutil, "Process", lambda: Me(100.0))
    assert threads.free_cores() == 2  # the busy one is this process itself
    monkeypatch.setattr(threads.psutil, "cpu_percent", lambda interval=None: 100.0)
    monkeypatch.setattr(threads.psutil, "Process", lambda: Me(0.0))
    assert threads.free_cores() == 1  # never fewer than one


def test_threads_follow_the_setting(monkeypatch):
    monkeypatch.setenv("STEERSCOPE_THREADS", "1")
    assert configure_threads() == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("STEERSCOPE_THREADS", "many")
    with pytest.raises(ValueError, match="STEERSCOPE_THREADS must be a positive integer"):
        configure_threads()
    monkeypatch.delenv("STEERSCOPE_THREADS")
    assert 1 <= configure_threads() <= (os.cpu_count() or 1)
