"""llama.cpp control vectors: a run's steering exported as each layer's nearest constant vector
(exact for mean difference, the mean of the mixture for G-ACT, through the output projection for
ACT and the neuron), TransformerLens names mapped to llama.cpp blocks, schedules llama.cpp cannot
follow refused unless accepted, the GGUF round trip read with the ``gguf`` package, and files in
other tools' layouts imported as mean difference, or refused when made for another model."""

import re

import gguf
import numpy as np
import pytest
import torch

from conftest import DASHBOARD_RUN
from steering.engine.forward import encode_prompts, forward, positions_of
from steering.engine.generation import GenerationConfig, generate
from steering.engine.hooks import thread_hooks
from steering.interface.actions import RunSteering
from steering.interface.cli.main import main
from steering.pipeline.artifacts import SteeringArtifacts
from steering.pipeline.control_vectors import ControlVector, import_control_vector, llama_block, run_control_vector
from steering.pipeline.runner import Pipeline
from steering.store.storage import StorageError


@pytest.fixture(scope="module")
def pipeline(dashboard_runs, embedded):
    return Pipeline.reopen(dashboard_runs / DASHBOARD_RUN, embedded)


def neutral(pipeline) -> list[str]:
    return [t.neutral for t in pipeline.prompts]


def steered_layers(spec) -> list[tuple[int, float]]:
    return [(layer, alpha) for layer, alpha in zip(spec.layers, spec.alphas) if alpha]


def test_transformer_lens_names_map_to_llama_cpp_blocks():
    assert llama_block("blocks.5.hook_resid_post") == (5, "")
    assert llama_block("blocks.5.hook_out") == (5, "")
    assert llama_block("blocks.5.hook_resid_pre") == (4, "")  # block 5's input is block 4's output
    assert llama_block("blocks.5.mlp.hook_out") == (5, "")  # the MLP's output is the block's last addition
    assert "after the block's MLP" in llama_block("blocks.5.hook_attn_out")[1]
    assert [llama_block(name)[0] for name in ("blocks.0.hook_resid_post", "blocks.1.hook_resid_pre",
                                              "blocks.0.hook_resid_pre")] == [0, 0, -1]  # not steerable (below 1)
    with pytest.raises(ValueError, match="refuses direction.0"):
        ControlVector({0: torch.ones(4)}, "llama")
    with pytest.raises(ValueError, match="no place in llama.cpp"):
        llama_block("blocks.3.attn.hook_q")


def test_mean_difference_exports_its_vectors_times_alpha_and_reads_back_the_same(pipeline, embedded, tmp_path):
    steerer = pipeline.steerer("mean_diff")
    vector = run_control_vector(pipeline, "mean_diff", accept_inexact=True)
    expected = {layer: (steerer.strength(layer, alpha) * steerer.mean_vectors[layer]).float()
                for layer, alpha in steered_layers(steerer.spec)}
    assert sorted(vector.directions) == sorted(expected)  # hook_resid_post of layer N is direction.N
    for layer, direction in expected.items():
        torch.testing.assert_close(vector.directions[layer], direction, rtol=1e-4, atol=1e-5)
    assert "steerscope.approximation" not in vector.metadata  # a constant already: only the schedule differs
    assert "every prompt token" in vector.metadata["steerscope.schedule"] and vector.metadata["steerscope.exact"] is False

    path = vector.save(tmp_path / "mean_diff.gguf")
    reader = gguf.GGUFReader(str(path))
    fields = {key: field.contents() for key, field in reader.fields.items()}
    assert fields["general.architecture"] == "controlvector"
    assert fields["controlvector.model_hint"] == "llama"  # the embedded model's Hugging Face model_type
    assert fields["controlvector.layer_count"] == len(expected)
    assert {k: fields[k] for k in vector.metadata} == vector.metadata
    tensors = {t.name: t for t in reader.tensors}
    assert set(tensors) == {f"direction.{layer}" for layer in expected}
    for layer in expected:
        tensor = tensors[f"direction.{layer}"]
        assert tensor.tensor_type == gguf.GGMLQuantizationType.F32 and list(tensor.shape) == [embedded.d_model]
        np.testing.assert_array_equal(tensor.data, vector.directions[layer].numpy())
    back = ControlVector.read(path)
    assert back.model_hint == "llama" and back.layer_count == len(expected) and sorted(back.directions) == sorted(expected)
    assert all(torch.equal(back.directions[b], vector.directions[b]) for b in expected)
    assert back.metadata == {k: v for k, v in vector.metadata.items() if k.startswith("steerscope.")}


def captured(model, prompts, name: str) -> torch.Tensor:
    """What reaches hook ``name`` unsteered, at each prompt's last position."""
    seen = []
    with torch.no_grad(), thread_hooks(model, [(name, lambda a, hook: seen.append(a[:, -1:].float()))]):
        ids, mask = encode_prompts(model, prompts)
        forward(model, ids, mask, positions_of(mask))
    return torch.cat(seen)


