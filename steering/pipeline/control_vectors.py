"""llama.cpp control vectors: a steering as the GGUF file that llama.cpp, and the tools built on
it, load with ``--control-vector FILE`` (``--control-vector-scaled FILE:S`` to scale it); and such
files read back as a steering.

The format, from llama.cpp's loader (``common_control_vector_load``): architecture
``controlvector``, a 1-D float32 tensor ``direction.N`` per steered block, which llama.cpp adds,
times ``S``, to block N's output at every position, the prompt included. It refuses a file that
names ``direction.0``, so neither block 0's output nor its input can be steered. ``controlvector.model_hint``
(the model's type) and ``controlvector.layer_count`` (the number of directions, as llama.cpp's
and repeng's writers count it) are read by no engine, only by people and other tools.

So only a constant addition to a block's output is exact. What Steerscope exports for each
steered layer is its *nearest constant vector*: the mean of what the steering adds to the
residual stream at the last position of each of the run's neutral prompts (where the first
answer token is chosen), with the steering on every layer at once. For mean difference that is
its vector times alpha, exactly; for G-ACT's probe-weighted mixture, ACT's gated heads and the
neuron's scaled activation it is an approximation, and the file's ``steerscope.approximation``
says so. A schedule llama.cpp cannot express (generated tokens only, a window, until the fence,
gated), or a steering of block 0 (left out), is refused unless the caller accepts it
(``accept_inexact``); the file records it.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..core.files import atomic_write_bytes
from ..core.limits import LimitError, check as check_limit
from ..engine.gguf_layout import GGUFLayoutError, check_layout
from ..engine.hooks import thread_hooks
from ..methods.registry import DEFAULT_METHOD, export_note
from ..store.storage import StorageError

ARCH = "controlvector"
HINT_KEY, COUNT_KEY = f"{ARCH}.model_hint", f"{ARCH}.layer_count"
_DIRECTION = re.compile(r"direction\.(\d+)")

# Where a TransformerLens hook sits relative to the output of its block (llama.cpp's only place),
# and what moving a constant there changes. "blocks.N.hook_resid_pre" is block N-1's output.
_PLACES = {
    "hook_resid_pre": (-1, ""), "hook_resid_post": (0, ""), "hook_out": (0, ""),
    "hook_mlp_out": (0, ""), "mlp.hook_out": (0, ""),  # the MLP's output is added last in a block
    "mlp.hook_post": (0, ""),  # the down projection's output is added last too
    "hook_attn_out": (0, "added after the block's MLP instead of before it"),
    "attn.hook_out": (0, "added after the block's MLP instead of before it"),
    "attn.hook_z": (0, "added after the block's MLP instead of before it"),
}


def llama_block(hook_name: str) -> tuple[int, str]:
    """The llama.cpp block whose ``direction`` a constant added at ``hook_name`` becomes, and
    what that move changes ("" when nothing); a ValueError for a place llama.cpp has no
    equivalent of. A block below 1 cannot be steered (llama.cpp refuses ``direction.0``)."""
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", hook_name)
    if not match or match.group(2) not in _PLACES:
        raise ValueError(f"{hook_name!r} has no place in llama.cpp's control vectors; it adds to block outputs "
                         f"(blocks.N.hook_resid_post) only")
    offset, note = _PLACES[match.group(2)]
    return int(match.group(1)) + offset, note


@dataclass(frozen=True)
class ControlVector:
    """``directions``: llama.cpp block -> float32 ``[d_model]`` vector, strength included;
    ``model_hint``: the model's type (``qwen2``); ``metadata``: Steerscope's ``steerscope.*``
    keys (provenance; ``steerscope.schedule``: what llama.cpp does not follow, and
    ``steerscope.approximation``: what is approximate, each absent when nothing)."""

    directions: dict[int, torch.Tensor]
    model_hint: str
    metadata: dict = field(default_factory=dict)
    layer_count: int | None = None  # as a file declared it (writers count directions, or the model's layers)

    def __post_init__(self):
        if not self.directions:
            raise ValueError("a control vector needs at least one direction")
        widths = {int(v.shape[-1]) for v in self.directions.values()}
        if len(widths) != 1 or any(v.dim() != 1 for v in self.directions.values()):
            raise ValueError(f"control vector directions must be 1-D and equally wide, got widths {sorted(widths)}")
        if min(self.directions) < 1:
            raise ValueError("llama.cpp refuses direction.0: block 0's output cannot be steered")

    @property
    def differences(self) -> dict[str, str]:
        """What the file does not do as Steerscope did, by kind: "not expressed" (the schedule,
        ``steerscope.schedule``) and "approximated" (``steerscope.approximation``); empty when exact."""
        kinds = {"not expressed": "steerscope.schedule", "approximated": "steerscope.approximation"}
        return {kind: self.metadata[key] for kind, key in kinds.items() if key in self.metadata}

    @property
    def width(self) -> int:
        return int(next(iter(self.directions.values())).shape[-1])

    def to_bytes(self) -> bytes:
        """The GGUF file, as bytes (``gguf.GGUFWriter`` writes to a path only)."""
        import gguf

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "vector.gguf"
            writer = gguf.GGUFWriter(str(path), ARCH)
            writer.add_string(HINT_KEY, self.model_hint)
            writer.add_int32(COUNT_KEY, len(self.directions))  # as llama.cpp's and repeng's writers count
            for key, value in self.metadata.items():
                add = {bool: writer.add_bool, int: writer.add_int64, float: writer.add_float64}.get(type(value), writer.add_string)
                add(key, value if type(value) in (bool, int, float) else str(value))
            for block in sorted(self.directions):
                writer.add_tensor(f"direction.{block}", self.directions[block].detach().float().cpu().numpy())
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()
            return path.read_bytes()

    def llama_buffer(self, n_layers: int):
        """The float32 array llama.cpp's C API takes (``llama_set_adapter_cvec(ctx, data, len,
        width, 1, n_layers - 1)``), as its loader lays a file out: block il at ``(il - 1) * width``."""
        import numpy as np

        if max(self.directions) >= n_layers:
            raise ValueError(f"this control vector steers block {max(self.directions)}; the model has {n_layers} blocks")
        data = np.zeros((n_layers - 1, self.width), dtype=np.float32)
        for block, direction in self.directions.items():
            data[block - 1] = direction.detach().float().cpu().numpy()
        return data.reshape(-1)

    def save(self, path: str | Path, force: bool = False) -> Path:
        """The GGUF file at ``path``; an existing file is replaced only with ``force``."""
        atomic_write_bytes(path, self.to_bytes(), replace=force)
        return Path(path)

    @classmethod
    def read(cls, path: str | Path) -> "ControlVector":
        """A control vector file as llama.cpp would load it (any writer's layout: llama.cpp's
        cvector-generator, repeng, ours); a StorageError naming what is wrong otherwise."""
        path = Path(path)
        name = path.name
        if not path.is_file():  # a pipe or a device would block the read
            raise StorageError(f"{name} is not a file: give the path of a control vector (.gguf)")
        try:
            check_limit("control_vector_bytes", path.stat().st_size, f"{name}'s size")
            check_layout(path)  # before GGUFReader, which trusts the counts a header declares
        except (GGUFLayoutError, LimitError) as err:
            raise StorageError(str(err)) from None
        from gguf import GGUFReader

        try:
            reader = GGUFReader(str(path))
        except Exception as err:  # gguf raises ValueError, struct.error, IndexError... on a bad file
            raise StorageError(f"{name} is not a readable GGUF file ({type(err).__name__}: {str(err)[:120]})") from None
        fields = {key: _value(f) for key, f in reader.fields.items()}
        if fields.get("general.architecture") != ARCH:
            raise StorageError(f"{name} holds a {fields.get('general.architecture')!r} model, not a control vector "
                               f"(architecture {ARCH!r})")
        directions = {}
        for tensor in reader.tensors:
            match = _DIRECTION.fullmatch(tensor.name)
            if not match:
                raise StorageError(f"{name} holds tensor {tensor.name!r}; a control vector holds direction.N only")
            if tensor.tensor_type.name != "F32" or len(tensor.shape) != 1:
                raise StorageError(f"{name} holds {tensor.name} as {tensor.tensor_type.name} with shape "
                                   f"{list(tensor.shape)}; llama.cpp reads 1-D float32 directions only")
            values = torch.tensor(tensor.data.copy(), dtype=torch.float32)
            if not torch.isfinite(values).all():
                raise StorageError(f"{name} holds {tensor.name} with NaN or infinite values")
            directions[int(match.group(1))] = directions.get(int(match.group(1)), 0) + values  # llama.cpp sums repeats
        if not directions:
            raise StorageError(f"{name} holds no direction tensors")
        if 0 in directions:
            raise StorageError(f"{name} holds direction.0, which llama.cpp refuses (block 0's output cannot be steered)")
        count = fields.get(COUNT_KEY)
        try:
            if count is not None:
                check_limit("control_vector_layer_count", count, f"{name}'s {COUNT_KEY}")
            return cls(directions, str(fields.get(HINT_KEY, "")),
                       {k: v for k, v in fields.items() if k.startswith("steerscope.")},
                       int(count) if count is not None else None)
        except LimitError as err:
            raise StorageError(str(err)) from None
        except ValueError as err:
            raise StorageError(f"{name}: {err}") from None

    def check_model(self, model, name: str = "this control vector") -> None:
        """Refuse ``model`` if the vector was made for another: width, depth or model type."""
        model_type = _model_type(model)
        if self.width != model.d_model:
            raise StorageError(f"{name} has directions of width {self.width} ({self.model_hint or 'no model hint'}); "
                               f"{model.facts.name} has d_model {model.d_model}")
        if max(self.directions) >= model.n_layers:
            raise StorageError(f"{name} steers block {max(self.directions)}; {model.facts.name} has blocks "
                               f"0..{model.n_layers - 1}")
        if self.layer_count is not None and self.layer_count > model.n_layers:
            raise StorageError(f"{name} declares {self.layer_count} layers ({COUNT_KEY}); {model.facts.name} has "
                               f"{model.n_layers}")
        if self.model_hint and model_type and not model_type.startswith(self.model_hint):
            raise StorageError(f"{name} was made for a {self.model_hint!r} model; {model.facts.name} is {model_type!r}")

    def steerer(self, model, scale: float = 1.0):
        """The steering llama.cpp applies with ``--control-vector-scaled FILE:scale``: mean
        difference at every position, prompt included, of each block's output."""
        from ..methods.steer import MeanDiffSteerer, SteeringSpec

        self.check_model(model)
        vectors = torch.zeros(model.n_layers, model.d_model)
        for block, direction in self.directions.items():
            vectors[block] = direction
        blocks = sorted(self.directions)
        spec = SteeringSpec(tuple(blocks), (float(scale),) * len(blocks), method="mean_diff", positions="all")
        return MeanDiffSteerer(spec, vectors)


