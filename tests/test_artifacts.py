"""The in-memory API: ``fit(model, prompts, method, settings) -> SteeringArtifacts`` for every
method of the registry, with no run directory, saved and loaded as one file, checked against the
model it is applied to."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch

from conftest import hashes

import steering
from steering import METHODS, PipelineSettings, PromptSet, SteeringArtifacts, fit, fit_gact, generate
from steering.engine.generation import GenerationConfig
from steering.store.storage import StorageError

QUICK = dict(probe_epochs=200, sweep_alphas=(0.5, 1.0), refine_steps=3, max_new_tokens=48, batch_size=16)


@pytest.fixture(scope="module")
def fitted(embedded, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cwd")
    here = os.getcwd()
    os.chdir(folder)
    try:
        artifacts = fit_gact(embedded, PromptSet.load().head(8), PipelineSettings(**QUICK))
    finally:
        os.chdir(here)
    assert hashes(folder) == {}  # nothing written where it ran
    return artifacts


def test_the_library_says_what_it_is():
    assert {"load_model", "PromptSet", "PipelineSettings", "fit_gact", "SteeringArtifacts", "generate",
            "ControlVector", "import_control_vector"} <= set(steering.__all__)
    assert all(getattr(steering, name) is not None for name in steering.__all__)  # each name resolves
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        steering.nope


def test_fit_gact_returns_artifacts_that_steer_in_memory(fitted, embedded):
    assert fitted.steerer.vectors.shape == (8, 3, embedded.d_model) and fitted.method == "gact"
    assert fitted.spec.method == "gact" and fitted.spec.layers
    assert fitted.provenance["model_fingerprint"] == embedded.fingerprint and fitted.provenance["target"] == "cpp"
    prompts = [t.neutral for t in PromptSet.load().head(4)]
    config = GenerationConfig(max_new_tokens=48)
    plain = generate(embedded, prompts, config)
    with fitted.apply(embedded):
        steered = generate(embedded, prompts, config)
    assert [a.text for a in generate(embedded, prompts, config)] == [a.text for a in plain]  # hooks gone with the block
    expected = generate(embedded, prompts, config, fwd_hooks=fitted.steerer.hooks(embedded))
    assert [a.text for a in steered] == [a.text for a in expected] != [a.text for a in plain]


def test_artifacts_save_and_load_as_one_unit(fitted, embedded, tiny_llama, tmp_path):
    path = fitted.save(tmp_path / "cpp.safetensors")
    loaded = SteeringArtifacts.load(path, embedded)
    assert torch.equal(loaded.steerer.vectors, fitted.steerer.vectors) and loaded.spec == fitted.spec
    assert loaded.provenance == fitted.provenance
    h = torch.randn(5, embedded.d_model)
    for layer in fitted.spec.layers:
        assert torch.allclose(loaded.steerer.direction(layer, h), fitted.steerer.direction(layer, h))
    with pytest.raises(StorageError, match="d_model"):
        SteeringArtifacts.load(path, tiny_llama)
    with pytest.raises(StorageError, match="not a Steerscope artifacts file"):
        SteeringArtifacts.load(_other_file(tmp_path))


def _other_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "vectors.safetensors"
    save_file({"v": torch.ones(2, 2)}, str(path))
    return path


def test_a_runs_artifacts_are_the_pipelines(dashboard_runs, embedded):
    from conftest import DASHBOARD_RUN

    artifacts = SteeringArtifacts.from_run(dashboard_runs / DASHBOARD_RUN, embedded)
    assert artifacts.provenance["inputs"] and artifacts.steerer.log_gains is not None
    assert artifacts.spec.layers
    act = SteeringArtifacts.from_run(dashboard_runs / DASHBOARD_RUN, embedded, "act")
    assert act.spec.method == "act" and act.provenance["inputs"] == artifacts.provenance["inputs"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["mean_diff", "act", "neuron"])
def test_every_method_fits_in_memory_applies_and_round_trips(method, embedded, tmp_path):
    """Mean difference, ACT and the neuron baseline are artifacts like G-ACT: fitted with no
    run directory, applied in a block, saved and loaded as one file that steers the same."""
    settings = PipelineSettings(**QUICK, act_alphas=(1.0, 4.0))
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        artifacts = fit(embedded, PromptSet.load().head(8), method, settings)
    finally:
        os.chdir(here)
    assert hashes(tmp_path) == {}
    assert artifacts.method == method and artifacts.spec.method == METHODS[method].steers_as
    prompts = [t.neutral for t in PromptSet.load().head(3)]
    config = GenerationConfig(max_new_tokens=32)
    with artifacts.apply(embedded):
        steered = [a.text for a in generate(embedded, prompts, config)]
    assert steered == [a.text for a in generate(embedded, prompts, config, fwd_hooks=artifacts.steerer.hooks(embedded))]
    loaded = SteeringArtifacts.load(artifacts.save(tmp_path / f"{method}.safetensors"), embedded)
    assert loaded.spec == artifacts.spec and loaded.method == method and loaded.provenance == artifacts.provenance
    with loaded.apply(embedded):
        assert [a.text for a in generate(embedded, prompts, config)] == steered


def test_a_schedule_travels_with_the_artifacts(fitted, embedded, tmp_path):
    """Issue 16: the schedule is part of what is saved, and ``generate`` steers on it."""
    windowed = SteeringArtifacts(replace(fitted.steerer, spec=replace(fitted.spec, schedule="window", window=3)),
                                 fitted.method, fitted.provenance)
    loaded = SteeringArtifacts.load(windowed.save(tmp_path / "window.safetensors"), embedded)
    assert loaded.spec.schedule == "window" and loaded.spec.window == 3
    prompts = [t.neutral for t in PromptSet.load().head(3)]
    config = GenerationConfig(max_new_tokens=24)
    assert [a.text for a in loaded.generate(embedded, prompts, config)] == \
        [a.text for a in generate(embedded, prompts, config, steerer=windowed.steerer)]
    with pytest.raises(ValueError, match="counts generated tokens"):
        with loaded.apply(embedded):
            pass


@pytest.mark.parametrize("spec", [{}, {"method": "gact"}, [1, 2], "text", {"layers": "x", "alphas": None, "method": "gact"}])
def test_a_tampered_artifacts_file_is_refused_in_one_line(fitted, tmp_path, spec):
    """Issue 18: a hand-edited header is a StorageError naming the file, never a bare KeyError or TypeError."""
    import json

    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    path = fitted.save(tmp_path / "cpp.safetensors")
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata()
    meta["spec"] = json.dumps(spec)
    save_file(load_file(str(path)), str(tmp_path / "tampered.safetensors"), metadata=meta)
    with pytest.raises(StorageError, match="tampered.safetensors"):
        SteeringArtifacts.load(tmp_path / "tampered.safetensors")


def test_artifacts_with_nan_values_are_refused_in_one_line(fitted, tmp_path):
    """Issue 18: a learned state with NaN or infinite values is refused at load, not steered with."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = fitted.save(tmp_path / "cpp.safetensors")
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata()
    tensors = load_file(str(path))
    key = next(k for k, t in tensors.items() if t.dtype.is_floating_point and not k.endswith("accuracy_"))
    tensors[key] = tensors[key].clone().fill_(float("inf"))
    save_file(tensors, str(tmp_path / "inf.safetensors"), metadata=meta)
    with pytest.raises(StorageError, match=f"inf.safetensors holds {key} with NaN or infinite values"):
        SteeringArtifacts.load(tmp_path / "inf.safetensors")
