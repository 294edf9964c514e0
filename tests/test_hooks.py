"""Hooks owned by one thread and one call: another thread never sees them."""

from __future__ import annotations

import threading

from steering.engine.generation import GenerationConfig, generate


def test_hooks_of_one_thread_never_touch_another(tiny_llama):
    """Two generations at once on one model, one with a hook that wrecks the residual stream."""
    config = GenerationConfig(max_new_tokens=20)
    expected = generate(tiny_llama, ["def f"], config)[0].text
    started = threading.Barrier(2)
    results = {}

    def wreck(activation, hook):
        return activation * 0 + 100.0

    def steered():
        started.wait()
        results["steered"] = generate(tiny_llama, ["def f"], config, fwd_hooks=[("blocks.1.hook_out", wreck)])[0].text

    def plain():
        started.wait()
        results["plain"] = [generate(tiny_llama, ["def f"], config)[0].text for _ in range(3)]

    threads = [threading.Thread(target=steered), threading.Thread(target=plain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["plain"] == [expected] * 3
    assert results["steered"] != expected
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in tiny_llama.hf_model.modules())
