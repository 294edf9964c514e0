"""What issue 18's checks cost on a real model, measured side by side in one run.

- the chat template's load check (a child process), beside the load it is part of;
- the content fingerprint: a copy of the model in another folder, loaded first (every file
  hashed) and again (digests cached), beside the original's load;
- decoding with the non-finite check, beside the same decoding (the check runs every step);
- runs made before content fingerprints still reopen.

    python bench/bench_safety.py --model MODEL.gguf [--runs runs/qwen-cpp runs/qwen-java]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import steering.engine.generation as generation  # noqa: E402
from steering.engine.chat import check_template  # noqa: E402
from steering.engine.generation import GenerationConfig, generate  # noqa: E402
from steering.engine.models import load_model  # noqa: E402
from steering.pipeline.runner import Pipeline  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--runs", nargs="*", default=[])
    args = parser.parse_args()

    model, load_s = timed(lambda: load_model(args.model))
    _, check_s = timed(lambda: check_template(model.tokenizer, model.instruction))
    print(f"load {load_s:.1f} s, of which the chat template's check {check_s:.2f} s ({check_s / load_s:.0%})")

    source = Path(model.hf_model.name_or_path)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        copy = shutil.copytree(source, Path(tmp) / "copy")
        size = sum(f.stat().st_size for f in copy.iterdir()) / 2**30
        first, first_s = timed(lambda: load_model(str(copy)))
        _, again_s = timed(lambda: load_model(str(copy)))
        _, original_s = timed(lambda: load_model(str(source)))
    print(f"a copy in another folder ({size:.2f} GiB): first load {first_s:.1f} s (hashed), again {again_s:.1f} s "
          f"(cached), the original {original_s:.1f} s; first/cached {first_s / again_s:.2f}x; "
          f"same model: {first.fingerprint == model.fingerprint}")

    config = GenerationConfig(max_new_tokens=32)
    prompts = ["Write a function that reverses a string.", "Write a function that sums a list."] * 4
    checked, plain = [], []
    isfinite = generation.torch.isfinite
    for _ in range(3):  # alternate, so that both see the same machine
        checked.append(timed(lambda: generate(model, prompts, config))[1])
        generation.torch.isfinite = lambda t: generation.torch.ones_like(t, dtype=generation.torch.bool)
        try:
            plain.append(timed(lambda: generate(model, prompts, config))[1])
        finally:
            generation.torch.isfinite = isfinite
    c, p = statistics.median(checked), statistics.median(plain)
    print(f"8 answers of 32 tokens: with the non-finite check {c:.2f} s, without {p:.2f} s ({c / p:.3f}x)")

    for run in args.runs:
        pipeline = Pipeline.reopen(run, model)
        stored = pipeline.run.settings["model_fingerprint"]
        print(f"{run}: stored fingerprint {stored} (content fingerprint {model.fingerprint}); reopens with "
              f"{len(pipeline.done_stages())} stages done; made_from: {model.made_from(stored)}")


if __name__ == "__main__":
    main()
