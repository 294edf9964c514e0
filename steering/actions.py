"""What the dashboard's buttons do, without Streamlit: start a run, steer one prompt side by
side, run the whole task set. The pages only draw what these return (and they are tested here
and from Python alike)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from .evaluation import evaluate_steering, side_by_side
from .generation import GenerationConfig, generate
from .methods import METHODS, method as get_method
from .settings import PipelineSettings
from .stages import Learned
from .steer import SteeringSpec
from .storage import Run


@dataclass
class RunOutcome:
    """A finished run: where it is, its seconds in all and per stage."""

    run_dir: Path
    seconds: float
    stage_seconds: dict[str, float]


def start_run(model, prompts, run_dir, settings: PipelineSettings, model_ref: str | None = None,
              progress=None) -> RunOutcome:
    """Every stage of a new run in ``run_dir`` (``progress(stage, done, total)`` reports)."""
    from .pipeline import Pipeline

    started = time.perf_counter()
    pipeline = Pipeline(model, prompts, Run(run_dir, create=True), settings, progress=progress, model_ref=model_ref)
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

    def chosen_schedule(self, method: str) -> str:
        """The schedule ``method`` steers on unless told otherwise: the settings', else the selection's."""
        return get_method(method).chosen_schedule(self.learned, self.settings)

    def references(self, task_id: str, prompt: str, config: GenerationConfig) -> dict:
        """What a steered answer is judged against, with the same decoding: the task asked in the
        target language, and ``prompt`` with the answer forced to open the target's fence."""
        from .stages.evaluate import fence_opening

        if not prompt.strip():
            raise ValueError("The prompt is empty: write a prompt or pick a task.")
        target = self.settings.target
        explicit = self.prompts.task(task_id).prompts.get(target) if task_id in self.prompts.ids else None
        out = {}
        if explicit:
            out["asked explicitly"] = generate(self.model, explicit, config)[0]
        out["prefilled fence"] = generate(self.model, prompt, replace(config, start=fence_opening(target)))[0]
        return out

    def side_by_side(self, prompt: str, steerer, config: GenerationConfig, on_text=None):
        """``(baseline, steered)`` answers to one prompt, with the same seed, decoded together;
        ``on_text(texts, token_counts)`` is called at every step with both answers so far."""
        if not prompt.strip():
            raise ValueError("The prompt is empty: write a prompt or pick a task.")
        tok = self.model.tokenizer

        def stream(rows):
            on_text([config.start + tok.decode(row, skip_special_tokens=True) for row in rows], [len(row) for row in rows])

        return side_by_side(self.model, prompt, steerer, config, on_token=stream if on_text else None)

    def task_set(self, prompts: list[str], steerer, config: GenerationConfig, on_answers=None, tasks=None) -> dict:
        """Baseline and steered answers to every prompt, scored (``evaluation.evaluate_steering``)."""
        return evaluate_steering(self.model, prompts, steerer, self.settings.target, temperature=config.temperature,
                                 seed=config.seed, max_new_tokens=config.max_new_tokens, on_answers=on_answers,
                                 tasks=tasks)
