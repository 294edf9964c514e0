"""The pipeline on a GPU: the default run on Qwen2.5-Coder-0.5B-Instruct and on
Qwen2.5-Coder-1.5B-Instruct with ``--device cuda``, per stage, beside the same run's stage times
on CPU where a CPU run of that model is given (``--cpu-run``). Without a CUDA device it says so
and measures nothing.

    python bench/bench_gpu.py [--models PATH ...] [--tasks N] [--cpu-run runs/qwen-cpp]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from steering.code.prompts import PromptSet  # noqa: E402
from steering.store.storage import Run  # noqa: E402

FETCH = ROOT.parent / "shared" / "tools" / "fetch-real-model"


def default_models() -> list[str]:
    return [subprocess.run([str(FETCH), *name], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            for name in ([], ["qwen2.5-coder-1.5b-instruct"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--tasks", type=int, default=None, help="the first N tasks (default: all)")
    parser.add_argument("--cpu-run", type=Path, default=None, help="a CPU run of the first model, for its stage times")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device on this machine: nothing measured (run this where a GPU is lent)")
        return
    print(f"device: {torch.cuda.get_device_name(0)}, bfloat16 supported: {torch.cuda.is_bf16_supported()}")
    cpu = {s: r["seconds"] for s, r in Run(args.cpu_run).stage_records().items()} if args.cpu_run else {}
    for i, model in enumerate(args.models or default_models()):
        with tempfile.TemporaryDirectory() as tmp:
            prompts = Path(tmp) / "tasks.jsonl"
            tasks = PromptSet.load()
            prompts.write_text((tasks.head(args.tasks) if args.tasks else tasks).to_jsonl())
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "steering", "run", "--model", model, "--device", "cuda",
                            "--prompts", str(prompts), "--out", str(Path(tmp) / "run")], cwd=ROOT, check=True)
            wall = time.perf_counter() - start
            stages = {s: r["seconds"] for s, r in Run(Path(tmp) / "run").stage_records().items()}
        print(f"\n{Path(model).name}: whole command {wall:.0f} s on the GPU")
        for stage, seconds in stages.items():
            base = cpu.get(stage) if i == 0 else None
            print(f"  {stage:<22}{seconds:>9.1f} s" + (f"   CPU {base:.1f} s ({base / seconds:.1f}x)" if base else ""))


if __name__ == "__main__":
    main()
