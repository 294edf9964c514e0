"""The pipeline's stages, one module each, in order. A stage is a function
``(Context, Learned) -> StageResult`` that writes nothing; ``eval`` takes a method and a
prompt set besides (``evaluate``), then the method's answers to the other languages' explicit
prompts (``explicit``)."""

from __future__ import annotations

from .act import act
from .base import Context, Learned, StageResult
from .bias import bias
from .cluster import cluster
from .evaluate import evaluate, explicit
from .extract import extract
from .probe import probe, probe_data
from .project import project
from .refine import refine
from .sweep import sweep

STAGE_FUNCTIONS = {"bias": bias, "extract": extract, "cluster": cluster, "probe": probe, "act": act, "sweep": sweep,
                   "refine": refine, "eval": evaluate, "project": project}

__all__ = ["Context", "Learned", "StageResult", "STAGE_FUNCTIONS", "probe_data", "evaluate", "explicit"]
