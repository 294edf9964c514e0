"""Issue 19: data parallel on Ray. Two local replicas give what one process gives, a replica
that dies is restarted and its batches retried, and one that stays dead fails the stage, which
is then not recorded."""

from __future__ import annotations

import json
import threading

import pytest

from steering.cli import main
from steering.generation import GenerationConfig, generate
from steering.parallel import WorkerError, workers
from steering.prompts import PromptSet
from steering.storage import Run

ray = pytest.importorskip("ray")


def _tables(run_dir) -> tuple[list, list]:
    """A run's metrics and generations, without the times they were written."""
    run = Run(run_dir)
    metrics = sorted((m["stage"], m["name"], str(m["layer"]), repr(m["value"]), json.dumps(m["extra"], sort_keys=True))
                     for m in run.metrics() if m["name"] != "note")
    generations = sorted(json.dumps(g, sort_keys=True) for g in run.generations())
    return metrics, generations


def test_two_ray_workers_give_the_run_one_process_gives(tmp_path):
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
    """Each replica's batch runs for seconds (160 tokens, no stop); the first is killed 2 s in,
    while it decodes. Its batch is retried on the restarted replica, with the same tokens."""
    config = GenerationConfig(max_new_tokens=160, temperature=1.0, seed=3, batch_size=3, stop="none")
    alone = [a.tokens for a in generate(embedded, PROMPTS[:6], config)]
    with workers(embedded, None, 2) as pool:
        before = ray.get(pool.actors[0].pid.remote())
        killer = threading.Timer(2.0, ray.kill, (pool.actors[0],), {"no_restart": False})
        killer.start()
        try:
            assert [a.tokens for a in generate(embedded, PROMPTS[:6], config)] == alone
        finally:
            killer.join()
        assert ray.get(pool.actors[0].pid.remote()) != before


def test_a_replica_that_stays_dead_fails_the_stage_and_nothing_is_recorded(embedded, tmp_path):
    from steering.pipeline import Pipeline
    from steering.settings import PipelineSettings

    pipeline = Pipeline(embedded, PromptSet.load().head(4), Run(tmp_path / "r", create=True), PipelineSettings())
    with workers(embedded, None, 2) as pool:
        ray.kill(pool.actors[0], no_restart=True)  # the first batch goes to the first replica
        with pytest.raises(WorkerError, match="a worker failed twice while generating .*nothing of this stage is recorded"):
            pipeline.run_stage("bias")
    assert "bias" not in pipeline.done_stages() and not Run(tmp_path / "r").metrics("bias")
