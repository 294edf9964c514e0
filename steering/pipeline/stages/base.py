"""What every stage shares: its ``Context`` (model, prompts, settings, progress), the
``StageResult`` it returns, and ``Learned``, the earlier stages' results a stage reads.

A stage never writes: it returns a ``StageResult`` (tensor files, metric rows and generations,
keyed as ``schema`` names them, and notes on what it could not do). The runner
(``steering.pipeline.runner``) persists results; ``steering.pipeline.artifacts`` chains stages in memory.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from ...code.prompts import PromptSet
from ...engine.generation import Generation
from ...methods.condition import PromptCondition
from ...methods.probes import GactProbe, SklearnProbe
from ...store.schema import ACT, BASE_ALPHA, CHOSEN_ALPHA, CHOSEN_SCHEDULE, CLUSTERS, CONDITION, DELTAS, PROMPT_SETS, REFINED, Row, notes_stage, probe_tensors
from ...store.storage import StorageError
from ..settings import PipelineSettings

# (stage, done, total); a progress with a ``stage(label, seconds=None)`` attribute is also told
# when each stage starts and ends (the CLI's log lines).
Progress = Callable[[str, int, int], None]


@dataclass
class Context:
    """What a stage works with; ``tick`` reports progress, ``note`` keeps a remark."""

    model: object
    prompts: PromptSet
    settings: PipelineSettings
    progress: Progress | None = None
    shown: tuple | None = None  # the last progress report, which the runner's heartbeat repeats

    def tick(self, stage: str, total: float):
        """``advance(n=1)``: ``n`` more units of ``stage``'s ``total`` are done (fractions too);
        ``advance.replan(delta)`` changes the total by ``delta`` once the work is known better
        (the sweep's later levels), so that the estimate carries the work planned, not a bound."""
        done, planned = [0.0], [float(total)]

        def show():
            self.shown = (stage, min(done[0], planned[0]), math.ceil(planned[0]))
            if self.progress is not None:
                self.progress(*self.shown)

        def advance(n: float = 1):
            done[0] += n
            show()

        def replan(delta: float):
            planned[0] = max(done[0], planned[0] + delta)
            show()

        advance.replan = replan  # type: ignore[attr-defined]
        show()
        return advance

    def meta(self, **extra) -> dict:
        """Metadata of a tensor file: where in which model its tensors were read."""
        s = self.settings
        return {"model": self.model.facts.name, "d_model": self.model.d_model, "n_layers": self.model.n_layers,
                "hook_point": s.hook_point, "position": s.position, "weight_processing": "none", **extra}

    @property
    def neutral_prompts(self) -> list[str]:
        return [t.neutral for t in self.prompts]

    def heldin_prompts(self, neutral: bool = True) -> tuple[list[str], list[str]]:
        """``(task ids, prompts)`` the sweep may choose on: the neutral prompts (``neutral``),
        then the paraphrases the probes train on (the first ``probe_paraphrases`` of each task)."""
        pairs = [(t.id, p) for t in self.prompts for p in t.paraphrases[: self.settings.probe_paraphrases]]
        first = [(t.id, t.neutral) for t in self.prompts] if neutral or not pairs else []  # no paraphrases: neutral
        return [i for i, _ in first + pairs], [p for _, p in first + pairs]

    def eval_prompts(self, prompt_set: str = "neutral") -> tuple[list[str], list[str]]:
        """``(task ids, prompts)`` of a prompt set: the neutral prompts, or every paraphrase past
        the first ``probe_paraphrases`` of each task (no stage fits on them)."""
        if prompt_set not in PROMPT_SETS:
            raise ValueError(f"unknown prompt set {prompt_set!r}; expected one of {', '.join(PROMPT_SETS)}")
        if prompt_set == "neutral":
            return [t.id for t in self.prompts], self.neutral_prompts
        pairs = [(t.id, p) for t in self.prompts for p in t.paraphrases[self.settings.probe_paraphrases:]]
        if not pairs:
            raise ValueError(f"no held-out phrasings: every task has at most {self.settings.probe_paraphrases} "
                             "paraphrase(s), and those train the probes (lower probe_paraphrases)")
        return [i for i, _ in pairs], [p for _, p in pairs]


@dataclass
class StageResult:
    """What a stage computed, keyed as the run stores it: ``tensors`` by file name (tensors,
    metadata), ``metrics`` rows ``(name, layer, value, extra)`` and ``generations`` rows by
    table key, ``notes`` on what it could not do, and ``value``: what the caller is handed
    besides (an evaluation's scored answers)."""

    tensors: dict[str, tuple[dict, dict]] = field(default_factory=dict)
    metrics: dict[str, list[Row]] = field(default_factory=dict)
    generations: dict[str, list[dict]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    value: object = None

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def generation_rows(task_ids, condition: str, answers) -> list[dict]:
    return [{"task_id": task_id, "condition": condition, "seed": a.seed, "prompt": a.prompt, "text": a.text,
             "language": a.detection.language, "confidence": a.detection.confidence,
             "parses": int(a.detection.parses), "n_tokens": a.n_tokens}
            for task_id, a in zip(task_ids, answers)]


def _metric(key: str, row: Row) -> dict:
    """A metric row as the run gives it back (NaN reads as None, extra as JSON)."""
    name, layer, value, extra = row
    value = float(value)
    return {"stage": key, "name": name, "layer": layer, "value": None if math.isnan(value) else value,
            "extra": json.loads(json.dumps(extra)) if extra else None}


class Learned:
    """The earlier stages' results a stage reads: those computed in this process first, then
    the run's stored ones (``run``: a ``storage.Run``, or None in memory)."""

    def __init__(self, run=None):
        self.run = run
        self._results: list[StageResult] = []

    def add(self, result: StageResult) -> StageResult:
        self._results.insert(0, result)
        return result

    def with_result(self, result: StageResult) -> "Learned":
        """A view of these results with ``result`` on top (this one unchanged)."""
        view = Learned(self.run)
        view._results = [result, *self._results]
        return view

    def has(self, name: str) -> bool:
        return any(name in r.tensors for r in self._results) or (self.run is not None and self.run.has(name))

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        for result in self._results:
            if name in result.tensors:
                return dict(result.tensors[name][0])
        if self.run is None:
            raise StorageError(f"no {name!r} computed yet: run the stage that computes it first")
        return self.run.load(name)[0]

    def metrics(self, key: str) -> list[dict]:
        for result in self._results:
            if key in result.metrics:
                return [_metric(key, row) for row in result.metrics[key]]
        return self.run.metrics(key) if self.run is not None else []

    def generations(self, key: str) -> list[dict]:
        for result in self._results:
            if key in result.generations:
                return [{"stage": key, **row} for row in result.generations[key]]
        return self.run.generations(key) if self.run is not None else []

    # typed views ---------------------------------------------------------------------------
    def answers(self, key: str) -> list[Generation]:
        """The answers stored under ``key``, in order, as generated (detection is recomputed)."""
        return [Generation(r["prompt"], r["text"], r["n_tokens"], r["seed"]) for r in self.generations(key)]

    def notes(self, stage: str) -> list[str]:
        return [m["extra"]["text"] for m in self.metrics(notes_stage(stage))]

    def mean_vectors(self) -> torch.Tensor:
        return self.tensors(DELTAS)["mean_vectors"]

    def cluster_vectors(self) -> torch.Tensor:
        return self.tensors(CLUSTERS)["vectors"]

    def probe(self, name: str = "gact"):
        """The fitted probe by its name (not a method's): ``gact`` or ``sklearn`` (the ablation)."""
        cls = SklearnProbe if name == "sklearn" else GactProbe
        return cls.from_state_tensors(self.tensors(probe_tensors(name)))

    def condition(self, settings) -> PromptCondition:
        """The fitted condition (``condition.PromptCondition``), reading prompts as ``settings`` read them."""
        if not self.has(CONDITION):
            raise ValueError("this run has no condition: its 'probe' stage predates conditional steering, or its "
                             "prompts ask for no other language; rerun the 'extract' and 'probe' stages")
        return PromptCondition.from_state_tensors(self.tensors(CONDITION), target=settings.target,
                                                  hook_point=settings.hook_point, position=settings.position,
                                                  answer_prefix=settings.answer_prefix)

    def refined(self) -> dict | None:
        """The refined probe's state with the gains (and offsets) learned alongside it, or None."""
        return self.tensors(REFINED) if self.has(REFINED) else None

    def act(self):
        from ...methods.act import AdaptiveActivationSteering

        if not self.has(ACT):
            notes = self.notes("act")
            raise ValueError(notes[0] if notes else "ACT is not fitted in this run: run the 'act' stage first")
        state = {k.removeprefix("act_"): v for k, v in self.tensors(ACT).items() if k.startswith("act_")}
        return AdaptiveActivationSteering.from_state_tensors(state)

    def act_alpha(self) -> float:
        return [m["value"] for m in self.metrics("act") if m["name"] == CHOSEN_ALPHA][0]

    def chosen(self) -> dict[int, float]:
        """The sweep's layers and their alphas (empty before the sweep)."""
        return {m["layer"]: m["value"] for m in self.metrics("sweep") if m["name"] == CHOSEN_ALPHA}

    def base_alphas(self) -> dict[int, float]:
        """The sweep's layers at the grid's alphas, before a method's margin (empty for a run from
        before the selection: its ``chosen`` alphas are the grid's)."""
        return {m["layer"]: m["value"] for m in self.metrics("sweep") if m["name"] == BASE_ALPHA} or self.chosen()

    def selection(self, method: str) -> dict | None:
        """What the sweep's selection chose for ``method``: ``{"schedule", "margin", "why"}`` and the
        method's options (``Method.options``: G-ACT's ``off_class``), or None."""
        for m in self.metrics("sweep"):
            extra = m["extra"] or {}
            if m["name"] == CHOSEN_SCHEDULE and extra.get("method") == method:
                return {"why": "", **{k: v for k, v in extra.items() if k != "method"}, "margin": m["value"]}
        return None
