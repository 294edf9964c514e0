"""``python -m steering.demo_model train|eval``: rebuild or measure the embedded model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.files import atomic_write_bytes
from ..engine.models import EMBEDDED_MODEL_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m steering.demo_model", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train_p = sub.add_parser("train", help="build the corpus and train the embedded model from nothing")
    train_p.add_argument("--out", type=Path, default=EMBEDDED_MODEL_DIR, help="output directory (default: %(default)s)")
    train_p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    train_p.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    eval_p = sub.add_parser("eval", help="measure the language bias and explicit-language accuracy")
    eval_p.add_argument("--model", default=None, help="model name or directory (default: the embedded model)")
    eval_p.add_argument("--samples", type=int, default=10, help="samples per task for the bias (default: %(default)s)")
    eval_p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: %(default)s)")
    eval_p.add_argument("--tasks", type=int, default=None, help="use only the first N tasks")
    eval_p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    if args.command == "train":
        from dataclasses import replace

        from .train import TrainSettings, train

        settings = TrainSettings(seed=args.seed)
        if args.epochs is not None:
            settings = replace(settings, epochs=args.epochs)
        record = train(args.out, settings)
        print(json.dumps({k: record[k] for k in ("parameters", "train_seconds", "epoch_losses")}, indent=2))
        return 0

    from .evaluate import evaluate, print_report

    report = evaluate(args.model, samples=args.samples, temperature=args.temperature, n_tasks=args.tasks)
    print_report(report)
    if args.json:
        atomic_write_bytes(args.json, (json.dumps(report, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
