"""``python -m steering``: the engine from the command line.

Every subcommand prints a clear ``error: ...`` line and exits with status 2 on bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .languages import LANGUAGE_KEYS, LANGUAGES
from .models import HOOK_POINTS, ModelLoadError
from .prompts import DEFAULT_PROMPT_SET, PromptSetError
from .schema import CHOSEN_ALPHA, MIN_VALIDATION_TASKS, validation_tasks
from .storage import SETTINGS_FILE, StorageError

console = Console()


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="Hugging Face id or local directory (default: the embedded model)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: CUDA when present)")
    parser.add_argument("--dtype", default=None, help="float32, float16, bfloat16 (default: bfloat16 on CUDA, else float32)")


def _load(args):
    from .models import load_model

    with console.status("loading the model…"):
        return load_model(args.model, device=args.device, dtype=args.dtype)


def cmd_model(args) -> int:
    facts = _load(args).facts
    table = Table(title=f"Model {facts.name}", show_header=False)
    for key, value in facts.as_dict().items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)
    return 0


def cmd_prompts(args) -> int:
    from .prompts import PromptSet

    prompts = PromptSet.load(args.file)
    table = Table(title=f"{prompts.name}: {len(prompts)} tasks")
    table.add_column("category")
    table.add_column("tasks", justify="right")
    for lang in LANGUAGE_KEYS:
        table.add_column(LANGUAGES[lang].display, justify="right")
    for category in prompts.categories:
        tasks = [t for t in prompts if t.category == category]
        table.add_row(category, str(len(tasks)), *(str(sum(lang in t.prompts for t in tasks)) for lang in LANGUAGE_KEYS))
    console.print(table)
    console.print(f"valid; fingerprint {prompts.fingerprint()}")
    return 0


def cmd_generate(args) -> int:
    from .generation import GenerationConfig, generate

    model = _load(args)
    config = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    answer = generate(model, args.prompt, config)[0]
    console.print(answer.text, markup=False, highlight=False)
    d = answer.detection
    console.print(
        f"[dim]{answer.n_tokens} tokens · language {d.language or 'unknown'} "
        f"({d.confidence:.0%}, from {d.source}) · {'parses' if d.parses else 'does not parse'}[/dim]"
    )
    return 0


def cmd_detect(args) -> int:
    from .detect import detect_language

    d = detect_language(args.file.read_text(encoding="utf-8"))
    console.print(f"{d.language or 'unknown'}\tconfidence {d.confidence:.2f}\t"
                  f"{'parses' if d.parses else 'syntax errors'}\t(from {d.source})")
    return 0


# --- the G-ACT pipeline -----------------------------------------------------------------------


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bars = Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("left"), TimeRemainingColumn(), console=console, transient=False)
    tasks: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        if not bars.live.is_started:
            bars.start()
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    report.stop = bars.stop  # type: ignore[attr-defined]
    return report


def _new_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompts", type=Path, default=DEFAULT_PROMPT_SET, help="JSONL prompt set (default: the shipped set)")
    p.add_argument("--out", type=Path, required=True, help="run directory to create, or a run to resume with the same settings")
    p.add_argument("--overwrite", action="store_true", help="clear a run made with other settings, model or prompts and start it again")
    p.add_argument("--target", default=None, help="language to steer towards: python, cpp, java, julia (default: cpp)")
    p.add_argument("--contrast", default=None, help="differences are target minus this: neutral, or a language (default: neutral)")
    p.add_argument("--hook-point", default=None, choices=sorted(HOOK_POINTS), help="where activations are read and steered (default: resid_post)")
    p.add_argument("--position", default=None, choices=["last", "mean"], help="prompt position read: last token or mean (default: last)")
    p.add_argument("--answer-prefix", default=None, help="text appended after the generation prompt before reading (default: ```, the answer's opening fence; '' for none)")
    p.add_argument("--no-adaptive", dest="adaptive", action="store_false", default=None,
                   help="probes without the 'off' class learned inside target-language answers (steer at full strength everywhere)")


def _tuning_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, default=None, help="clusters, i.e. steering vectors per layer (default: 3)")
    p.add_argument("--cluster-mode", choices=["per_layer", "concat"], default=None, help="one clustering for all layers (concat, the default: labels compare across layers), or each layer alone")
    p.add_argument("--selection", choices=["soft", "argmax"], default=None, help="G-ACT mixes the cluster vectors by probe probability (soft, default) or takes the top one (argmax: an ablation)")
    p.add_argument("--neuron-scoring", choices=["paper", "output", "activation"], default=None, help="neuron baseline: the paper's W_up*sigmoid(W_gate) via the LM head (default), W_out rows, or activation on target answers")
    p.add_argument("--act-alpha", type=float, default=None, help="ACT's strength in head-std units (default: the best of 1-15 by the fenced tag)")
    p.add_argument("--layers", type=int, nargs="+", default=None, help="layers to steer (default: the best ones from the sweep)")
    p.add_argument("--alpha", type=float, nargs="+", default=None, help="one alpha, or one per layer (default: from the sweep)")
    p.add_argument("--samples", type=int, default=None, help="evaluation samples per task (default: 1)")
    p.add_argument("--eval-temperature", type=float, default=None, help="evaluation sampling temperature, 0 for greedy (default: 0)")
    p.add_argument("--refine-steps", type=int, default=None, help="gradient refinement steps (default: 30)")
    p.add_argument("--online", action="store_true", default=None, help="refine one prompt at a time, as the paper does")
    p.add_argument("--seed", type=int, default=None, help="seed for splits, clustering and sampling (default: 0)")


_SETTING_ARGS = (("target", "target"), ("contrast", "contrast"), ("hook_point", "hook_point"), ("position", "position"),
                 ("k", "k"), ("cluster_mode", "cluster_mode"), ("seed", "seed"), ("layers", "steer_layers"),
                 ("alpha", "steer_alphas"), ("samples", "eval_samples"), ("refine_steps", "refine_steps"),
                 ("online", "refine_online"), ("answer_prefix", "answer_prefix"), ("adaptive", "adaptive"),
                 ("eval_temperature", "eval_temperature"), ("selection", "selection"),
                 ("neuron_scoring", "neuron_scoring"), ("act_alpha", "act_alpha"))


def _open_pipeline(args, new_run: bool):
    from .pipeline import Pipeline, PipelineSettings
    from .prompts import PromptSet
    from .storage import Run

    overrides = {key: getattr(args, arg) for arg, key in _SETTING_ARGS if getattr(args, arg, None) is not None}
    if new_run:
        if args.out.exists() and not args.out.is_dir():
            raise StorageError(f"{args.out} is a file, not a run folder: give a new or empty folder")
        if args.out.is_dir() and any(args.out.iterdir()) and not (args.out / SETTINGS_FILE).is_file():
            raise StorageError(f"{args.out} holds files and is not a Steerscope run: give a new or empty folder")
        prompts = PromptSet.load(args.prompts)
        model = _load(args)
        return Pipeline(model, prompts, Run(args.out, create=True), PipelineSettings.from_json(overrides),
                        progress=_progress(), model_ref=args.model, overwrite=args.overwrite)
    if args.model is None:
        args.model = Run(args.run_dir).settings.get("model_ref")
    return Pipeline.reopen(args.run_dir, _load(args), one_off=overrides, progress=_progress())


def _table(title: str, columns: list[str], rows: list[list]) -> None:
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[f"{v:.1%}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)


EVAL_COLUMNS = {"fenced_target": "fenced target", "success": "…and parses", "compiles": "compiles (of fenced)",
                "no_code_block": "no code block", "cut_off": "cut off", "repeated_ngrams": "repeated 4-grams"}


def print_summary(run) -> None:
    """The run's tables: probe accuracy per layer, the chosen layers, refinement, before/after."""
    metrics = run.metrics()
    by = {}
    for m in metrics:
        by.setdefault(m["stage"], {}).setdefault(m["name"], {})[m["layer"]] = m["value"]
    bias = by.get("bias")
    if bias:
        rows = [[LANGUAGES[lang].display if lang in LANGUAGES else "undetected", bias[f"share_{lang}"][None]]
                for lang in (*LANGUAGE_KEYS, "none") if f"share_{lang}" in bias]
        if "no_code_block" in bias:
            rows.append(["no code block", bias["no_code_block"][None]])
        _table("Bias: language of sampled answers to the neutral prompts", ["", "share"], rows)
    probe = by.get("probe")
    if probe:
        layers = sorted(k for k in probe["gact_val_accuracy"] if k is not None)
        ci = {m["layer"]: m["extra"] for m in metrics if m["stage"] == "probe" and m["name"] == "gact_val_ci"}
        act = by.get("act", {}).get("best_head_val_accuracy", {})
        refined = by.get("refine", {}).get("refined_val_accuracy")
        interval = lambda layer: f"{ci[layer]['low']:.0%}-{ci[layer]['high']:.0%}" if layer in ci else ""  # noqa: E731
        nan = float("nan")
        rows = [[layer, probe["gact_val_accuracy"][layer], interval(layer), probe.get("majority_val_accuracy", {}).get(layer, nan),
                 probe.get("shuffled_val_accuracy", {}).get(layer, nan), probe.get("sklearn_val_accuracy", {}).get(layer, nan)]
                + ([act.get(layer, float("nan"))] if act else []) + ([refined[layer]] if refined else []) for layer in layers]
        _table("Probe validation accuracy per layer (G-ACT: cluster task; ACT: its best head, good vs bad answer)",
               ["layer", "G-ACT", "95% CI", "majority", "shuffled labels", "sklearn fit (ablation)"]
               + (["ACT best head"] if act else []) + (["G-ACT refined"] if refined else []), rows)
        import numpy as np

        g = np.array([probe["gact_val_accuracy"][l] for l in layers], dtype=float)  # None (no sample): NaN
        half = len(layers) // 2 or 1
        n_val = validation_tasks(run.settings)
        if n_val is not None and n_val < MIN_VALIDATION_TASKS:
            console.print(f"[yellow]warning:[/yellow] about {n_val} validation task(s): these accuracies are not "
                          "meaningful; use at least 20 tasks", highlight=False)
        if act:
            a = np.array([act.get(l, np.nan) for l in layers], dtype=float)
            console.print(f"mean validation accuracy: G-ACT {np.nanmean(g):.1%}, ACT best head {np.nanmean(a):.1%}; first half "
                          f"of the layers: G-ACT {np.nanmean(g[:half]):.1%}, ACT {np.nanmean(a[:half]):.1%} (different "
                          "tasks: G-ACT picks one of K clusters, ACT tells a good answer from a bad one)")
        off = [v for v in probe.get("gact_off_val_accuracy", {}).values() if v is not None and v == v]
        if off:
            console.print(f"'off' class (inside target-language answers), mean validation accuracy: G-ACT {np.mean(off):.1%}")
    sweep = by.get("sweep", {})
    if "causal_probe" in sweep:
        _table("Causal test per layer: steering with the probe's cluster vs a random one vs the prompt's own (oracle)",
               ["layer", "probe", "random", "oracle"],
               [[layer, sweep["causal_probe"][layer], sweep["causal_random"][layer], sweep["causal_oracle"][layer]]
                for layer in sorted(sweep["causal_probe"])])
    chosen = sweep.get(CHOSEN_ALPHA)
    if chosen:
        console.print(f"steered layers (from the sweep): {list(chosen)} with alphas {list(chosen.values())}")
    refine = by.get("refine")
    if refine:
        _table("Gradient refinement (fenced tag, greedy)", ["split", "before", "after"],
               [[split, refine[f"success_before_{split}"][None], refine[f"success_after_{split}"][None]]
                for split in ("train", "val")])
    columns = EVAL_COLUMNS
    for prefix, which in (("eval_", "neutral prompts"), ("heldout_", "held-out phrasings")):
        stages = sorted(k for k in by if k.startswith(prefix))
        if not stages:
            continue
        cell = lambda ev, cond, key: ev.get(f"{cond}_{key}", {}).get(None, "n/a")  # noqa: E731
        rows = [["baseline", *[cell(by[stages[0]], "baseline", key) for key in columns]]]
        rows += [[stage.removeprefix(prefix), *[cell(by[stage], "steered", key) for key in columns]] for stage in stages]
        _table(f"Steering toward the target on the {which} (greedy answers)", ["method", *columns.values()], rows)