def _value(f):
    """A GGUF metadata field as a Python value (gguf keeps strings as byte arrays)."""
    try:
        return f.contents()
    except Exception:  # an unusual type: leave it out rather than fail the file
        return None


def _model_type(model) -> str:
    config = getattr(getattr(model, "hf_model", None), "config", None)
    return str(getattr(config, "model_type", "") or "")


def constant_additions(model, steerer, prompts: list[str], batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Per hook of ``steerer`` (on schedule "all": ``control_vector`` gives it so): the mean of
    what it adds to the residual stream at the last position of each formatted prompt, in
    float32, all hooks steering at once. A hook inside a block (ACT's heads, a neuron) is
    carried through the projection that writes its output."""
    from ..engine.forward import encode_prompts, forward, positions_of

    sums: dict[str, torch.Tensor] = {}

    def measured(name, fn):
        def hook(activation, hook):
            steered = fn(activation.float(), hook)  # in float32: bfloat16 would round the difference away
            sums[name] = sums.get(name, 0) + (steered - activation.float())[:, -1].sum(0).cpu()
            return steered.to(activation.dtype)
        return hook

    hooks = steerer.hooks(model)
    with torch.no_grad(), thread_hooks(model, [(name, measured(name, fn)) for name, fn in hooks]):
        for start in range(0, len(prompts), batch_size):
            ids, mask = encode_prompts(model, prompts[start:start + batch_size])
            forward(model, ids, mask, positions_of(mask))
    out = {}
    for name, total in sums.items():
        mean = total / len(prompts)
        module, where, _ = model.hook_map.resolve(name)
        if where == "input":  # before a linear projection whose output joins the residual stream
            weight = module.weight.float().cpu()
            mean = torch.nn.functional.linear(mean, weight)
        out[name] = mean
    return out


def control_vector(steerer, model, prompts: list[str], provenance: dict | None = None,
                   accept_inexact: bool = False) -> ControlVector:
    """``steerer``'s nearest llama.cpp control vector at scale 1, alpha included, measured on
    ``prompts`` (a run's neutral prompts); ``provenance`` (``SteeringArtifacts.provenance``: the
    method's name, target, model) goes into the metadata. A schedule llama.cpp cannot express
    raises a ValueError unless ``accept_inexact``."""
    spec, p = steerer.spec, provenance or {}
    steady = replace(steerer, spec=replace(spec, schedule="all"))  # what a steered step adds
    places = {name: llama_block(name) for name, _ in steady.hooks(model)}
    inexact = []
    if spec.positions == "generated":
        inexact.append("Steerscope steers from the last prompt token on; llama.cpp steers every prompt token too")
    if spec.schedule != "all":
        inexact.append(f"Steerscope steers {spec.describe()}; llama.cpp steers every token")
    left_out = [name for name, (block, _) in places.items() if block < 1]
    if left_out:
        inexact.append(f"llama.cpp cannot steer block 0's output (it refuses direction.0): {', '.join(left_out)} left out")
    if not places:
        raise ValueError("nothing to export: every steered layer's alpha is 0")
    if len(left_out) == len(places):
        raise ValueError(f"nothing to export: llama.cpp cannot steer block 0's output or earlier ({', '.join(left_out)})")
    if inexact and not accept_inexact:
        raise ValueError("llama.cpp cannot express this steering: " + "; ".join(inexact)
                         + ". Accept the difference to export it anyway (--accept-inexact; the file records it)")
    directions, moved = {}, {}
    for name, vector in constant_additions(model, steady, list(prompts)).items():
        block, note = places[name]
        if block >= 1:
            directions[block] = directions.get(block, 0) + vector
            if note:
                moved.setdefault(note, []).append(name)
    notes = [f"{', '.join(names)}: {note}" for note, names in moved.items()]
    approximate = export_note(spec.method)
    if approximate:
        notes.insert(0, f"{approximate}, over the last position of {len(prompts)} neutral prompts")
    method = p.get("method", spec.method)
    metadata = {
        "general.name": f"steerscope {method} towards {p.get('target', 'its target')}",
        "steerscope.method": method, "steerscope.target": str(p.get("target", "")),
        "steerscope.model": str(p.get("model", model.facts.name)),
        "steerscope.model_fingerprint": str(p.get("model_fingerprint", model.fingerprint)),
        "steerscope.n_layers": model.n_layers, "steerscope.d_model": model.d_model,
        "steerscope.layers": ",".join(map(str, spec.layers)), "steerscope.alphas": ",".join(f"{a:g}" for a in spec.alphas),
        "steerscope.hook_point": spec.hook_point, "steerscope.strength": "alpha included: load at scale 1",
        "steerscope.exact": not notes and not inexact, "steerscope.approximation": "; ".join(notes),
        "steerscope.schedule": "; ".join(inexact),
    }  # gguf's writer skips empty strings: a key that is absent says "nothing"
    return ControlVector(directions, _model_type(model), {k: v for k, v in metadata.items() if v != ""})


def run_control_vector(pipeline, method: str = DEFAULT_METHOD, accept_inexact: bool = False) -> ControlVector:
    """The control vector of ``method`` as an open run (``runner.Pipeline``) fitted it;
    ``Pipeline.reopen(run_dir, model)`` opens one."""
    from .artifacts import SteeringArtifacts

    artifacts = SteeringArtifacts.from_pipeline(pipeline, method)
    return control_vector(artifacts.steerer, pipeline.model, [t.neutral for t in pipeline.prompts],
                          artifacts.provenance, accept_inexact)


def import_control_vector(path: str | Path, model, scale: float = 1.0, vector: ControlVector | None = None):
    """A llama.cpp or repeng control vector file as ``SteeringArtifacts`` of mean difference,
    steering as llama.cpp would at ``scale``; refused if made for another model. ``vector``: the
    file as ``ControlVector.read`` gave it already (a command reads it before loading the model)."""
    from .artifacts import SteeringArtifacts

    check_limit("control_vector_scale", scale, "scale")
    vector = vector or ControlVector.read(path)
    vector.check_model(model, Path(path).name)
    block, largest = max(((b, float(v.abs().max())) for b, v in vector.directions.items()), key=lambda bv: bv[1])
    check_limit("control_vector_magnitude", largest * abs(scale), f"{Path(path).name}: direction.{block}'s largest value "
                f"({largest:.3g}) times the scale ({scale:g})", because="what it adds to the residual stream")
    provenance = {"model": model.facts.name, "d_model": model.d_model, "n_layers": model.n_layers,
                  "method": "mean_diff", "source": f"llama.cpp control vector {Path(path).name}",
                  "model_hint": vector.model_hint, **vector.metadata}
    return SteeringArtifacts(vector.steerer(model, scale), "mean_diff", provenance)
