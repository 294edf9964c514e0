"""Every count, size and address a user can give, with its bound, declared once.

A check runs where the value enters (a flag, a Python argument, a dashboard widget or address
parameter, a file's header) and before any work; its refusal is one line that names the input,
its value (shortened) and the allowed range. ``docs/limits.md`` is generated from this table
(``python -m steering limits``), so the page and the checks cannot drift. Each method's alpha
limit is declared on its ``Method`` (``methods/registry.py``) and listed with these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MiB = 2**20
RAY_CONNECT_SECONDS = 5.0  # a Ray address where nothing answers this soon is refused before anything starts


class LimitError(ValueError):
    """An input outside its declared bound; the message names the input, the value and the range."""


def shown(value, width: int = 40) -> str:
    """A value as a refusal quotes it: plain numbers (not ``np.uint64(128)``), long text cut."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy and torch scalars
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else (
        repr(value) if isinstance(value, str) else str(value))
    length = len(value) if isinstance(value, str) else len(text)
    return text if len(text) <= width else f"{text[:width - 12]}... ({length:,} characters)"


@dataclass(frozen=True)
class Limit:
    """A bound: ``low <= value <= high`` (``high`` None: given where the check runs, e.g. the
    machine's cores), a finite number, an integer where ``integer``."""

    name: str
    low: float
    high: float | None
    unit: str
    why: str
    where: str
    integer: bool = True

    def range_text(self, high: float | None = None) -> str:
        high = self.high if high is None else high

        def num(x):
            return f"{int(x):,}" if self.integer or float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"
        unit = f" {self.unit}" if self.unit else ""
        return f"from {num(self.low)} to {num(high)}{unit}" if high is not None else f"of at least {num(self.low)}{unit}"

    def check(self, value, source: str | None = None, high: float | None = None, because: str = ""):
        """``value`` if it is within bounds (``high``, ``because``: a bound known where the check
        runs, and what it is); a LimitError naming ``source`` (the flag, parameter or file field)."""
        number = value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value
        top = self.high if high is None else high
        ok = not isinstance(number, bool) and isinstance(number, (int, float)) and math.isfinite(number) and \
            (float(number).is_integer() or not self.integer) and self.low <= number and (top is None or number <= top)
        if not ok:
            kind = "an integer" if self.integer else "a finite number"
            raise LimitError(f"{source or self.name} must be {kind} {self.range_text(high)}"
                             f"{f' ({because})' if because else ''}, got {shown(value)}")
        return int(number) if self.integer else float(number)


LIMITS: dict[str, Limit] = {limit.name: limit for limit in (
    Limit("seed", 0, 2**32 - 1, "", "numpy's and torch's seeds", "--seed, PipelineSettings.seed, generate(), the Steer page"),
    Limit("workers", 1, None, "replicas", "a local machine runs at most one replica per core; a Ray cluster at most "
          "as many as the CPUs it reports", "--workers, Pool"),
    Limit("control_vector_scale", -100, 100, "", "llama.cpp's --control-vector-scaled; its own examples use -2 to 2",
          "generate --control-vector-scale, import-gguf --scale", integer=False),
    Limit("control_vector_magnitude", 0, 1e5, "", "the largest value times the scale that a direction adds to the residual "
          "stream (real models' activations stay below 1e4)", "a control vector file, with its scale",
          integer=False),
    Limit("control_vector_layer_count", 1, 4096, "layers", "controlvector.layer_count, as a file declares it",
          "a control vector file"),
    Limit("control_vector_bytes", 1, 2**30, "bytes", "a 70B model's 80 directions of 8,192 floats are 2.6 MB",
          "a control vector file"),
    Limit("gguf_metadata_entries", 0, 65_536, "entries", "a GGUF header's key-value count (models have ~40)",
          "a GGUF file's header"),
    Limit("gguf_tensors", 0, 65_536, "tensors", "a GGUF file's tensor count (a 70B model has ~720)",
          "a GGUF file's header"),
    Limit("gguf_array_entries", 0, 2**24, "entries", "a GGUF array (a vocabulary has at most ~256k tokens)",
          "a GGUF file's metadata"),
    Limit("gguf_string_bytes", 0, 16 * MiB, "bytes", "a GGUF string (chat templates are ~10 kB)",
          "a GGUF file's metadata and tensor names"),
    Limit("gguf_dimensions", 1, 4, "", "ggml's GGML_MAX_DIMS", "a GGUF file's tensor table"),
    Limit("prompt_file_bytes", 1, 5 * MiB, "bytes", "a prompt set of tasks, not a corpus", "--prompts, PromptSet.load"),
    Limit("prompt_chars", 1, 1_000_000, "characters", "one prompt; the model's context refuses less",
          "generate(), --prompt, the Steer page"),
    Limit("safetensors_header_bytes", 0, MiB, "bytes", "names, shapes and metadata of a tensor file",
          "import-vectors, SteeringArtifacts.load, a run's tensors"),
)}


def check(name: str, value, source: str | None = None, high: float | None = None, because: str = ""):
    """``LIMITS[name].check``: the one way a bound is applied."""
    return LIMITS[name].check(value, source, high, because)


def limits_page(method_limits: dict[str, float]) -> str:
    """``docs/limits.md``: the table below, with each method's alpha limit (``methods.alpha_limits``;
    the registry imports this module's checks, so it hands its limits in)."""
    return ("# Limits\n\nEvery count, size and address a user can give, with its bound. Generated by "
            "`python -m steering limits` from `steering/core/limits.py` (a test keeps this page equal to it). A value "
            "outside its bound is refused before any work, in one line naming the input, the value and the range.\n\n"
            + table(method_limits))


def table(method_limits: dict[str, float] | None = None) -> str:
    """The limits as a markdown table, each method's alpha limit after them."""
    rows = ["| input | allowed | why | checked at |", "| --- | --- | --- | --- |"]
    rows += [f"| `{l.name}` | {l.range_text().removeprefix('from ').removeprefix('of ')} | {l.why} | {l.where} |"
             for l in LIMITS.values()]
    rows.append(f"| Ray address | answers within {RAY_CONNECT_SECONDS:g} s | probed before the model loads | "
                "STEERSCOPE_RAY_ADDRESS |")
    rows += [f"| `alpha` of `{name}` | -{limit:g} to {limit:g} | the method's own units | --alpha"
             f"{', --act-alpha, --act-alphas' if name == 'act' else ''}, the Steer page and its address |"
             for name, limit in (method_limits or {}).items()]
    return "\n".join(rows) + "\n"


def parser_type(name: str):
    """An argparse ``type`` that reads a flag's text as ``LIMITS[name]`` and checks it, so the
    refusal is argparse's one line naming the flag."""
    import argparse

    limit = LIMITS[name]

    def convert(text: str):
        try:
            value = int(text) if limit.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not {'an integer' if limit.integer else 'a number'} "
                                             f"({limit.range_text()})") from None
        try:
            return limit.check(value, "the value")
        except LimitError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = name
    return convert
