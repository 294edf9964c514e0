"""A run's steering in llama.cpp. Export it as a GGUF control vector (alpha included, scale 1),
then answer the run's held-out phrasings with the Q4_K_M GGUF in llama.cpp (llama-cpp-python),
greedy, at the run's evaluation budget and stop rule (the first closed code block), without and
with the vector. Score the answers as the evaluation does, next to Steerscope's own figures for
the same steering: as the run evaluated it (its schedule, from the last prompt token on), and as
llama.cpp applies it (the exported vector at every position), decoded by Steerscope.

    python bench/bench_llama_cpp.py RUN --method mean_diff [--model MODEL.gguf] [--limit N]
        [--llama-completion BIN --check K] [--out DIR]

``--llama-completion``: also answer the first K prompts with that llama.cpp binary, whose own
loader reads the file (``--control-vector``), and check that its answers are llama-cpp-python's.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steering.code.fences import closes_code_block, cut_after_block  # noqa: E402
from steering.engine.forward import format_prompt
from steering.engine.generation import Generation, GenerationConfig, generate
from steering.engine.models import load_model  # noqa: E402
from steering.pipeline.control_vectors import ControlVector, import_control_vector, run_control_vector  # noqa: E402
from steering.pipeline.evaluation import summarize  # noqa: E402
from steering.pipeline.results import RunResults  # noqa: E402
from steering.pipeline.runner import Pipeline  # noqa: E402
from steering.store.storage import Run  # noqa: E402


def llama_answers(llm, model, texts: list[str], budget: int, vector: ControlVector | None, tick) -> list[tuple[str, int]]:
    """Greedy answers in llama.cpp with ``vector`` (None: without), stopped as Steerscope stops:
    at the end token, the budget, or once the first code block closes."""
    import llama_cpp

    n_layers = llama_cpp.llama_model_n_layer(llm.model)
    data = vector.llama_buffer(n_layers) if vector is not None else None
    pointer = data.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) if data is not None else None
    assert llama_cpp.llama_set_adapter_cvec(llm.ctx, pointer, 0 if data is None else data.size, llm.n_embd(), 1,
                                            n_layers - 1) == 0
    vocab, tok, out = llama_cpp.llama_model_get_vocab(llm.model), model.tokenizer, []
    for text in texts:
        prompt = llm.tokenize(text.encode(), add_bos=False, special=True)
        tokens = []
        llm.reset()  # else generate reuses the KV cache of a matching prefix, computed under the previous vector
        for token in llm.generate(prompt, temp=0.0, top_k=1, reset=True):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            tokens.append(token)
            if len(tokens) >= budget or ("`" in tok.decode(tokens[-1:]) and closes_code_block(tok.decode(tokens, skip_special_tokens=True))):
                break
        out.append((tok.decode(tokens, skip_special_tokens=True), len(tokens)))
        tick()
    return out


def binary_answer(binary: str, gguf: str, text: str, budget: int, vector_path: str | None) -> str:
    extra = ["--control-vector", vector_path] if vector_path else []
    # flash attention off, as llama-cpp-python has it: the kernels round apart, and greedy answers part
    done = subprocess.run([binary, "-m", gguf, "-p", text, "-n", str(budget), "--temp", "0", "-no-cnv", "-t", "2",
                           "--no-display-prompt", "--no-warmup", "-fa", "off", "-c", "2048", *extra],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"llama-completion failed: {done.stderr[-1000:]}")
    return done.stdout.strip().removesuffix("[end of text]")  # what it prints when the answer ends


def figure(summary: dict, key: str = "fenced_target") -> str:
    low, high = summary["ci"][key]
    return f"{summary[key]:.1%} ({low:.0%}-{high:.0%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run on the GGUF model, evaluated on the held-out phrasings")
    parser.add_argument("--method", default="mean_diff")
    parser.add_argument("--model", default=None, help="the GGUF file (default: the run's model)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N held-out phrasings")
    parser.add_argument("--llama-completion", default=None, help="a llama-completion binary: check its loader too")
    parser.add_argument("--check", type=int, default=3, help="prompts answered by the binary as well (default: 3)")
    parser.add_argument("--out", type=Path, default=Path("bench-llama-cpp"))
    args = parser.parse_args()
    import llama_cpp

    started = time.perf_counter()

    def say(words: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {words}", flush=True)

    stored = Run(args.run).settings
    gguf = args.model or stored["model_ref"]
    model = load_model(gguf, dtype=stored["model"]["dtype"])
    pipeline = Pipeline.reopen(args.run, model)
    results, settings = RunResults(args.run), pipeline.settings
    budget = (results.budget("heldout") or {"tokens": settings.max_new_tokens})["tokens"]
    ids, prompts = pipeline.context.eval_prompts("heldout")
    ids, prompts = ids[:args.limit], prompts[:args.limit]
    args.out.mkdir(parents=True, exist_ok=True)
    vector = run_control_vector(pipeline, args.method, accept_inexact=True)
    path = vector.save(args.out / f"{args.method}.gguf")
    say(f"exported {path} (blocks {sorted(vector.directions)}); {len(prompts)} held-out phrasings, budget {budget} tokens")
    for kind, words in vector.differences.items():
        say(f"  {kind}: {words}")

    config = GenerationConfig(max_new_tokens=budget, temperature=0.0, seed=settings.seed, batch_size=settings.batch_size)
    steerer = import_control_vector(path, model).steerer
    t = time.perf_counter()
    exported_in_steerscope = generate(model, prompts, config, steerer=steerer)
    say(f"Steerscope, exported vector at every position: {time.perf_counter() - t:.0f} s")

    llm = llama_cpp.Llama(model_path=gguf, n_ctx=2048, n_threads=2, verbose=False)
    texts = [format_prompt(model.tokenizer, p, model.instruction) for p in prompts]
    answers, seconds = {}, {}
    for name, v in (("llama.cpp without", None), ("llama.cpp with", ControlVector.read(path))):
        t, done = time.perf_counter(), [0]

        def tick():
            done[0] += 1
            if done[0] % 10 == 0:
                say(f"  {name}: {done[0]}/{len(texts)}")

        answers[name] = llama_answers(llm, model, texts, budget, v, tick)
        seconds[name] = time.perf_counter() - t
        say(f"{name} the vector: {seconds[name]:.0f} s, {sum(n for _, n in answers[name])} tokens")

    def generations(rows):
        return [Generation(p, cut_after_block(text), n, settings.seed) for p, (text, n) in zip(prompts, rows)]

    target, tok = settings.target, model.tokenizer
    scored = {name: summarize(generations(rows), target, tok, budget, ids) for name, rows in answers.items()}
    scored["Steerscope, exported vector"] = summarize(exported_in_steerscope, target, tok, budget, ids)
    table = results.method_table("heldout", intervals=True)
    evaluated = {row: table.loc[row, "fenced_target"] for row in ("baseline", args.method) if row in table.index}

    print(f"\nHeld-out phrasings ({len(prompts)}), target {target}, greedy, budget {budget} tokens: fenced {target} "
          "code (95% interval over tasks)")
    for row, (value, low, high) in evaluated.items():
        label = "unsteered" if row == "baseline" else f"{args.method} as the run evaluated it"
        print(f"  Steerscope (run's evaluation), {label:<34} {value:.1%} ({low:.0%}-{high:.0%})"
              + ("" if args.limit is None else "  [all phrasings]"))
    for name in ("Steerscope, exported vector", "llama.cpp without", "llama.cpp with"):
        words = {"Steerscope, exported vector": "Steerscope, the exported vector, every position",
                 "llama.cpp without": "llama.cpp (Q4_K_M), no control vector",
                 "llama.cpp with": "llama.cpp (Q4_K_M), the control vector at 1"}[name]
        print(f"  {words:<66} {figure(scored[name])}")
    same = np.mean([a.detection.verdict == b.detection.verdict
                    for a, b in zip(exported_in_steerscope, generations(answers["llama.cpp with"]))])
    print(f"  same verdict, Steerscope and llama.cpp with the vector: {same:.0%} of phrasings")

    checked = []
    if args.llama_completion:
        for text, plain, steered in list(zip(texts, answers["llama.cpp without"], answers["llama.cpp with"]))[:args.check]:
            for own, vector_path in ((plain, None), (steered, str(path))):
                answer = binary_answer(args.llama_completion, gguf, text, own[1], vector_path)
                checked.append(answer.strip().startswith(own[0].strip()[:200]))
        say(f"llama-completion (llama.cpp's own loader): {sum(checked)}/{len(checked)} answers begin as llama-cpp-python's")

    report = {"run": str(args.run), "method": args.method, "model": gguf, "budget": budget, "n": len(prompts),
              "evaluated": {k: list(v) for k, v in evaluated.items()},
              "scored": {k: {m: s[m] for m in ("fenced_target", "success", "no_code_block", "cut_off")} | {"ci": s["ci"]}
                         for k, s in scored.items()},
              "seconds": seconds, "binary_checks": checked, "metadata": vector.metadata}
    (args.out / f"{args.method}.json").write_text(json.dumps(report, indent=1, default=str))
    with open(args.out / f"{args.method}-answers.jsonl", "w") as f:
        for i, (task, prompt) in enumerate(zip(ids, prompts)):
            f.write(json.dumps({"task": task, "prompt": prompt, "steerscope_exported": exported_in_steerscope[i].text,
                                **{k: v[i][0] for k, v in answers.items()}}) + "\n")
    say(f"wrote {args.out}")


if __name__ == "__main__":
    main()
