"""Data parallel generation on Ray: replicas of the model in Ray actors (one per GPU where there
are GPUs, else a share of the CPU threads each), and ``generate`` handing them whole batches.

The batches are formed as one process forms them (``generation._batches``) and each is decoded
whole by one replica, with the seeds each prompt has anyway, so padding, batched arithmetic and
sampling are those of one process: the answers are the same. Inside ``with workers(...)``, every
``generate`` call of this thread without streaming or extra hooks goes to the replicas (the bias
answers, the answers extraction and ACT read, the evaluation and the sweep's selection).

A replica that dies is restarted once and its batch retried; a second death fails the call
with one line, so the stage that asked is not recorded as done.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager

from ..core.limits import RAY_CONNECT_SECONDS, LimitError, check as check_limit
from ..core.progress import beat
from .generation import decoding_on

ADDRESS_VAR = "STEERSCOPE_RAY_ADDRESS"  # join this Ray cluster (ray start --head prints it) instead of a local one


class WorkerError(RuntimeError):
    """A replica failed twice on the same batch; the message says which and why."""


def check_workers(count: int | None) -> None:
    """Refuse, before anything starts, a replica count this machine cannot run (more than its
    cores) and a Ray address where nothing answers within ``RAY_CONNECT_SECONDS``. A cluster's
    own CPU and GPU counts are checked once Ray has joined it (``Pool``)."""
    if count is None or count == 0:
        return
    address = os.environ.get(ADDRESS_VAR) or None
    if address is None:
        check_limit("workers", count, "--workers", high=os.cpu_count() or 1, because="this machine's cores")
        return
    check_limit("workers", count, "--workers")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or not port.isdigit():
        return  # Ray finds a local cluster itself, and says so when there is none
    seconds = RAY_CONNECT_SECONDS
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=seconds).close()
    except OSError as err:
        raise LimitError(f"{ADDRESS_VAR}={address}: no Ray cluster answered within {seconds:g} s ({err.strerror or err}); "
                         f"start one (ray start --head) or unset {ADDRESS_VAR} to run locally") from None


def _cluster_room(ray, count: int, gpus: int) -> None:
    """Refuse more replicas than the joined cluster reports it can run (each takes 1 CPU, and a GPU on GPUs)."""
    resources = ray.cluster_resources()
    for kind, need in (("CPU", 1), ("GPU", gpus)):
        have = int(resources.get(kind, 0))
        if need and count * need > have:
            raise LimitError(f"--workers {count}: the Ray cluster reports {have} {kind}s, and each replica takes {need} "
                             f"(at most {have // need})")


class Replica:
    """One copy of the model in a Ray actor's process, loaded as the driver's was."""

    def __init__(self, model_ref: str | None, dtype: str, instruction: str | None, device: str, threads: int):
        os.environ["STEERSCOPE_THREADS"] = str(threads)
        from .models import load_model

        self.model = load_model(model_ref, device=device, dtype=dtype, instruction=instruction)

    def fingerprint(self) -> str:
        return self.model.fingerprint

    def pid(self) -> int:
        return os.getpid()

    def generate(self, prompts, config, seeds, steerer, steered_rows):
        """One batch, decoded whole (never re-split), as the driver would decode it."""
        from .generation import decode_batch

        return decode_batch(self.model, prompts, seeds, config, steerer=steerer, steered_rows=steered_rows)


class Pool:
    """``workers`` replicas of ``model`` (loaded from ``model_ref``, as the pipeline records it)."""

    def __init__(self, model, model_ref: str | None, workers: int):
        import ray
        import torch

        check_workers(workers)
        address = os.environ.get(ADDRESS_VAR) or None
        if not ray.is_initialized():
            ray.init(address=address, num_cpus=None if address else os.cpu_count() or 1,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        gpus = 1 if model.device.type == "cuda" else 0
        _cluster_room(ray, workers, gpus)
        threads = max(1, (os.cpu_count() or 1) // workers) if not gpus else torch.get_num_threads()
        actor = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=1, max_task_retries=1)(Replica)
        self.actors = [actor.remote(model_ref, model.facts.dtype, model.instruction, "cuda" if gpus else "cpu", threads)
                       for _ in range(workers)]
        self._ray = ray
        found = self._gather([a.fingerprint.remote() for a in self.actors], lambda n: None, "loading the model")
        if any(f != model.fingerprint for f in found):
            raise WorkerError(f"a worker loaded other weights than {model.facts.name} (fingerprints {sorted(set(found))})")

    def generate(self, batches, config, steerer, on_answers) -> list:
        """The answers to ``batches`` (``(prompts, seeds, steered_rows)`` each), in order."""
        shared = self._ray.put(steerer)
        futures = [self.actors[i % len(self.actors)].generate.remote(p, config, s, shared, rows)
                   for i, (p, s, rows) in enumerate(batches)]
        return self._gather(futures, on_answers, "generating")

    def _gather(self, futures, on_answers, doing: str) -> list:
        """Results in order; ``on_answers`` as each lands, and a heartbeat every second meanwhile."""
        ray = self._ray
        results, pending = [None] * len(futures), {f: i for i, f in enumerate(futures)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            beat()
            for future in done:
                i = pending.pop(future)
                try:
                    results[i] = ray.get(future)
                except ray.exceptions.RayError as err:
                    raise WorkerError(f"a worker failed twice while {doing} (batch {i + 1} of {len(futures)}): "
                                      f"{type(err).__name__}; nothing of this stage is recorded") from None
                if isinstance(results[i], list):
                    on_answers(len(results[i]))
        return results

    def close(self) -> None:
        for actor in self.actors:
            self._ray.kill(actor)


@contextmanager
def workers(model, model_ref: str | None, count: int | None):
    """Hand this thread's ``generate`` calls to ``count`` Ray replicas inside the block (None or
    0: decode here, as without the block)."""
    if not count:
        yield None
        return
    pool = Pool(model, model_ref, count)
    try:
        with decoding_on(pool):
            yield pool
    finally:
        pool.close()
