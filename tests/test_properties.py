"""Issue 18's property: whatever settings, prompt file or vector file a user gives, Steerscope
either accepts it and it works, or refuses it with one line before anything is written."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, event, given, settings, strategies as st
from safetensors.torch import save_file

from conftest import hashes

from steering.code.prompts import PromptSet, PromptSetError
from steering.core.errors import MAX_ERROR_CHARS
from steering.engine.forward import encode_prompts
from steering.engine.generation import GenerationConfig, generate
from steering.interface.cli.main import main
from steering.methods.steer import MeanDiffSteerer, SteeringSpec
from steering.pipeline.runner import Pipeline
from steering.pipeline.settings import PipelineSettings
from steering.pipeline.vectors_io import REQUIRED_METADATA, import_vectors
from steering.store.storage import Run, StorageError

# The same examples on every run (CI must not fail by chance) and no example database written.
EXAMPLES = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
WORDS = ["cpp", "python", "java", "julia", "neutral", "norm", "absolute", "tag", "block", "none", "resid_post", "last",
         "answer", "all", "window", "gated", "fence", "mean", "[/red]", "", " "]
NUMBERS = st.one_of(st.integers(-3, 40), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(0.001, 20))
VALUES = st.one_of(st.none(), st.booleans(), NUMBERS, st.sampled_from(WORDS), st.text(max_size=8),
                   st.lists(NUMBERS, max_size=4).map(tuple), st.lists(st.sampled_from(WORDS), max_size=3).map(tuple))
FIELDS = {f.name: f.default for f in dataclasses.fields(PipelineSettings)}


def _plausible(default):
    """Values of a setting's own kind, mostly valid: so that accepted settings are common too."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(0, 12)
    if isinstance(default, float):
        return st.floats(0, 4)
    if isinstance(default, tuple):
        return st.lists(st.floats(0.05, 4) if default and isinstance(default[0], float) else st.sampled_from(WORDS),
                        min_size=1, max_size=3).map(tuple)
    return st.sampled_from(WORDS)


def _setting(name):
    return st.one_of(st.just(FIELDS[name]), _plausible(FIELDS[name]), _plausible(FIELDS[name]), VALUES)


CHANGES = st.lists(st.sampled_from(sorted(FIELDS)), unique=True, max_size=3).flatmap(
    lambda names: st.fixed_dictionaries({name: _setting(name) for name in names}))


def _one_line(err: BaseException) -> bool:
    text = str(err)
    return bool(text.strip()) and "\n" not in text and len(text) <= MAX_ERROR_CHARS + 100


@EXAMPLES
@given(CHANGES)
def test_any_settings_are_accepted_and_kept_or_refused_in_one_line_before_a_write(embedded, changes):
    prompts = PromptSet.load().head(4)
    with tempfile.TemporaryDirectory() as tmp:
        new = Path(tmp) / "new"
        try:
            chosen = PipelineSettings(**changes)
            Pipeline(embedded, prompts, Run(new, create=True), chosen)
            event("accepted")
        except ValueError as err:
            assert _one_line(err), err
            event("refused")
        else:  # what settings.json keeps is what was chosen
            assert PipelineSettings.from_json(json.loads(json.dumps(chosen.to_json()))) == chosen
        assert not new.exists()


TASK = PromptSet.load().head(1).tasks[0].to_json()
BROKEN_ROWS = [
    st.builds(lambda key, value: {**TASK, key: value}, st.sampled_from(sorted(TASK)), VALUES),  # a field changed
    st.builds(lambda key: {k: v for k, v in TASK.items() if k != key}, st.sampled_from(sorted(TASK))),  # one missing
    st.dictionaries(st.text(max_size=6), VALUES, max_size=4),
    VALUES,
]
ROW = st.integers(0, 9).flatmap(lambda i: st.just(TASK) if i < 6 else BROKEN_ROWS[i - 6])  # a good task 6 times in 10


@EXAMPLES
@given(st.lists(ROW, min_size=1, max_size=3),
       st.sampled_from(["", "", "", "\n", "\n\n{", "\x00", "\ufeff"]))
def test_any_prompt_file_is_accepted_and_works_or_refused_in_one_line(embedded, rows, tail):
    text = "".join(json.dumps({**row, "id": f"{row['id']}{i}"} if isinstance(row, dict) and isinstance(row.get("id"), str)
                              else row) + "\n" for i, row in enumerate(rows)) + tail
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tasks.jsonl"
        path.write_text(text, encoding="utf-8")
        before = hashes(tmp)
        try:
            prompts = PromptSet.load(path)
        except PromptSetError as err:
            assert _one_line(err), err
            code, words = 2, "error:"
            event("refused")
        else:  # it reads back as written, and every prompt it holds can be formatted for the model
            assert PromptSet.from_text(prompts.to_jsonl(), prompts.name) == prompts
            for task in prompts.tasks:
                encode_prompts(embedded, [task.neutral, *task.prompts.values(), *task.paraphrases])
            code, words = 0, "valid"
            event("accepted")
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert main(["prompts", str(path)]) == code  # the command line says the same
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        assert words in lines[-1] and sum("error:" in line for line in lines) == code // 2
        assert hashes(tmp) == before


DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int8, torch.bool]
ELEMENTS = st.one_of(st.floats(-4, 4), st.sampled_from([0.0, float("nan"), float("inf"), 1e30]))


@st.composite
def vector_files(draw):
    """A safetensors file as a hand-made or foreign one may be: any dtype, shape and header."""
    n = draw(st.sampled_from([0, 1, 1, 1, 2, 3]))
    tensors = {}
    for i in range(n):
        layers, last = draw(st.sampled_from([8] * 6 + [7, 0])), draw(st.sampled_from([128] * 4 + [64]))
        middle = draw(st.lists(st.integers(1, 3), max_size=1))
        fill = draw(ELEMENTS)
        tensor = torch.full((layers, *middle, last), fill) if draw(st.integers(0, 3)) == 0 else torch.randn(layers, *middle, last)
        tensors[f"t{i}"] = tensor.to(draw(st.sampled_from([torch.float32] * 3 + DTYPES)))
    good = {"model": "steerscope-demo", "d_model": 128, "n_layers": 8, "hook_point": "resid_post", "position": "last",
            "weight_processing": "none"}
    metadata = {}
    for key in REQUIRED_METADATA:
        choice = draw(st.sampled_from(["good"] * 12 + ["missing", "other"]))
        if choice != "missing":
            metadata[key] = good[key] if choice == "good" else draw(VALUES)
    return tensors, metadata


@EXAMPLES
@given(vector_files())
def test_any_vector_file_is_accepted_and_steers_or_refused_in_one_line(embedded, file):
    tensors, metadata = file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.safetensors"
        save_file(tensors, str(path), metadata={k: json.dumps(v) for k, v in metadata.items()})
        before = hashes(tmp)
        try:
            loaded, _ = import_vectors(path, embedded)
            event("accepted")
        except StorageError as err:
            assert _one_line(err), err
            event("refused")
        else:  # every tensor it holds steers the model: an answer, or one that says why it stopped
            for tensor in loaded.values():
                mean = tensor.float().reshape(tensor.shape[0], -1, tensor.shape[-1])[:, 0]
                steerer = MeanDiffSteerer(SteeringSpec((1,), (1.0,), method="mean_diff"), mean)
                answer = generate(embedded, "Sort a list.", GenerationConfig(max_new_tokens=3), steerer=steerer)[0]
                assert answer.n_tokens > 0 or answer.stop_reason
        assert hashes(tmp) == before
