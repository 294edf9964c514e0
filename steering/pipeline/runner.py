"""The runner: the stages of ``steering.pipeline.stages`` in order (bias -> extract -> cluster -> probe ->
act -> sweep -> refine -> eval -> project), each handed the earlier stages' results, with what
each returns persisted in the run directory.

Settings are checked against the model and the prompt set before anything runs or is written,
so bad input costs nothing. ``progress(stage, done, total)`` reports long work.

A run keeps the settings, model and prompt set it was started with: a pipeline with other ones
is refused (or, with ``overwrite``, clears the run first), and one-off settings given when
reopening a run (``reopen(..., one_off=)``) apply to ``eval`` and ``steer`` in this session only
and are never stored. Each stage's results are written under the run's lock, and the stage is
recorded as done, with the inputs it came from, only after its files are written.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field

from ..code.prompts import PromptSet
from ..core.progress import heartbeat
from ..core.threads import configure_threads
from ..engine.models import instruction_difference
from ..methods.registry import DEFAULT_METHOD, method as get_method
from ..methods.steer import SteeringSpec
from ..store.schema import CONDITION, eval_stage, explicit_stage, notes_stage
from ..store.storage import Run, StorageError, record_inputs
from .settings import PipelineSettings
from .stages import STAGES, later_stages, stage as get_stage
from .stages.base import Context, Learned, Progress, StageResult
from .stages.evaluate import explicit
from .stages.probe import probe_data


def _json(value):
    return list(value) if isinstance(value, tuple) else value


@dataclass
class Pipeline:
    model: object
    prompts: PromptSet
    run: Run
    settings: PipelineSettings = field(default_factory=PipelineSettings)
    progress: Progress | None = None
    model_ref: str | None = None  # what load_model was given (None: the embedded model), to reopen the run
    overwrite: bool = False  # a run made with other settings, model or prompts is cleared at the first write
    one_off: dict = field(default_factory=dict)  # settings for this session's eval/steer only; never stored

    @classmethod
    def reopen(cls, run_dir, model, one_off: dict | None = None, progress: Progress | None = None) -> "Pipeline":
        """The pipeline of an existing run, with its prompts and settings; ``one_off`` settings
        change this session's ``eval`` and ``steer`` (whose results are then not stored) and
        nothing else. ``model`` should be the run's (``run.settings["model_ref"]``)."""
        run = Run(run_dir)
        stored = run.settings
        settings = PipelineSettings.from_json(stored.get("pipeline", {}))
        return cls(model, run.prompt_set(), run, settings, progress=progress, model_ref=stored.get("model_ref"),
                   one_off=dict(one_off or {}))

    def __post_init__(self):
        self.settings.validate(self.model, self.prompts)
        self.record = {"pipeline": self.settings.to_json(), "model": self.model.facts.as_dict(),
                       "model_fingerprint": self.model.fingerprint, "model_ref": self.model_ref,
                       "prompt_set": {"name": self.prompts.name, "fingerprint": self.prompts.fingerprint(),
                                      "tasks": len(self.prompts)}}
        if not self.overwrite:
            self._check_matches_run()
        one_off = {k: v for k, v in self.one_off.items() if self.settings.to_json().get(k) != _json(v)}
        if one_off:
            self.settings = PipelineSettings.from_json({**self.settings.to_json(), **one_off})
            self.settings.validate(self.model, self.prompts)
        self.one_off = one_off
        self.context = Context(self.model, self.prompts, self.settings, self.progress)
        self.learned = Learned(self.run)

    def _check_matches_run(self) -> None:
        """A run keeps what it was started with: other settings, another model or other prompts
        are an error naming the differences, not a silent mix."""
        stored = self.run.settings
        if not stored:
            return
        was = {**PipelineSettings().to_json(), **stored.get("pipeline", {})}  # settings added since: defaults
        now = self.record["pipeline"]
        differences = [f"{k} {was.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)]
        if not self.model.made_from(stored.get("model_fingerprint", self.model.fingerprint)):
            was = stored.get("model", {})
            was_dtype = was.get("dtype", self.model.facts.dtype)
            prompts_differ = "instruction" in was and instruction_difference(was["instruction"], self.model.instruction)
            differences.append(f"model {was.get('name')!r} -> {self.model.facts.name!r} " + (
                f"({prompts_differ})" if prompts_differ else "(other weights)" if was_dtype == self.model.facts.dtype else
                f"(made in {was_dtype}, loaded in {self.model.facts.dtype}: load it with dtype {was_dtype})"))
        if stored.get("prompt_set", {}).get("fingerprint") != self.record["prompt_set"]["fingerprint"]:
            differences.append("another prompt set")
        if differences:
            raise StorageError(f"run {self.run.dir.name!r} was made with other inputs ({'; '.join(differences)}): "
                               "start a new run, or overwrite this one (--overwrite)")

    @property
    def inputs(self) -> str:
        """The hash of what every stage's results come from: settings, model weights, prompts
        (as the run stored them, once it has; this session's when it will overwrite them)."""
        return record_inputs(self.record if self.overwrite else (self.run.settings or self.record))

    def _start_writing(self) -> None:
        """At a write, under the lock: clear the run if overwriting, and store what it is made of."""
        if self.overwrite:
            self.run.clear()
            self.learned = Learned(self.run)
            self.overwrite = False
        self._check_matches_run()  # again under the lock: another writer may have started the run
        if not self.run.settings:
            self.run.write_settings(self.record)
        elif self.run.predates_stage_records():
            self._adopt_earlier_results()
        self.run.write_prompts(self.prompts.to_jsonl())

    def _adopt_earlier_results(self) -> None:
        """A run from before stage records: record the stages whose results it has, once, so a
        new stage written into it does not hide the earlier ones."""
        from .results import RunResults

        inputs = self.inputs
        for stage in RunResults(self.run.dir).legacy_stages():
            self.run.record_stage(stage, inputs, 0.0, 0)

    # what the run learned, as values -----------------------------------------------------------
    def spec(self, method: str = DEFAULT_METHOD) -> SteeringSpec:
        """The spec ``eval`` uses for ``method`` (``registry.Method.spec``)."""
        return get_method(method).spec(self.learned, self.settings)

    def steerer(self, method: str = DEFAULT_METHOD, spec: SteeringSpec | None = None):
        """The steerer of ``method`` from this run's learned state, at ``spec`` (default: ``spec(method)``)."""
        return get_method(method).steerer(self.learned, self.settings, self.model, spec)

    def probe_data(self):
        return probe_data(self.context, self.learned)

    def eval_prompts(self, prompt_set: str = "neutral") -> tuple[list[str], list[str]]:
        return self.context.eval_prompts(prompt_set)

    def notes(self, stage: str) -> list[str]:
        return self.learned.notes(stage)

    # running -----------------------------------------------------------------------------------
    def run_stage(self, stage: str, method: str = DEFAULT_METHOD, prompt_set: str | None = None):
        """Run one stage (for ``eval``: ``method`` on ``prompt_set``, default the settings'
        ``eval_sets``), with torch's thread count re-read from the cores free now, under the
        run's lock, and record it as done with its inputs and time. ``eval`` returns the last
        set's scored answers."""
        fn = get_stage(stage).fn  # an unknown stage: a ValueError naming the stages
        if self.one_off and stage != "eval":
            changed = ", ".join(f"{k}={v!r}" for k, v in self.one_off.items())
            raise StorageError(f"one-off settings ({changed}) apply to eval and steer only; the {stage} stage of run "
                               f"{self.run.dir.name!r} keeps the run's settings: start a new run to change them")
        if stage != "eval":
            return self._timed(stage, lambda: fn(self.context, self.learned))
        entry = get_method(method)  # an unknown method fails before anything runs
        out = None
        for which in [prompt_set] if prompt_set else self.settings.eval_sets:
            out = self._timed(eval_stage(method, which),
                              lambda: fn(self.context, self.learned, method, which, self.inputs))
        if entry.answers is None and self.learned.has(CONDITION):  # does it yield to another language's request?
            self._timed(explicit_stage(method), lambda: explicit(self.context, self.learned, method))
        return out

    def evaluations(self) -> list[tuple[str, str | None]]:
        """``(method, prompt set)`` a whole run evaluates: G-ACT on ``eval_sets`` (None), and each
        of ``compare_methods`` that the run could fit on the held-out phrasings where the run has
        them (else on ``eval_sets``)."""
        others = "heldout" if "heldout" in self.settings.eval_sets else None
        return [(DEFAULT_METHOD, None), *[(m, others) for m in self.settings.compare_methods
                                          if m != DEFAULT_METHOD and self._ready(m)]]

    def _ready(self, method: str) -> bool:
        """Whether the run learned what ``method`` steers with (a method a stage could not fit,
        ACT without enough answers, is left out; that stage's note says why)."""
        try:
            get_method(method).spec(self.learned, self.settings)
        except ValueError:
            return False
        return True

    def _eval_stages(self, method: str, prompt_set: str | None) -> set[str]:
        """The stages an evaluation of ``method`` on ``prompt_set`` (None: ``eval_sets``) records."""
        return {eval_stage(method, w) for w in ([prompt_set] if prompt_set else self.settings.eval_sets)}

    def _timed(self, label: str, work):
        """Run ``work`` (a stage) and persist what it returns, under the lock; its ``value``."""
        threads = configure_threads()
        if self.one_off:  # an evaluation with one-off settings writes nothing
            return work().value
        with self.run.writing():
            self._start_writing()
            self.run.forget_before_writing([label, *later_stages(label, self.run.stage_records())])
            started = time.perf_counter()
            show, announce = self.context, getattr(self.progress, "stage", None)  # a log's start and end lines
            if announce:
                announce(label)
            with heartbeat(lambda: self.progress(*show.shown) if self.progress and show.shown else None):
                result = self.learned.add(work())
            self._persist(label, result)
            self.run.record_stage(label, self.inputs, time.perf_counter() - started, threads)
            if announce:
                announce(label, time.perf_counter() - started)
        return result.value

    def _persist(self, label: str, result: StageResult) -> None:
        """The one place a stage's results are written."""
        for name, (tensors, meta) in result.tensors.items():
            self.run.save(name, tensors, **meta)
        for key, rows in result.generations.items():
            self.run.replace_generations(key, rows)
        for key, rows in result.metrics.items():
            self.run.replace_metrics(key, rows)
        self.run.replace_metrics(notes_stage(label), [("note", None, 0.0, {"text": t}) for t in result.notes])

    def done_stages(self) -> list[str]:
        """The stages recorded as complete for this run's inputs, in the order they finished."""
        return [s for s, r in self.run.stage_records().items() if r["inputs"] == self.inputs]

    def stage_seconds(self) -> dict[str, float]:
        """Seconds each recorded stage took, in the order they last ran."""
        return {s: r["seconds"] for s, r in self.run.stage_records().items()}

    def run_all(self, stages=STAGES, resume: bool = False) -> dict | None:
        """Every stage in turn; with ``resume``, those not yet done for these inputs (the
        evaluation counts as done when every method and prompt set it asks for is:
        ``evaluations``). Returns G-ACT's last evaluation."""
        result = None
        with self.writing():  # one lock for all the stages: no other writer slips in between
            done = set(self.done_stages()) if resume else set()
            for stage in stages:
                if stage in done:
                    continue
                if stage != "eval":
                    self.run_stage(stage)
                    continue
                for method, prompt_set in self.evaluations():
                    if not self._eval_stages(method, prompt_set) <= done:
                        out = self.run_stage("eval", method, prompt_set)
                        result = out if method == DEFAULT_METHOD else result
        return result

    def writing(self):
        """The run's lock, held across several stages (none for one-off evaluations, which write nothing)."""
        return nullcontext() if self.one_off else self.run.writing()
