"""What a steering method learns, as one value: ``fit(model, prompts, "gact", settings) ->
SteeringArtifacts``, for every method of ``registry.METHODS`` (G-ACT, mean difference, ACT, the
neuron baseline).

The artifacts hold the method's steerer (its spec and learned state) and their provenance: the
model's fingerprint, the prompt set's, the target and a hash of the settings. They steer a model
in memory (``with artifacts.apply(model): generate(...)``), and are saved to and loaded from one
safetensors file as a unit; loading checks them against the model they are meant for. Fitting
chains the stage functions in memory: no run directory is written.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..engine.hooks import thread_hooks
from ..engine.models import instruction_difference
from ..methods.registry import DEFAULT_METHOD, method as get_method, steerer_class
from ..methods.steer import Steerer, SteeringSpec
from ..store.storage import StorageError, load_tensors, record_inputs, save_tensors
from .vectors_io import max_state_bytes

KIND = "steerscope_artifacts"


@dataclass
class SteeringArtifacts:
    """A fitted ``steerer`` of ``method`` (a ``registry.METHODS`` name) and the ``provenance`` it came from."""

    steerer: Steerer
    method: str = DEFAULT_METHOD
    provenance: dict = field(default_factory=dict)

    @property
    def spec(self) -> SteeringSpec:
        return self.steerer.spec

    @classmethod
    def from_pipeline(cls, pipeline, method: str = DEFAULT_METHOD) -> "SteeringArtifacts":
        """The artifacts of a pipeline whose stages for ``method`` are done."""
        missing = [s for s in get_method(method).stages(pipeline.settings) if s not in pipeline.done_stages()]
        if missing:
            raise StorageError(f"{get_method(method).label} is not fitted in run {pipeline.run.dir.name!r}: stage(s) "
                               f"{', '.join(missing)} not done for its current inputs")
        return cls(pipeline.steerer(method), method, _provenance(pipeline.model, pipeline.record, method))

    @classmethod
    def from_run(cls, run_dir: str | Path, model, method: str = DEFAULT_METHOD) -> "SteeringArtifacts":
        """The artifacts a run stored, for ``model`` (which must be the run's: same weights)."""
        from .runner import Pipeline

        return cls.from_pipeline(Pipeline.reopen(run_dir, model), method)

    def check_model(self, model) -> None:
        """Refuse a model these artifacts were not made for (other width, depth or weights)."""
        p = self.provenance
        if (p.get("d_model"), p.get("n_layers")) != (model.d_model, model.n_layers):
            raise StorageError(f"these steering artifacts are for {p.get('model')} (d_model {p.get('d_model')}, "
                               f"{p.get('n_layers')} layers); {model.facts.name} has d_model {model.d_model}, "
                               f"{model.n_layers} layers")
        if p.get("model_fingerprint") and not model.made_from(p["model_fingerprint"]):
            why = instruction_difference(p["instruction"], model.instruction) if "instruction" in p else ""
            raise StorageError(f"these steering artifacts were fitted on another model than this {p.get('model')}: "
                               + (why or f"other weights (fingerprint {p['model_fingerprint']}, this model's "
                                         f"{model.fingerprint})"))

    @contextmanager
    def apply(self, model):
        """Steer ``model`` inside the block, in this thread only (``generate`` calls in it are
        steered). A schedule that counts tokens (window, fence) needs ``generate`` below instead."""
        self.check_model(model)
        with thread_hooks(model, self.steerer.hooks(model)):
            yield self

    def generate(self, model, prompts, config=None):
        """Steered answers to ``prompts``, on the spec's schedule (``generation.generate``)."""
        from ..engine.generation import generate

        self.check_model(model)
        return generate(model, prompts, config, steerer=self.steerer)

    def save(self, path: str | Path, force: bool = False) -> Path:
        """One safetensors file: the steerer's tensors, its parameters, spec and provenance; an
        existing file is replaced only with ``force``."""
        tensors, params = self.steerer.state()
        save_tensors(Path(path), tensors, {"kind": KIND, "method": self.method, "spec": self.spec.to_json(),
                                           "params": params, "provenance": self.provenance}, replace=force)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, model=None) -> "SteeringArtifacts":
        """Artifacts saved by ``save``; with ``model``, checked against it."""
        tensors, meta = load_tensors(Path(path), max_bytes=None if model is None else 4 * max_state_bytes(model))
        if meta.get("kind") != KIND or "spec" not in meta:
            raise StorageError(f"{Path(path).name} is not a Steerscope artifacts file")
        # what steers must be finite; accuracies are NaN where nothing was measured (act.py, probes.py)
        broken = [key for key, t in tensors.items()
                  if t.dtype.is_floating_point and not key.endswith("accuracy_") and not torch.isfinite(t).all()]
        if broken:
            raise StorageError(f"{Path(path).name} holds {broken[0]} with NaN or infinite values")
        try:  # a tampered header or state is refused in one line, whatever it breaks
            spec = SteeringSpec.from_json(meta["spec"])
            steerer = steerer_class(spec.method).from_state(spec, tensors, meta.get("params", {}))
        except (KeyError, ValueError, TypeError, AttributeError) as err:
            raise StorageError(f"{Path(path).name} holds an incomplete or malformed steering state "
                               f"({type(err).__name__}: {str(err)[:200]})") from None
        artifacts = cls(steerer, meta.get("method", spec.method), meta.get("provenance", {}))
        if model is not None:
            artifacts.check_model(model)
        return artifacts


def _provenance(model, record: dict, method: str) -> dict:
    return {"model": record["model"]["name"], "model_fingerprint": record["model_fingerprint"],
            "d_model": model.d_model, "n_layers": model.n_layers, "method": method,
            "instruction": record["model"].get("instruction"),
            "prompts_fingerprint": record["prompt_set"]["fingerprint"], "target": record["pipeline"]["target"],
            "hook_point": record["pipeline"]["hook_point"], "inputs": record_inputs(record),
            "settings": record["pipeline"]}


def fit(model, prompts, method: str = DEFAULT_METHOD, settings=None, progress=None) -> SteeringArtifacts:
    """``method`` end to end, in memory: the stages it needs (``registry.Method.stages``), chained
    as values, with ``PipelineSettings`` (defaults when None); nothing is written but the
    activation cache."""
    from .settings import PipelineSettings
    from .stages import stage as get_stage
    from .stages.base import Context, Learned

    settings = settings or PipelineSettings()
    settings.validate(model, prompts)
    entry = get_method(method)
    context, learned = Context(model, prompts, settings, progress), Learned()
    for stage in entry.stages(settings):
        learned.add(get_stage(stage).fn(context, learned))
    record = {"pipeline": settings.to_json(), "model": model.facts.as_dict(), "model_fingerprint": model.fingerprint,
              "prompt_set": {"fingerprint": prompts.fingerprint()}}
    return SteeringArtifacts(entry.steerer(learned, settings, model), method, _provenance(model, record, method))


def fit_gact(model, prompts, settings=None, progress=None) -> SteeringArtifacts:
    """G-ACT end to end, in memory: ``fit(model, prompts, "gact", settings)``."""
    return fit(model, prompts, "gact", settings, progress)
