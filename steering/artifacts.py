"""What G-ACT learns, as one value: ``fit_gact(model, prompts, settings) -> SteeringArtifacts``.

The artifacts hold the cluster steering vectors, the mean differences, the (refined) probe, the
layers and alphas the sweep chose, and their provenance: the model's fingerprint, the prompt
set's, the target and a hash of the settings. They steer a model in memory
(``with artifacts.apply(model): generate(...)``), and are saved to and loaded from one
safetensors file as a unit; loading checks them against the model they are meant for.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .hooks import thread_hooks
from .probes import GactProbe
from .schema import DELTAS
from .steer import GactSteerer, SteeringSpec
from .storage import MemoryRun, StorageError, load_tensors, record_inputs, save_tensors

FIT_STAGES = ("extract", "cluster", "probe", "sweep", "refine")  # what G-ACT's steering needs, in order
PROBE_PREFIX = "probe."


@dataclass
class SteeringArtifacts:
    """G-ACT's learned state: ``vectors[L, K, d_model]``, ``mean_vectors[L, d_model]``, a fitted
    ``probe``, the chosen ``spec``, refinement's ``log_gains``/``offsets`` (or None) and the
    ``provenance`` they came from."""

    vectors: torch.Tensor
    mean_vectors: torch.Tensor
    probe: GactProbe
    spec: SteeringSpec
    selection: str = "soft"
    log_gains: torch.Tensor | None = None
    offsets: torch.Tensor | None = None
    provenance: dict = field(default_factory=dict)

    @classmethod
    def from_pipeline(cls, pipeline) -> "SteeringArtifacts":
        """The artifacts of a pipeline whose G-ACT stages are done (on disk or in memory)."""
        missing = [s for s in FIT_STAGES if s not in pipeline.done_stages()]
        if missing:
            raise StorageError(f"G-ACT is not fitted in run {pipeline.run.dir.name!r}: stage(s) {', '.join(missing)} "
                               "not done for its current inputs")
        steerer = pipeline.steerer(pipeline.chosen_spec("gact"))
        record = pipeline.record
        provenance = {"model": record["model"]["name"], "model_fingerprint": record["model_fingerprint"],
                      "d_model": pipeline.model.d_model, "n_layers": pipeline.model.n_layers,
                      "prompts_fingerprint": record["prompt_set"]["fingerprint"], "target": pipeline.settings.target,
                      "hook_point": pipeline.settings.hook_point, "inputs": record_inputs(record),
                      "settings": record["pipeline"]}
        return cls(steerer.vectors, pipeline.run.load(DELTAS)[0]["mean_vectors"], steerer.probe, steerer.spec,
                   selection=steerer.selection, log_gains=steerer.log_gains, offsets=steerer.offsets,
                   provenance=provenance)

    @classmethod
    def from_run(cls, run_dir: str | Path, model) -> "SteeringArtifacts":
        """The artifacts a run stored, for ``model`` (which must be the run's: same weights)."""
        from .pipeline import Pipeline

        return cls.from_pipeline(Pipeline.reopen(run_dir, model))

    def steerer(self) -> GactSteerer:
        return GactSteerer(self.spec, self.vectors, self.probe, selection=self.selection, log_gains=self.log_gains,
                           offsets=self.offsets)

    def check_model(self, model) -> None:
        """Refuse a model these artifacts were not made for (other width, depth or weights)."""
        p = self.provenance
        if (p.get("d_model"), p.get("n_layers")) != (model.d_model, model.n_layers):
            raise StorageError(f"these steering artifacts are for {p.get('model')} (d_model {p.get('d_model')}, "
                               f"{p.get('n_layers')} layers); {model.facts.name} has d_model {model.d_model}, "
                               f"{model.n_layers} layers")
        if p.get("model_fingerprint") and p["model_fingerprint"] != model.fingerprint:
            raise StorageError(f"these steering artifacts were fitted on other weights of {p.get('model')} "
                               f"(fingerprint {p['model_fingerprint']}, this model's {model.fingerprint})")

    @contextmanager
    def apply(self, model):
        """Steer ``model`` inside the block, in this thread only (``generate`` calls in it are steered)."""
        self.check_model(model)
        with thread_hooks(model, self.steerer().hooks(model)):
            yield self

    def save(self, path: str | Path) -> Path:
        """One safetensors file: every tensor, the probe's state and the provenance."""
        tensors = {"vectors": self.vectors, "mean_vectors": self.mean_vectors,
                   **{PROBE_PREFIX + k: v for k, v in self.probe.state_tensors().items()}}
        tensors.update({k: getattr(self, k) for k in ("log_gains", "offsets") if getattr(self, k) is not None})
        save_tensors(Path(path), tensors, {"kind": "steerscope_artifacts", "spec": self.spec.to_json(),
                                           "selection": self.selection, "provenance": self.provenance})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, model=None) -> "SteeringArtifacts":
        """Artifacts saved by ``save``; with ``model``, checked against it."""
        tensors, meta = load_tensors(Path(path))
        if meta.get("kind") != "steerscope_artifacts" or not {"vectors", "mean_vectors"} <= set(tensors):
            raise StorageError(f"{Path(path).name} is not a Steerscope artifacts file")
        probe = GactProbe.from_state_tensors({k.removeprefix(PROBE_PREFIX): v for k, v in tensors.items()
                                              if k.startswith(PROBE_PREFIX)})
        artifacts = cls(tensors["vectors"], tensors["mean_vectors"], probe, SteeringSpec.from_json(meta["spec"]),
                        selection=meta.get("selection", "soft"), log_gains=tensors.get("log_gains"),
                        offsets=tensors.get("offsets"), provenance=meta.get("provenance", {}))
        if model is not None:
            artifacts.check_model(model)
        return artifacts


def fit_gact(model, prompts, settings=None, progress=None) -> SteeringArtifacts:
    """G-ACT end to end, in memory (no run directory): differences, clusters, probes, the layer
    and alpha sweep, and gradient refinement, with ``PipelineSettings`` (defaults when None)."""
    from .pipeline import Pipeline, PipelineSettings

    pipeline = Pipeline(model, prompts, MemoryRun(), settings or PipelineSettings(), progress=progress)
    pipeline.run_all(stages=FIT_STAGES)
    return SteeringArtifacts.from_pipeline(pipeline)
