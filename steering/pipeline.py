"""The whole G-ACT pipeline, stage by stage, each stage reading the previous ones from the run
directory: bias -> extract -> cluster -> probe -> sweep -> refine -> eval -> project.

Settings are checked against the model and the prompt set before anything runs or is written,
so bad input costs nothing. ``progress(stage, done, total)`` reports long work.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable

import numpy as np
import torch

from .activations import extract_activations
from .clustering import MODES, SteeringClusters, k_sweep
from .evaluation import (best_layers, evaluate_steering, language_shares, layer_alpha_sweep, no_code_block_share,
                         scale_sweep)
from .generation import STOP_RULES, GenerationConfig, generate
from .languages import LANGUAGE_KEYS, check_language
from .models import check_layers
from .neurons import attribute_neurons
from .probes import ActProbe, GactProbe
from .prefix import PromptPrefix, prefixes, tag_success
from .projection import PROJECTIONS, run_projection
from .prompts import PromptSet
from .refine import refine_probe
from .steer import SteeringSpec, Steerer
from .storage import PROMPTS_FILE, Run, atomic_write_bytes
from .threads import configure_threads

Progress = Callable[[str, int, int], None]
STAGES = ("bias", "extract", "cluster", "probe", "sweep", "refine", "eval", "project")
COMBINE_SCALES = (0.5, 0.75, 1.0)  # common scales tried for the chosen layers' alphas together


@dataclass
class PipelineSettings:
    """Every choice the paper leaves open, with Steerscope's default (see the README)."""

    target: str = "cpp"
    bias_samples: int = 4  # sampled answers per neutral prompt when measuring the model's preference
    bias_temperature: float = 1.0  # the model's own distribution, as the paper samples it
    bias_stop: str = "tag"  # bias answers stop once their fence names the language ("block": whole answers)
    contrast: str = "neutral"  # or a language: deltas are target minus that language's prompt
    hook_point: str = "resid_post"
    position: str = "last"
    answer_prefix: str = "```"  # read prompts where the answer starts: where the language is chosen
    adaptive: bool = True  # probes get an "off" class, learned inside target-language answers
    off_per_answer: int = 4  # "off" samples read inside each target-language answer
    off_max_new_tokens: int = 64  # the answers they are read in stop after this many tokens (or max_new_tokens)
    k: int = 3
    cluster_mode: str = "per_layer"
    val_fraction: float = 0.25
    seed: int = 0
    use_paraphrases: bool = True  # neutral paraphrases as extra probe samples (same task label)
    probe_lr: float = 0.05
    probe_weight_decay: float = 1e-2
    probe_epochs: int = 1000
    act_C: float = 1.0
    sweep_alphas: tuple = (0.25, 0.5, 0.75, 1.0)
    steer_layers: tuple | None = None  # None: the best layers from the sweep
    steer_alphas: tuple | None = None  # None: each chosen layer's alpha from the sweep
    n_best_layers: int = 2
    neuron_factor: float = 10.0  # the "neuron" method scales the attributed neuron by this, not by alpha
    refine_steps: int = 30
    refine_lr: float = 0.05
    refine_prox: float = 0.1
    refine_online: bool = False
    eval_samples: int = 1
    eval_temperature: float = 0.0  # greedy: steered and baseline answers differ only by the steering
    max_new_tokens: int = 320
    batch_size: int = 48  # prompts per forward pass; on CPU a decoding step of 48 costs under twice one of 16
    projections: tuple = ("pca", "umap")  # precomputed when the run finishes (UMAP compiles for ~10 s once)

    @classmethod
    def from_json(cls, values: dict) -> "PipelineSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**values)

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def validate(self, model, prompts: PromptSet) -> None:
        self.target = check_language(self.target)
        if self.contrast != "neutral":
            self.contrast = check_language(self.contrast)
            if self.contrast == self.target:
                raise ValueError("the contrast language must differ from the target")
            prompts.require(self.contrast)
        prompts.require(self.target)
        if self.cluster_mode not in MODES:
            raise ValueError(f"unknown clustering mode {self.cluster_mode!r}; expected one of {', '.join(MODES)}")
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"K must be a positive integer, got {self.k!r}")
        if self.k > len(prompts):
            raise ValueError(f"K={self.k} is larger than the number of tasks ({len(prompts)})")
        model.hook_name(0, self.hook_point)
        for alpha in [*self.sweep_alphas, *(self.steer_alphas or ()), self.neuron_factor]:
            if not math.isfinite(float(alpha)):
                raise ValueError(f"alpha must be a finite number, got {alpha}")
        if self.steer_layers is not None:
            check_layers(self.steer_layers, model.n_layers)
            if self.steer_alphas is not None and len(self.steer_alphas) not in (1, len(self.steer_layers)):
                raise ValueError("give one alpha, or one alpha per steered layer")
        unknown = sorted(set(self.projections) - set(PROJECTIONS))
        if unknown:
            raise ValueError(f"unknown projection(s) {', '.join(unknown)}; expected {', '.join(PROJECTIONS)}")
        if not isinstance(self.bias_samples, int) or self.bias_samples < 1:
            raise ValueError(f"bias_samples must be a positive integer, got {self.bias_samples!r}")
        if self.bias_stop not in STOP_RULES:
            raise ValueError(f"unknown bias_stop {self.bias_stop!r}; expected one of {', '.join(STOP_RULES)}")
        for name in ("max_new_tokens", "off_max_new_tokens", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be between 0 and 1, got {self.val_fraction}")


@dataclass
class Pipeline:
    model: object
    prompts: PromptSet
    run: Run
    settings: PipelineSettings = field(default_factory=PipelineSettings)
    progress: Progress | None = None
    model_ref: str | None = None  # what load_model was given (None: the embedded model), to reopen the run

    @classmethod
    def reopen(cls, run_dir, model, overrides: dict | None = None, progress: Progress | None = None) -> "Pipeline":
        """The pipeline of an existing run, with its prompts and settings (``overrides`` replace
        some settings); ``model`` should be the run's (``run.settings["model_ref"]``)."""
        run = Run(run_dir)
        stored = run.settings
        settings = PipelineSettings.from_json({**stored.get("pipeline", {}), **(overrides or {})})
        return cls(model, run.prompt_set(), run, settings, progress=progress, model_ref=stored.get("model_ref"))

    def __post_init__(self):
        self.settings.validate(self.model, self.prompts)
        record = {"pipeline": self.settings.to_json(), "model": self.model.facts.as_dict(), "model_ref": self.model_ref,
                  "prompt_set": {"name": self.prompts.name, "fingerprint": self.prompts.fingerprint(),
                                 "tasks": len(self.prompts)}}
        stored = self.run.settings
        if any(stored.get(key) != value for key, value in record.items()):  # reopening as it was writes nothing
            self.run.update_settings(**record)
        prompts_file, jsonl = self.run.dir / PROMPTS_FILE, self.prompts.to_jsonl()
        if not prompts_file.is_file() or prompts_file.read_text(encoding="utf-8") != jsonl:
            atomic_write_bytes(prompts_file, jsonl.encode())

    # helpers -----------------------------------------------------------------------------
    def _tick(self, stage: str, total: int):
        done = [0]
        if self.progress is not None:
            self.progress(stage, 0, total)

        def advance(n: int = 1):
            done[0] += n
            if self.progress is not None:
                self.progress(stage, min(done[0], total), total)

        return advance

    def _meta(self, **extra) -> dict:
        s = self.settings
        return {"model": self.model.facts.name, "d_model": self.model.d_model, "n_layers": self.model.n_layers,
                "hook_point": s.hook_point, "position": s.position, "weight_processing": "none", **extra}

    @property
    def neutral_prompts(self) -> list[str]:
        return [t.neutral for t in self.prompts]

    def probe_data(self) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
        """Probe inputs, labels ``[layers, rows]``, the task of each row, and which rows are "off".

        Rows are the neutral activations and paraphrases (labelled with their task's cluster),
        then, for adaptive probes, activations inside target-language answers (labelled K).
        """
        acts, _ = self.run.load("activations")
        labels = self.run.load("clusters")[0]["labels"].numpy()
        names = ["neutral", *sorted(k for k in acts if k.startswith("paraphrase_"))]
        if self.settings.adaptive and "off" in acts:
            names.append("off")
        rows, groups = [], []
        for name in names:
            rows.append(acts[name])
            groups.append(acts[f"index_{name}"].numpy() if f"index_{name}" in acts else np.arange(len(self.prompts)))
        groups = np.concatenate(groups)
        is_off = np.zeros(len(groups), dtype=bool)
        if names[-1] == "off":
            is_off[-len(acts["off"]):] = True
        y = labels[:, groups]
        y[:, is_off] = self.settings.k
        return torch.cat(rows), y, groups, is_off

    def _generation_rows(self, task_ids, condition: str, answers) -> list[dict]:
        return [{"task_id": task_id, "condition": condition, "seed": a.seed, "prompt": a.prompt, "text": a.text,
                 "language": a.detection.language, "confidence": a.detection.confidence,
                 "parses": int(a.detection.parses), "n_tokens": a.n_tokens}
                for task_id, a in zip(task_ids, answers)]

    # stages ------------------------------------------------------------------------------
    def bias(self) -> None:
        """The model's language preference: ``bias_samples`` sampled answers per neutral prompt."""
        s = self.settings
        ids = [t.id for t in self.prompts for _ in range(s.bias_samples)]
        prompts = [t.neutral for t in self.prompts for _ in range(s.bias_samples)]
        advance = self._tick("bias", len(prompts))
        config = GenerationConfig(max_new_tokens=s.max_new_tokens, temperature=s.bias_temperature, seed=s.seed,
                                  batch_size=s.batch_size, stop=s.bias_stop)
        answers = generate(self.model, prompts, config, on_answers=advance)
        self.run.replace_generations("bias", self._generation_rows(ids, "neutral", answers))
        self.run.replace_metrics("bias", [(f"share_{lang}", None, v, None) for lang, v in language_shares(answers).items()]
                                 + [("no_code_block", None, no_code_block_share(answers), None)])

    def extract(self) -> None:
        s = self.settings
        tasks = self.prompts.tasks
        sets = {"neutral": self.neutral_prompts, "target": [t.prompts[s.target] for t in tasks]}
        if s.contrast != "neutral":
            sets["contrast"] = [t.prompts[s.contrast] for t in tasks]
        owners = {}  # the tasks that have a j-th paraphrase
        if s.use_paraphrases:
            most = max((len(t.paraphrases) for t in tasks), default=0)
            for j in range(most):
                owners[f"paraphrase_{j}"] = [i for i, t in enumerate(tasks) if len(t.paraphrases) > j]
                sets[f"paraphrase_{j}"] = [tasks[i].paraphrases[j] for i in owners[f"paraphrase_{j}"]]
        advance = self._tick("extract", sum(len(p) for p in sets.values()) + (2 * len(tasks) if s.adaptive else 0))
        tensors = {
            name: extract_activations(self.model, prompts, hook_point=s.hook_point, position=s.position,
                                      continuation=s.answer_prefix, batch_size=s.batch_size, progress=advance)
            for name, prompts in sets.items()
        }
        tensors.update({f"index_{name}": torch.tensor(index) for name, index in owners.items()})
        if s.adaptive:
            tensors.update(self._off_samples(advance))
        base = tensors["contrast" if s.contrast != "neutral" else "neutral"]
        deltas = tensors["target"] - base
        self.run.save("activations", tensors, **self._meta(kind="activations"))
        self.run.save("deltas", {"deltas": deltas, "mean_vectors": deltas.mean(dim=0)},
                      **self._meta(kind="differences", target=s.target, contrast=s.contrast))

    def _off_samples(self, advance) -> dict[str, torch.Tensor]:
        """Activations where steering should stay off: inside the model's own target-language
        answers (to the explicit prompts), read after the neutral prompts, as a steered answer
        would be."""
        s = self.settings
        tasks = self.prompts.tasks
        # Forced to open with the answer prefix: instruct models otherwise spend the first tokens on prose.
        config = GenerationConfig(max_new_tokens=min(s.off_max_new_tokens, s.max_new_tokens), batch_size=s.batch_size,
                                  start=s.answer_prefix)
        answers = generate(self.model, [t.prompts[s.target] for t in tasks], config, on_answers=advance)
        kept = [i for i, a in enumerate(answers) if a.detection.language == s.target]
        kept = kept or [i for i, a in enumerate(answers) if a.text.strip()]  # a model that cannot: its best attempts
        self.run.replace_generations("target_answers", self._generation_rows([t.id for t in tasks], "explicit", answers))
        advance(len(tasks))
        if not kept:
            self.run.update_settings(notes=["the model's explicit answers were all empty: probes have no 'off' class"])
            return {}
        off = extract_activations(self.model, [tasks[i].neutral for i in kept], hook_point=s.hook_point,
                                  position="answer", continuation=[answers[i].text for i in kept],
                                  per_answer=s.off_per_answer, batch_size=s.batch_size)
        return {"off": off, "index_off": torch.tensor(kept).repeat_interleave(s.off_per_answer)}

    def cluster(self) -> None:
        s = self.settings
        tensors, _ = self.run.load("deltas")
        deltas = tensors["deltas"]
        advance = self._tick("cluster", 2)
        fitted = SteeringClusters(s.k, mode=s.cluster_mode, random_state=s.seed).fit(deltas)
        advance()
        sweep = k_sweep(deltas, range(2, min(8, len(self.prompts)) + 1), mode=s.cluster_mode, random_state=s.seed)
        advance()
        self.run.save("clusters", {"labels": torch.as_tensor(fitted.labels_), "vectors": fitted.vectors_,
                                   "silhouette": torch.as_tensor(fitted.silhouette_)},
                      **self._meta(kind="clusters", k=s.k, mode=s.cluster_mode, target=s.target))
        rows = [("silhouette", layer, v, None) for layer, v in enumerate(fitted.silhouette_)]
        rows += [("k_sweep_silhouette", None, v["silhouette"], {"k": k}) for k, v in sweep.items()]
        rows += [("k_sweep_inertia", None, v["inertia"], {"k": k}) for k, v in sweep.items()]
        self.run.replace_metrics("cluster", rows)

    def _accuracy_rows(self, name: str, probe, X, y, is_off) -> list[tuple]:
        """Per-layer accuracy metrics: on the cluster task (neutral prompts, the paper's
        figure) and, for adaptive probes, on the held-out "off" samples."""
        train, val = probe.split_scores(X, y, ~is_off)
        rows = [(f"{name}_{split}_accuracy", layer, float(v), None)
                for split, values in (("train", train), ("val", val)) for layer, v in enumerate(values)]
        if is_off.any():
            rows += [(f"{name}_off_val_accuracy", layer, float(v), None)
                     for layer, v in enumerate(probe.split_scores(X, y, is_off)[1])]
        return rows

    def probe(self) -> None:
        s = self.settings
        X, y, groups, is_off = self.probe_data()
        n_classes = s.k + int(is_off.any())
        advance = self._tick("probe", 2)
        gact = GactProbe(n_classes, lr=s.probe_lr, weight_decay=s.probe_weight_decay, epochs=s.probe_epochs,
                         val_fraction=s.val_fraction, random_state=s.seed).fit(X, y, groups=groups)
        advance()
        act = ActProbe(n_classes, C=s.act_C, val_fraction=s.val_fraction, random_state=s.seed).fit(X, y, groups=groups)
        advance()
        for name, probe in (("probe_gact", gact), ("probe_act", act)):
            self.run.save(name, probe.state_tensors(), **self._meta(kind="probe", method=name.split("_")[1], k=s.k))
        self.run.replace_metrics("probe", self._accuracy_rows("gact", gact, X, y, is_off)
                                 + self._accuracy_rows("act", act, X, y, is_off))
        n = len(self.prompts)  # the first rows are the neutral prompts, in task order: report those
        self.run.replace_metrics("probe_report", [
            (f"{name}_prediction", r["layer"], r["confidence"], r)
            for name, probe in (("gact", gact), ("act", act)) for r in probe.report(X[:n], y[:, :n], self.prompts.ids)
        ])

    # learned state ---------------------------------------------------------------------------
    def load_probe(self, method: str, refined: bool = False):
        name = "probe_gact_refined" if refined and self.run.has("probe_gact_refined") else f"probe_{method}"
        tensors, _ = self.run.load(name)
        cls = GactProbe if method == "gact" else ActProbe
        return cls.from_state_tensors(tensors)

    def steerer(self, spec: SteeringSpec, refined: bool = True) -> Steerer:
        deltas, _ = self.run.load("deltas")
        kwargs: dict = {"mean_vectors": deltas["mean_vectors"]}
        if spec.method in ("act", "gact"):
            kwargs["vectors"] = self.run.load("clusters")[0]["vectors"]
            kwargs["probe"] = self.load_probe(spec.method, refined=refined and spec.method == "gact")
        if spec.method == "neuron":
            kwargs["neurons"] = {
                layer: attribute_neurons(self.model, self.settings.target, layers=[layer], top_n=1)[0].neuron
                for layer in spec.layers
            }
        return Steerer(spec, **kwargs)

    def chosen_spec(self, method: str = "gact") -> SteeringSpec:
        s = self.settings
        layers, alphas = s.steer_layers, s.steer_alphas
        if layers is None:
            chosen = self.run.settings.get("chosen")
            if chosen is None:
                raise ValueError("no layers chosen yet: run the sweep stage, or give --layers")
            layers, alphas = chosen["layers"], alphas or chosen["alphas"]
        if method == "neuron" and s.steer_alphas is None:
            alphas = (s.neuron_factor,)
        alphas = alphas or (1.0,)
        if len(alphas) == 1:
            alphas = tuple(alphas) * len(layers)
        return SteeringSpec(tuple(layers), tuple(alphas), method=method, hook_point=s.hook_point)

    def sweep(self) -> None:
        """Single-layer success for every layer and alpha; then the best layers together, at the
        common scale of their alphas that steers best (or the best layer alone, if that is better)."""
        s = self.settings
        layers = list(range(self.model.n_layers))
        advance = self._tick("sweep", len(layers) * len(s.sweep_alphas) + len(COMBINE_SCALES))

        # The learned state (vectors, probe), read once; each cell only changes the spec.
        base = self.steerer(SteeringSpec((0,), (1.0,), "gact", hook_point=s.hook_point), refined=False)

        def make(chosen, alphas):
            return replace(base, spec=SteeringSpec(tuple(chosen), tuple(alphas), "gact", hook_point=s.hook_point))

        grid, batches = layer_alpha_sweep(self.model, self.neutral_prompts, lambda layer, alpha: make([layer], [alpha]),
                                          layers, s.sweep_alphas, s.target, advance)
        chosen_layers, chosen_alphas = best_layers(grid, layers, s.sweep_alphas, n=s.n_best_layers)
        combined = {}
        if len(chosen_layers) > 1:
            combined = scale_sweep(batches, make, chosen_layers, chosen_alphas, s.target, COMBINE_SCALES)
            scale = min(combined, key=lambda c: (-combined[c], c))
            if combined[scale] >= grid.max():
                chosen_alphas = [a * scale for a in chosen_alphas]
            else:
                chosen_layers, chosen_alphas = best_layers(grid, layers, s.sweep_alphas, n=1)
        advance(len(COMBINE_SCALES))
        self.run.replace_metrics("sweep", [
            ("success", layer, grid[i, j], {"alpha": float(a)}) for i, layer in enumerate(layers)
            for j, a in enumerate(s.sweep_alphas)
        ] + [("combined_success", None, v, {"scale": c}) for c, v in combined.items()])
        self.run.update_settings(chosen={"layers": chosen_layers, "alphas": chosen_alphas})

    def refine(self) -> None:
        s = self.settings
        spec = self.chosen_spec("gact")
        steerer = self.steerer(spec, refined=False)
        X, y, groups, is_off = self.probe_data()
        train_tasks = sorted(set(groups[steerer.probe.train_idx_].tolist()))
        val_tasks = sorted(set(range(len(self.prompts))) - set(train_tasks))
        steps = s.refine_steps * (len(train_tasks) if s.refine_online else 1)
        advance = self._tick("refine", steps + 4)
        train_prefix = PromptPrefix(self.model, [self.prompts.tasks[i].neutral for i in train_tasks])
        runs = {"train": [train_prefix]}
        if val_tasks:
            runs["val"] = prefixes(self.model, [self.prompts.tasks[i].neutral for i in val_tasks])

        def success(probe):
            live = replace(steerer, probe=probe)
            return {split: tag_success(runs[split], s.target, live) if split in runs else float("nan")
                    for split in ("train", "val")}

        before = success(steerer.probe)
        advance(2)
        refined, losses = refine_probe(steerer, train_prefix, s.target, steps=s.refine_steps, lr=s.refine_lr,
                                       prox=s.refine_prox, online=s.refine_online, seed=s.seed, progress=advance)
        after = success(refined)
        advance(2)
        refined.train_accuracy_, refined.val_accuracy_ = refined.split_scores(X, y)
        self.run.save("probe_gact_refined", refined.state_tensors(), **self._meta(kind="probe", method="gact_refined", k=s.k))
        rows = [("loss", step, loss, None) for step, loss in enumerate(losses)]
        rows += [(f"success_{when}_{split}", None, value, None)
                 for when, values in (("before", before), ("after", after)) for split, value in values.items()]
        rows += self._accuracy_rows("refined", refined, X, y, is_off)
        self.run.replace_metrics("refine", rows)

    def evaluate(self, method: str = "gact") -> dict:
        s = self.settings
        spec = self.chosen_spec(method)
        steerer = self.steerer(spec)
        prompts = [t.neutral for t in self.prompts for _ in range(s.eval_samples)]
        ids = [t.id for t in self.prompts for _ in range(s.eval_samples)]
        advance = self._tick("eval", 2 * len(prompts))
        result = evaluate_steering(self.model, prompts, steerer, s.target, temperature=s.eval_temperature,
                                   seed=s.seed, max_new_tokens=s.max_new_tokens, batch_size=s.batch_size,
                                   on_answers=advance)
        rows = []
        for condition in ("baseline", "steered"):
            summary = result[condition]
            rows += [(f"{condition}_share_{lang}", None, v, None) for lang, v in summary["shares"].items()]
            rows += [(f"{condition}_{k}", None, summary[k], None)
                     for k in ("success", "syntax_valid", "no_code_block", "repeated_ngrams")]
        self.run.replace_metrics(f"eval_{method}", rows)
        self.run.replace_generations(f"eval_{method}", [
            row for condition in ("baseline", "steered")
            for row in self._generation_rows(ids, condition, result["answers"][condition])
        ])
        self.run.update_settings(evaluated={**self.run.settings.get("evaluated", {}), method: spec.to_json()})
        return result

    def project(self) -> None:
        """Precompute the 2-D projections of the differences the dashboard opens with."""
        advance = self._tick("project", len(self.settings.projections))
        for method in self.settings.projections:
            run_projection(self.run, method, dims=2, seed=self.settings.seed)
            advance()

    def run_stage(self, stage: str, method: str = "gact"):
        """Run one stage (``method``: the steering method, for ``eval``), with torch's thread count
        re-read from the cores free now, and record how long it took (``stage_seconds``)."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        threads = configure_threads()
        started = time.perf_counter()
        out = self.evaluate(method) if stage == "eval" else getattr(self, stage)()
        label = f"eval_{method}" if stage == "eval" else stage
        self.run.replace_metrics(f"time_{label}", [("seconds", None, time.perf_counter() - started, {"threads": threads})])
        return out

    def stage_seconds(self) -> dict[str, float]:
        """Seconds each recorded stage took, in the order they last ran."""
        return {m["stage"].removeprefix("time_"): m["value"] for m in self.run.metrics() if m["stage"].startswith("time_")}

    def run_all(self, stages=STAGES) -> dict | None:
        result = None
        for stage in stages:
            out = self.run_stage(stage)
            result = out if stage == "eval" else result
        return result