def test_gact_exports_the_mean_of_its_mixture_and_says_it_is_an_approximation(pipeline, embedded):
    steerer = pipeline.steerer("gact")
    vector = run_control_vector(pipeline, "gact", accept_inexact=True)
    (first, alpha), *_ = steered_layers(steerer.spec)
    h = captured(embedded, neutral(pipeline), embedded.hook_name(first))[:, 0]  # the first steered layer sees them unsteered
    expected = (steerer.strength(first, alpha) * steerer.direction(first, h)).mean(0).float()
    torch.testing.assert_close(vector.directions[first], expected.detach(), rtol=1e-4, atol=1e-5)
    assert vector.metadata["steerscope.approximation"].startswith("G-ACT's probe-weighted mixture")
    assert vector.metadata["steerscope.method"] == "gact" and vector.metadata["steerscope.exact"] is False


@pytest.mark.parametrize("method, point, alpha, note", [("act", "attn_z", 4.0, "ACT's per-head additions"),
                                                         ("neuron", "mlp_post", 10.0, "the neuron's scaled activation")])
def test_act_and_the_neuron_export_their_mean_through_the_output_projection(method, point, alpha, note, pipeline, embedded):
    steering, layer = RunSteering(pipeline.run.dir, embedded), 5
    steerer = steering.steerer(method, [layer], [alpha], schedule="all")
    vector = steering.control_vector(steerer, accept_inexact=True)
    name = embedded.hook_name(layer, point)
    before = captured(embedded, neutral(pipeline), name)  # [prompts, 1, width]: the one steered layer sees it unsteered
    added = (dict(steerer.hooks(embedded))[name](before.clone(), None) - before)[:, 0].mean(0)
    projection = embedded.hook_map.resolve(name)[0]  # o_proj or down_proj: it writes the block's residual stream
    expected = torch.nn.functional.linear(added, projection.weight.float())
    torch.testing.assert_close(vector.directions[layer], expected, rtol=1e-4, atol=1e-5)
    assert sorted(vector.directions) == [layer] and vector.metadata["steerscope.approximation"].startswith(note)
    if method == "act":  # llama.cpp adds at the block's end: the block's MLP does not see it
        assert f"{name}: added after the block's MLP instead of before it" in vector.metadata["steerscope.approximation"]
        act = pipeline.steerer("act")  # as the run fitted it: every layer, block 0's part left out
        vector = run_control_vector(pipeline, "act", accept_inexact=True)
        assert 0 in act.spec.layers and 0 not in vector.directions and sorted(vector.directions) == list(range(1, 8))
        assert "blocks.0.attn.hook_z left out" in vector.metadata["steerscope.schedule"]