def print_one_off(results: list[dict], settings: dict) -> None:
    """Evaluations with one-off settings: shown, never stored in the run."""
    def cells(summary: dict) -> list:
        return [summary[k] if summary.get(k) is not None else "n/a" for k in EVAL_COLUMNS]

    rows = []
    for result in results:
        rows += [[f"baseline ({result['prompt_set']})", *cells(result["baseline"])],
                 [f"{result['method']} ({result['prompt_set']})", *cells(result["steered"])]]
    _table("Steering with one-off settings (not stored in the run)", ["method", *EVAL_COLUMNS.values()], rows)
    console.print(f"one-off settings {settings}: the results above are not stored; start a new run to keep them")


def cmd_stage(args) -> int:
    from .pipeline import EVAL_METHODS
    from .schema import PROMPT_SETS

    pipeline = _open_pipeline(args, new_run=args.command in ("run", "bias", "extract"))
    asked = getattr(args, "method", ["gact"])
    methods = EVAL_METHODS if "all" in asked else asked
    prompt_sets = {None: list(pipeline.settings.eval_sets), "both": list(PROMPT_SETS)}.get(
        getattr(args, "prompt_set", None), [getattr(args, "prompt_set", None)])
    one_off = []
    try:
        with pipeline.writing():  # one lock for every stage this command runs
            if args.command == "run":
                done = pipeline.done_stages()
                if done:
                    console.print(f"resuming run {pipeline.run.dir.name!r}: already done: {', '.join(done)}")
                pipeline.run_all(resume=True)
            for name in methods if args.command == "eval" else []:
                for prompt_set in prompt_sets:
                    result = pipeline.run_stage("eval", method=name, prompt_set=prompt_set)
                    if pipeline.one_off:
                        one_off.append(result)
            if args.command not in ("run", "eval"):
                pipeline.run_stage(args.command)
    finally:
        pipeline.progress.stop()
    if pipeline.one_off:
        print_one_off(one_off, pipeline.one_off)
        return 0
    print_summary(pipeline.run)
    seconds = pipeline.stage_seconds()
    _table("Time per stage", ["stage", "seconds"], [[stage, f"{value:.1f}"] for stage, value in seconds.items()]
           + [["total", f"{sum(seconds.values()):.1f}"]])
    console.print(f"run saved in {pipeline.run.dir}")
    return 0


