"""Issue 19: data parallel on Ray. Two local replicas give what one process gives, a replica
that dies is restarted and its batches retried, and one that stays dead fails the stage, which
is then not recorded."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch

from steering.code.prompts import PromptSet
from steering.engine.generation import GenerationConfig, generate
from steering.engine.parallel import WorkerError, workers
from steering.interface.cli.main import main
from steering.store.storage import Run

ray = pytest.importorskip("ray")


def _tables(run_dir) -> tuple[list, list]:
    """A run's metrics and generations, without the times they were written."""
    run = Run(run_dir)
    metrics = sorted((m["stage"], m["name"], str(m["layer"]), repr(m["value"]), json.dumps(m["extra"], sort_keys=True))
                     for m in run.metrics() if m["name"] != "note")
    generations = sorted(json.dumps(g, sort_keys=True) for g in run.generations())
    return metrics, generations


def test_two_ray_workers_give_the_run_one_process_gives(tmp_path, monkeypatch):
    # One thread here and in the replicas (they inherit the environment): with the free cores' count,
    # a loaded machine gave the two runs different thread counts, whose float sums can differ in the
    # last bit and flip a greedy token; this test compares the parallelism, not the thread count.
    monkeypatch.setenv("STEERSCOPE_THREADS", "1")
    prompts = tmp_path / "four.jsonl"
    prompts.write_text(PromptSet.load().head(4).to_jsonl())
    assert main(["run", "--prompts", str(prompts), "--out", str(tmp_path / "one")]) == 0
    assert main(["run", "--prompts", str(prompts), "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    one, two = _tables(tmp_path / "one"), _tables(tmp_path / "two")
    assert one[1] and one == two  # every metric and every generation, bias to evaluation


PROMPTS = [t.neutral for t in PromptSet.load().head(6)] * 2
CONFIG = GenerationConfig(max_new_tokens=24, temperature=1.0, seed=7, batch_size=3)


def test_a_replica_that_dies_is_restarted_and_its_batches_retried(embedded):
    alone = [a.tokens for a in generate(embedded, PROMPTS, CONFIG)]
    with workers(embedded, None, 2) as pool:
        before = ray.get(pool.actors[0].pid.remote())
        ray.kill(pool.actors[0], no_restart=False)  # its process dies; Ray starts another
        assert [a.tokens for a in generate(embedded, PROMPTS, CONFIG)] == alone
        assert ray.get(pool.actors[0].pid.remote()) != before


def test_a_replica_killed_mid_batch_is_restarted_and_its_batch_decoded_again(embedded):
    """Each replica decodes one batch of long answers (a strong steering keeps the model off its
    end token for 160 tokens); the first replica is killed a quarter of the way into the time
    one process takes, while the call is decoding. Its batch is retried on the restarted
    replica, with the same tokens."""
    from steering.methods.steer import MeanDiffSteerer, SteeringSpec

    vectors = torch.zeros(embedded.n_layers, embedded.d_model)
    vectors[4] = torch.randn(embedded.d_model, generator=torch.Generator().manual_seed(1))
    steerer = MeanDiffSteerer(SteeringSpec((4,), (6.0,), "mean_diff"), vectors)
    config = GenerationConfig(max_new_tokens=160, temperature=1.0, seed=3, batch_size=3, stop="none")
    start = time.perf_counter()
    alone = [a.tokens for a in generate(embedded, PROMPTS[:6], config, steerer=steerer)]
    took = time.perf_counter() - start
    assert min(map(len, alone)) > 100  # long answers: the batches decode for a while
    with workers(embedded, None, 2) as pool:
        before, killed = ray.get(pool.actors[0].pid.remote()), []
        killer = threading.Timer(took / 4, lambda: killed.append(time.perf_counter()) or ray.kill(pool.actors[0], no_restart=False))
        start = time.perf_counter()
        killer.start()
        tokens = [a.tokens for a in generate(embedded, PROMPTS[:6], config, steerer=steerer)]
        end = time.perf_counter()
        killer.join()
        assert tokens == alone
        assert start < killed[0] < end  # the kill landed while the call was decoding
        assert ray.get(pool.actors[0].pid.remote()) != before


def test_a_replica_that_stays_dead_fails_the_stage_and_nothing_is_recorded(embedded, tmp_path):
    from steering.pipeline.runner import Pipeline
    from steering.pipeline.settings import PipelineSettings

    pipeline = Pipeline(embedded, PromptSet.load().head(4), Run(tmp_path / "r", create=True), PipelineSettings())
    with workers(embedded, None, 2) as pool:
        ray.kill(pool.actors[0], no_restart=True)  # the first batch goes to the first replica
        with pytest.raises(WorkerError, match="a worker failed twice while generating .*nothing of this stage is recorded"):
            pipeline.run_stage("bias")
    assert "bias" not in pipeline.done_stages() and not Run(tmp_path / "r").metrics("bias")