def test_a_schedule_llama_cpp_cannot_follow_is_refused_unless_accepted(dashboard_runs, embedded, tmp_path, capsys):
    run, out = dashboard_runs / DASHBOARD_RUN, tmp_path / "v.gguf"
    assert main(["export-gguf", str(run), str(out), "--method", "mean_diff"]) == 2
    said = capsys.readouterr().out
    assert "llama.cpp cannot express this steering" in said and "--accept-inexact" in said
    assert not out.exists()
    assert main(["export-gguf", str(run), str(out), "--method", "mean_diff", "--accept-inexact"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "warning: not expressed" in said and f"--control-vector {out} (scale 1" in said
    assert ControlVector.read(out).metadata["steerscope.method"] == "mean_diff"

    steering = RunSteering(run, embedded)
    window = steering.steerer("mean_diff", [3], [0.5], schedule="window", schedule_window=4)
    with pytest.raises(ValueError, match="steers first 4 tokens; llama.cpp steers every token"):
        steering.control_vector(window)
    first_block = steering.steerer("mean_diff", [0], [0.5], schedule="all")
    with pytest.raises(ValueError, match=r"nothing to export: llama.cpp cannot steer block 0's output or earlier \(blocks.0"):
        steering.control_vector(first_block, accept_inexact=True)
    with_first = steering.steerer("mean_diff", [0, 3], [0.5, 0.5], schedule="all")
    with pytest.raises(ValueError, match="refuses direction.0.: blocks.0.hook_out left out"):
        steering.control_vector(with_first)
    assert sorted(steering.control_vector(with_first, accept_inexact=True).directions) == [3]
    with pytest.raises(ValueError, match="every steered layer's alpha is 0"):
        steering.control_vector(steering.steerer("mean_diff", [3], [0.0], schedule="all"), accept_inexact=True)


def write_vector(path, directions: dict, hint="llama", count=None, arch="controlvector", count_type="uint32"):
    """A control vector as another tool writes one: repeng (uint32 count of directions) or
    llama.cpp's cvector-generator (int32)."""
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_string(f"{arch}.model_hint", hint)
    getattr(writer, f"add_{count_type}")(f"{arch}.layer_count", len(directions) if count is None else count)
    for name, values in directions.items():
        writer.add_tensor(name if isinstance(name, str) else f"direction.{name}", values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_control_vectors_of_other_tools_import_as_mean_difference_of_every_position(embedded, tmp_path):
    rng = np.random.default_rng(0)
    width, depth = embedded.d_model, embedded.n_layers
    repeng = {layer: rng.standard_normal(width).astype(np.float32) for layer in (2, 3, 5)}
    artifacts = import_control_vector(write_vector(tmp_path / "repeng.gguf", repeng), embedded, scale=0.5)
    spec = artifacts.spec
    assert (artifacts.method, spec.method, spec.positions, spec.schedule) == ("mean_diff", "mean_diff", "all", "all")
    assert spec.layers == (2, 3, 5) and spec.alphas == (0.5, 0.5, 0.5)
    vectors = artifacts.steerer.mean_vectors
    assert all(torch.equal(vectors[layer], torch.from_numpy(v)) for layer, v in repeng.items())
    assert not vectors[[0, 1, 4, 6, 7]].any()

    generator = {layer: rng.standard_normal(width).astype(np.float32) for layer in range(1, depth)}
    path = write_vector(tmp_path / "cvector-generator.gguf", generator, count_type="int32")
    artifacts = import_control_vector(path, embedded, scale=4.0)
    assert artifacts.spec.layers == tuple(range(1, depth))
    prompts = ["Write a function that adds two numbers."]
    config = GenerationConfig(max_new_tokens=12)
    with artifacts.apply(embedded):
        steered = generate(embedded, prompts, config)[0].text
    assert steered != generate(embedded, prompts, config)[0].text  # it steers, the prompt included

    saved = SteeringArtifacts.load(artifacts.save(tmp_path / "imported.safetensors"), embedded)
    assert saved.spec == artifacts.spec and torch.equal(saved.steerer.mean_vectors, artifacts.steerer.mean_vectors)


BAD_VECTORS = {
    "another width": (lambda w, d: {3: np.ones(w + 8, np.float32)}, {}, "has directions of width 136"),
    "a deeper model": (lambda w, d: {d: np.ones(w, np.float32)}, {}, "steers block 8; steerscope-demo has blocks 0..7"),
    "a deeper model's count": (lambda w, d: {3: np.ones(w, np.float32)}, {"count": 36},
                               "declares 36 layers (controlvector.layer_count); steerscope-demo has 8"),
    "another model type": (lambda w, d: {3: np.ones(w, np.float32)}, {"hint": "qwen2"}, "made for a 'qwen2' model"),
    "direction.0": (lambda w, d: {0: np.ones(w, np.float32), 1: np.ones(w, np.float32)}, {}, "holds direction.0"),
    "float16": (lambda w, d: {3: np.ones(w, np.float16)}, {}, "as F16"),
    "two dimensions": (lambda w, d: {3: np.ones((2, w), np.float32)}, {}, "1-D float32 directions only"),
    "NaN": (lambda w, d: {3: np.full(w, np.nan, np.float32)}, {}, "NaN or infinite"),
    "another tensor": (lambda w, d: {"token_embd.weight": np.ones(w, np.float32)}, {}, "holds tensor 'token_embd.weight'"),
    "a model file": (lambda w, d: {3: np.ones(w, np.float32)}, {"arch": "qwen2"}, "holds a 'qwen2' model, not a control"),
}


@pytest.mark.parametrize("case", BAD_VECTORS)
def test_a_control_vector_for_another_model_or_malformed_is_refused_in_one_line(case, embedded, tmp_path, capsys):
    directions, options, message = BAD_VECTORS[case]
    path = write_vector(tmp_path / "bad.gguf", directions(embedded.d_model, embedded.n_layers), **options)
    with pytest.raises(StorageError, match=re.escape(message)):
        import_control_vector(path, embedded)
    assert main(["import-gguf", str(path)]) == 2
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: bad.gguf")


def test_a_truncated_control_vector_is_refused(embedded, tmp_path):
    path = write_vector(tmp_path / "whole.gguf", {3: np.ones(embedded.d_model, np.float32)})
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(StorageError, match="cut.gguf is not a readable GGUF file"):
        ControlVector.read(cut)
    with pytest.raises(StorageError, match="is not a file"):
        ControlVector.read(tmp_path)
    with pytest.raises(StorageError, match="is not a file"):
        ControlVector.read(tmp_path / "absent.gguf")


def test_the_command_line_imports_and_steers_with_a_control_vector(embedded, tmp_path, capsys):
    path = write_vector(tmp_path / "v.gguf", {4: np.random.default_rng(1).standard_normal(embedded.d_model).astype(np.float32)})
    assert main(["import-gguf", str(path), "--scale", "2", "--save", str(tmp_path / "a.safetensors")]) == 0
    said = capsys.readouterr().out
    assert "fits steerscope-demo" in said and SteeringArtifacts.load(tmp_path / "a.safetensors").spec.alphas == (2.0,)
    assert main(["generate", "Write a function that adds two numbers.", "--max-new-tokens", "8",
                 "--control-vector", str(path), "--control-vector-scale", "8"]) == 0
    steered = capsys.readouterr().out
    assert main(["generate", "Write a function that adds two numbers.", "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out != steered