def cmd_steer(args) -> int:
    from .evaluation import side_by_side
    from .generation import GenerationConfig

    pipeline = _open_pipeline(args, new_run=False)
    pipeline.progress.stop()
    steerer = pipeline.steerer(pipeline.chosen_spec(args.method))
    config = GenerationConfig(temperature=args.temperature, seed=pipeline.settings.seed,
                              max_new_tokens=pipeline.settings.max_new_tokens)
    base, steered = side_by_side(pipeline.model, args.prompt, steerer, config)
    for title, answer in (("baseline", base), (f"steered ({args.method}, layers {list(steerer.spec.layers)})", steered)):
        d = answer.detection
        console.rule(f"{title}: {d.language or 'unknown'} ({d.confidence:.0%}), "
                     f"{'parses' if d.parses else 'syntax errors'}, {answer.n_tokens} tokens")
        console.print(answer.text, markup=False, highlight=False)
    return 0


def cmd_export(args) -> int:
    from .storage import Run
    from .vectors_io import export_vectors, run_vectors

    export_vectors(args.file, *run_vectors(Run(args.run_dir)))
    console.print(f"wrote {args.file}")
    return 0


def cmd_import(args) -> int:
    from .vectors_io import import_vectors

    tensors, meta = import_vectors(args.file, _load(args))
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items())
    console.print(f"{args.file}: {shapes}; from {meta['model']} at {meta['hook_point']} ({meta['position']} token) — fits")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m steering", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("model", help="load a model and print its facts")
    _model_args(p)
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("prompts", help="validate a JSONL prompt set and summarise it")
    p.add_argument("file", nargs="?", type=Path, default=DEFAULT_PROMPT_SET, help="prompt file (default: the shipped set)")
    p.set_defaults(func=cmd_prompts)

    p = sub.add_parser("generate", help="answer one prompt and detect the answer's language")
    p.add_argument("prompt", help="the prompt text")
    _model_args(p)
    p.add_argument("--temperature", type=float, default=0.0, help="0 for greedy (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    p.add_argument("--max-new-tokens", type=int, default=320, help="(default: %(default)s)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("detect", help="detect the language of a code file and check its syntax")
    p.add_argument("file", type=Path, help="the file to check")
    p.set_defaults(func=cmd_detect)

    stage_help = {
        "run": "run the whole pipeline (bias, extract, cluster, probe, act, sweep, refine, eval, project) and print a summary",
        "bias": "sample answers to the neutral prompts: the model's language preference",
        "extract": "start a run: activations and difference vectors at every layer",
        "cluster": "k-means over the difference vectors: K steering vectors per layer",
        "probe": "train G-ACT's probes per layer (and the scikit-learn ablation), with intervals and baselines",
        "act": "fit faithful ACT: per-head probes on the model's own answers, head selection, its strength",
        "sweep": "steering success for each layer and alpha; picks the layers to steer",
        "refine": "refine the G-ACT probes by gradient through the frozen model",
        "eval": "baseline against steered generation of the neutral prompts and of the held-out phrasings",
        "project": "precompute 2-D projections (PCA, UMAP) of the differences for the dashboard",
    }
    for name, text in stage_help.items():
        p = sub.add_parser(name, help=text, description=text)
        if name in ("run", "bias", "extract"):
            _new_run_args(p)
        else:
            p.add_argument("run_dir", type=Path, help="an existing run directory")
        _model_args(p)
        _tuning_args(p)
        if name == "eval":
            from .pipeline import EVAL_METHODS

            p.add_argument("--method", default=["gact"], nargs="+", choices=[*EVAL_METHODS, "all"],
                           help="steering method; gact_unrefined: G-ACT before refinement; gact_online: refined per prompt "
                                "during generation; all: each in turn (default: %(default)s)")
            p.add_argument("--prompt-set", default=None, choices=["neutral", "heldout", "both"],
                           help="the neutral prompts, or phrasings no stage fitted on (default: the run's eval_sets, both)")
        p.set_defaults(func=cmd_stage)

    p = sub.add_parser("steer", help="answer one prompt with and without steering, side by side")
    p.add_argument("run_dir", type=Path, help="an existing run directory (after the sweep)")
    p.add_argument("--prompt", required=True, help="the prompt text")
    p.add_argument("--method", default="gact", choices=["mean_diff", "act", "gact", "neuron"], help="steering method (default: %(default)s)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 for greedy (default: %(default)s)")
    _model_args(p)
    _tuning_args(p)
    p.set_defaults(func=cmd_steer)

    p = sub.add_parser("export-vectors", help="write a run's steering vectors to a safetensors file")
    p.add_argument("run_dir", type=Path, help="an existing run directory (after clustering)")
    p.add_argument("file", type=Path, help="the .safetensors file to write")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import-vectors", help="check that a steering-vector file fits a model")
    p.add_argument("file", type=Path, help="a .safetensors file written by export-vectors")
    _model_args(p)
    p.set_defaults(func=cmd_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ModelLoadError, PromptSetError, StorageError, ValueError, OSError) as err:
        message = " ".join(str(err).split())  # one line, however long or many-lined the cause
        console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True, markup=True)
        return 2
