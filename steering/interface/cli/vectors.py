"""The CLI's steering-vector files: Steerscope's safetensors (``export-vectors``,
``import-vectors``) and llama.cpp's GGUF control vectors (``export-gguf``, ``import-gguf``).
Errors go through ``main``'s boundary like every command's."""

from __future__ import annotations

from pathlib import Path

from ...core.files import check_target
from ...core.limits import parser_type
from ...reports.summary import console, table
from ...store.schema import DEFAULT_METHOD
from .common import load, model_args, open_pipeline

FORCE_HELP = "replace the output file if it exists"


def cmd_export(args) -> int:
    from ...store.storage import Run
    from ...pipeline.vectors_io import export_vectors, run_vectors

    check_target(args.file, replace=args.force)  # before the run is read
    export_vectors(args.file, *run_vectors(Run(args.run_dir)), force=args.force)
    console.print(f"wrote {args.file}")
    return 0


def cmd_import(args) -> int:
    from ...pipeline.vectors_io import import_vectors

    tensors, meta = import_vectors(args.file, load(args))
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items())
    console.print(f"{args.file}: {shapes}; from {meta['model']} at {meta['hook_point']} ({meta['position']} token) — fits")
    return 0


def _directions(vector, title: str) -> None:
    table(title, ["llama.cpp block", "norm"], [[str(b), f"{float(v.norm()):.3f}"] for b, v in sorted(vector.directions.items())])


def cmd_export_gguf(args) -> int:
    from ...pipeline.control_vectors import run_control_vector

    if args.file.suffix.lower() != ".gguf":
        raise ValueError(f"{args.file.name}: a control vector file ends in .gguf")
    check_target(args.file, replace=args.force)  # before the model loads
    pipeline = open_pipeline(args, new_run=False)
    pipeline.progress.stop()
    vector = run_control_vector(pipeline, args.method, accept_inexact=args.accept_inexact)
    vector.save(args.file, force=args.force)
    _directions(vector, f"{args.method} as a llama.cpp control vector (alpha included: scale 1)")
    for kind, words in vector.differences.items():
        console.print(f"warning: {kind}: {words}", style="yellow", highlight=False, soft_wrap=True)
    console.print(f"wrote {args.file}; in llama.cpp: --control-vector {args.file} (scale 1: alpha is in the file)",
                  highlight=False)
    return 0


def cmd_import_gguf(args) -> int:
    from ...pipeline.control_vectors import ControlVector, import_control_vector

    if args.save:  # the output is never the input, and replaces a file only with --force
        check_target(args.save, replace=args.force, reading=(args.file,))
    vector = ControlVector.read(args.file)  # a bad file is refused before the model loads
    artifacts = import_control_vector(args.file, load(args), args.scale, vector)
    spec = artifacts.spec
    table(f"{args.file.name}: mean difference at every position, scale {args.scale:g}", ["layer", "norm"],
          [[str(layer), f"{float(artifacts.steerer.mean_vectors[layer].norm()):.3f}"] for layer in spec.layers])
    if args.save:
        artifacts.save(args.save, force=args.force)
        console.print(f"wrote {args.save} (SteeringArtifacts.load reads it)")
    console.print(f"fits {artifacts.provenance['model']}", highlight=False)
    return 0


def add_vector_parsers(sub) -> None:
    from ...methods.registry import steering_methods

    p = sub.add_parser("export-vectors", help="write a run's steering vectors to a safetensors file")
    p.add_argument("run_dir", type=Path, help="an existing run directory (after clustering)")
    p.add_argument("file", type=Path, help="the .safetensors file to write")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import-vectors", help="check that a steering-vector file fits a model")
    p.add_argument("file", type=Path, help="a .safetensors file written by export-vectors")
    model_args(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export-gguf", help="write a run's steering as a llama.cpp control vector (GGUF)")
    p.add_argument("run_dir", type=Path, help="an existing run directory, fitted for the method")
    p.add_argument("file", type=Path, help="the .gguf file to write")
    p.add_argument("--method", default=DEFAULT_METHOD, choices=steering_methods(), help="steering method (default: %(default)s)")
    p.add_argument("--accept-inexact", action="store_true",
                   help="export a schedule llama.cpp cannot express (it steers every token, the prompt included); "
                        "the file records the difference")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    model_args(p)
    p.set_defaults(func=cmd_export_gguf)

    p = sub.add_parser("import-gguf", help="check a llama.cpp or repeng control vector against a model")
    p.add_argument("file", type=Path, help="a control vector .gguf file")
    p.add_argument("--scale", type=parser_type("control_vector_scale"), default=1.0,
                   help="its strength, as llama.cpp's --control-vector-scaled (default: 1)")
    p.add_argument("--save", type=Path, default=None, help="also write it as Steerscope steering artifacts (.safetensors)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP + " (--save)")
    model_args(p)
    p.set_defaults(func=cmd_import_gguf)

