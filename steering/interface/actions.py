"""What the dashboard's buttons do, without Streamlit: start a run, steer one prompt side by
side, run the whole task set. The pages only draw what these return (and they are tested here
and from Python alike)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from ..engine.generation import GenerationConfig, generate
from ..methods.registry import METHODS, method as get_method, residual_vectors
from ..pipeline.evaluation import evaluate_steering, side_by_side
from ..pipeline.settings import PipelineSettings
from ..pipeline.stages.base import Learned
from ..store.schema import CONDITION
from ..store.storage import Run


@dataclass
class RunOutcome:
    """A finished run: where it is, its seconds in all and per stage."""

    run_dir: Path
    seconds: float
    stage_seconds: dict[str, float]


def start_run(model, prompts, run_dir, settings: PipelineSettings, model_ref: str | None = None,
              progress=None, replicas: int | None = None) -> RunOutcome:
    """Every stage of a new run in ``run_dir`` (``progress(stage, done, total)`` reports), its
    answers decoded on ``replicas`` Ray replicas of the model (None: here)."""
    from ..engine.parallel import workers
    from ..pipeline.runner import Pipeline

    started = time.perf_counter()
    pipeline = Pipeline(model, prompts, Run(run_dir, create=True), settings, progress=progress, model_ref=model_ref)
    with workers(model, model_ref, replicas):
        pipeline.run_all()
    return RunOutcome(Path(run_dir), time.perf_counter() - started, pipeline.stage_seconds())


class RunSteering:
    """Steering with what one run learned, at layers and alphas of one's choosing (the Steer
    page). Made once per run and model: nothing is re-validated or re-tokenized per click."""

    def __init__(self, run_dir, model):
        run = Run(run_dir)
        self.model = model
        self.settings = PipelineSettings.from_json(run.settings.get("pipeline", {}))
        self.learned = Learned(run)
        self.prompts = run.prompt_set()

    def available(self, done) -> list[str]:
        """The steering methods whose stages ``done(stage)`` says are complete."""
        return [name for name, m in METHODS.items() if m.needs is not None and all(map(done, m.needs(self.settings)))]

    def steerer(self, method: str, layers, alphas, **schedule):
        """The steerer of ``method`` on ``layers`` at ``alphas`` (each checked against the
        method's limit), on the run's schedule or ``schedule`` (``schedule=``, ``schedule_window=``,
        ``gate=``: settings' names), or a ValueError saying why it cannot be made."""
        if not layers:
            raise ValueError("Every layer is off: switch on at least one layer to steer.")
        entry = get_method(method)
        settings = replace(self.settings, **schedule)
        spec = entry.make_spec(layers, [entry.check_alpha(a) for a in alphas], settings, self.learned)
        return entry.steerer(self.learned, settings, self.model, spec)

    def control_vector(self, steerer, accept_inexact: bool = False):
        """``steerer`` as a llama.cpp control vector, measured on the run's neutral prompts
        (``control_vectors.control_vector``); a ValueError says what llama.cpp cannot express."""
        from ..pipeline.control_vectors import control_vector

        provenance = {"method": steerer.spec.method, "target": self.settings.target, "model": self.model.facts.name,
                      "model_fingerprint": self.model.fingerprint}
        return control_vector(steerer, self.model, [t.neutral for t in self.prompts], provenance, accept_inexact)

    def evaluated(self, method: str) -> dict[int, float]:
        """Layer -> alpha of ``method`` as the run's evaluation steered it (the sweep's layers
        times the selection's margin, or the method's own): the demo's starting point, so that
        the page shows the steering whose figures the report gives. Empty when it has none."""
        try:
            spec = get_method(method).spec(self.learned, self.settings)
        except ValueError:  # no sweep yet
            return {}
        return dict(zip(spec.layers, spec.alphas))

    @cached_property
    def _residual_norms(self):
        from ..store.schema import ACTIVATIONS

        return self.learned.tensors(ACTIVATIONS)["neutral"].float().norm(dim=-1).mean(0)  # [layers]

    def residual_share(self, method: str, layer: int, alpha: float) -> float | None:
        """``alpha``'s size in the layer's own terms: the added vector's norm over the neutral
        prompts' mean residual norm at ``layer`` (for G-ACT, its cluster vectors' mean norm); None
        for methods that do not add a residual vector."""
        vectors = residual_vectors(method, self.learned)
        if vectors is None:
            return None
        if self.settings.alpha_unit == "norm":
            return abs(alpha)
        return abs(alpha) * float(vectors[layer].float().norm(dim=-1).mean() / self._residual_norms[layer].clamp_min(1e-8))

    def has_condition(self) -> bool:
        """Whether the run fitted the condition conditional steering reads (its ``probe`` stage)."""
        return self.learned.has(CONDITION)

    def chosen_schedule(self, method: str) -> str:
        """The schedule ``method`` steers on unless told otherwise: the settings', else the selection's."""
        return get_method(method).chosen_schedule(self.learned, self.settings)

    def asked_prompt(self, task_id: str) -> str | None:
        """Task ``task_id`` asked explicitly in the target language: the ceiling a steered answer
        is judged against (None when the task has no such prompt)."""
        return self.prompts.task(task_id).prompts.get(self.settings.target) if task_id in self.prompts.ids else None

    def prefilled(self, prompt: str, config: GenerationConfig):
        """``prompt``'s answer forced to open the target's fence: the cheapest alternative to steering."""
        from ..pipeline.stages.evaluate import fence_opening

        if not prompt.strip():
            raise ValueError("The prompt is empty: write a prompt or pick a task.")
        return generate(self.model, prompt, replace(config, start=fence_opening(self.settings.target)))[0]

    def compiles(self, answer) -> bool | None:
        """Whether ``answer``'s fenced target code compiles (None: not fenced target code, or no
        compiler here for the target), as the evaluation counts it."""
        from ..pipeline.evaluation import answer_scores

        compiled = answer_scores([answer], self.settings.target)["compiles"][0]
        return None if compiled != compiled else bool(compiled)  # NaN: nothing that counts

    def side_by_side(self, prompt: str, steerer, config: GenerationConfig, on_text=None, asked: str | None = None):
        """``(baseline, steered)`` answers to one prompt, with the same seed, decoded together
        (with ``asked``, its answer as a third row); ``on_text(texts, token_counts)`` is called at
        every step with every answer so far."""
        if not prompt.strip():
            raise ValueError("The prompt is empty: write a prompt or pick a task.")
        tok = self.model.tokenizer

        def stream(rows):
            on_text([config.start + tok.decode(row, skip_special_tokens=True) for row in rows], [len(row) for row in rows])

        return side_by_side(self.model, prompt, steerer, config, on_token=stream if on_text else None, asked=asked)

    def task_set(self, prompts: list[str], steerer, config: GenerationConfig, on_answers=None, tasks=None,
                 on_batch=None) -> dict:
        """Baseline and steered answers to every prompt, scored (``evaluation.evaluate_steering``;
        ``on_batch`` sees each batch's answers as it finishes)."""
        return evaluate_steering(self.model, prompts, steerer, self.settings.target, temperature=config.temperature,
                                 seed=config.seed, max_new_tokens=config.max_new_tokens, on_answers=on_answers,
                                 tasks=tasks, on_batch=on_batch)
