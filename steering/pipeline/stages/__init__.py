"""The pipeline's stages, one module each, declared once, in order (``PIPELINE``). A stage is a
function ``(Context, Learned) -> StageResult`` (``stages.base``) that writes nothing; ``eval``
takes a method and a prompt set besides (``evaluate.evaluate``), then the method's answers to the
other languages' explicit prompts (``evaluate.explicit``). The modules keep their names
(``stages.sweep`` is the module), so a test reaches a pure stage's helpers directly.

This package's ``__init__`` stays light: the list is read at start-up by the CLI, the pages and
``RunResults``, and a stage's module (scikit-learn, UMAP...) is imported when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from ...store.schema import ACTIVATIONS, CLUSTERS, DELTAS, REFINED, explicit_stage, is_evaluation, probe_tensors


@dataclass(frozen=True)
class Stage:
    """One stage: its name (in a run's records and on the command line), what the dashboard
    shows while it runs, the CLI's help, its module in this package (whose function of the same
    name is the stage), and the tensor files it always writes (a stage recorded done whose files
    are gone is not done)."""

    name: str
    label: str
    help: str
    module: str
    tensors: tuple[str, ...] = ()

    @property
    def fn(self):
        """The stage's function, its module imported on first use."""
        return getattr(import_module(f"{__name__}.{self.module}"), self.module)


PIPELINE = (
    Stage("bias", "Bias: sampling neutral answers", "sample answers to the neutral prompts: the model's language "
          "preference", "bias"),
    Stage("extract", "Extracting activations and differences", "start a run: activations and difference vectors at "
          "every layer", "extract", (ACTIVATIONS, DELTAS)),
    Stage("cluster", "Clustering the differences", "k-means over the difference vectors: K steering vectors per layer",
          "cluster", (CLUSTERS,)),
    Stage("probe", "Training G-ACT probes", "train G-ACT's probes per layer (and the scikit-learn ablation), with "
          "intervals and baselines", "probe", (probe_tensors("gact"),)),
    Stage("act", "Fitting faithful ACT", "fit faithful ACT: per-head probes on the model's own answers, head "
          "selection, its strength", "act"),
    Stage("sweep", "Sweeping layers and alphas", "steering success for each layer and alpha; picks the layers to steer",
          "sweep"),
    Stage("refine", "Refining probes by gradient", "refine the G-ACT probes by gradient through the frozen model",
          "refine", (REFINED,)),
    Stage("eval", "Evaluating steering", "baseline against steered generation of the neutral prompts and of the "
          "held-out phrasings", "evaluate"),
    Stage("project", "Projecting the differences (PCA, UMAP)", "precompute 2-D projections (PCA, UMAP) of the "
          "differences for the dashboard", "project"),
)
STAGES = tuple(s.name for s in PIPELINE)
_BY_NAME = {s.name: s for s in PIPELINE}


def stage(name: str) -> Stage:
    """The stage called ``name``, or a ValueError naming the stages there are."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown stage {name!r}; expected one of {', '.join(STAGES)}")
    return _BY_NAME[name]


def later_stages(name: str, recorded) -> list[str]:
    """The recorded stages whose results may have come from stage ``name``'s: every later
    pipeline stage, and every evaluation unless ``name`` is the projection."""
    if name not in STAGES:  # an evaluation: nothing reads it
        return []
    later = STAGES[STAGES.index(name) + 1:]
    evaluations = [r for r in recorded if is_evaluation(r) or r.startswith(explicit_stage(""))] if "eval" in later else []
    return [r for r in recorded if r in later] + evaluations


__all__ = ["Stage", "PIPELINE", "STAGES", "stage", "later_stages"]
