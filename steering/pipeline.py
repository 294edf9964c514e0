"""The whole G-ACT pipeline, stage by stage, each stage reading the previous ones from the run
directory: bias -> extract -> cluster -> probe -> act -> sweep -> refine -> eval -> project.

Settings are checked against the model and the prompt set before anything runs or is written,
so bad input costs nothing. ``progress(stage, done, total)`` reports long work.

A run keeps the settings, model and prompt set it was started with: a pipeline with other ones
is refused (or, with ``overwrite``, clears the run first), and one-off settings given when
reopening a run (``reopen(..., one_off=)``) apply to ``eval`` and ``steer`` in this session only
and are never stored. Each stage writes under the run's lock and is recorded as done, with the
inputs it came from, only after its files are written.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable

import numpy as np
import torch

from .act import ActSteerer, AdaptiveActivationSteering
from .activations import extract_activations
from .clustering import MODES, SteeringClusters, k_sweep
from .evaluation import (assigned_cluster_success, best_layers, compare_answers,
                         language_shares, layer_alpha_sweep, no_code_block_share, scale_sweep)
from .generation import STOP_RULES, Generation, GenerationConfig, format_prompt, generate
from .languages import LANGUAGE_KEYS, check_language
from .models import check_layers
from .neurons import NEURON_SCORINGS, active_neurons, attribute_neurons
from .probes import GactProbe, SklearnProbe
from .prefix import PromptPrefix, prefixes, tag_success
from .projection import PROJECTIONS, run_projection
from .progress import heartbeat
from .prompts import PromptSet
from .refine import online_answers, refine_steering
from .schema import (ACT, ACTIVATIONS, CHOSEN_ALPHA, CLUSTERS, DELTAS, PROMPT_SETS, REFINED, SPEC, STAGES,
                     TARGET_ANSWERS, baseline_stage, eval_stage, later_stages, notes_stage, probe_tensors)
from .stats import bootstrap_interval, majority_accuracy
from .steer import SELECTIONS, GactSteerer, MeanDiffSteerer, NeuronSteerer, SteeringSpec
from .storage import Run, StorageError, record_inputs
from .threads import configure_threads

Progress = Callable[[str, int, int], None]
COMBINE_SCALES = (0.5, 0.75, 1.0)  # common scales tried for the chosen layers' alphas together
# What ``eval`` can compare: the steering methods, and G-ACT without refinement or refined online.
EVAL_METHODS = ("mean_diff", "act", "gact", "gact_unrefined", "gact_online", "neuron")


def _json(value):
    return list(value) if isinstance(value, tuple) else value


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
    answer_prefix: str = "```"  # ablation "reading at the fence": read where the answer opens ("": at the prompt's end)
    adaptive: bool = True  # ablation "off class": probes learn to leave target-language answers alone
    off_per_answer: int = 4  # "off" samples read inside each target-language answer
    off_max_new_tokens: int = 64  # the answers they are read in stop after this many tokens (or max_new_tokens)
    k: int = 3
    cluster_mode: str = "concat"  # one labelling for all layers, so layers compare ("per_layer": k-means per layer)
    val_fraction: float = 0.25
    seed: int = 0
    probe_paraphrases: int = 1  # per task, paraphrases used as probe samples; the rest are held out from every stage
    probe_lr: float = 0.05
    probe_weight_decay: float = 1e-2
    probe_epochs: int = 1000
    selection: str = "soft"  # ablation: "soft" mixes the cluster vectors by probe probability, "argmax" takes the top one
    sklearn_C: float = 1.0  # the G-ACT probe refitted with scikit-learn's LogisticRegression (an ablation)
    act_clusters: int = 3  # ACT: k-means clusters of per-question directions (3 in the paper's full setting)
    act_heads: int = 24  # ACT: heads kept per cluster, by validation accuracy
    act_alpha: float | None = None  # ACT: strength in units of each head's projected std; None: ACT_ALPHAS's best
    act_alphas: tuple = (1.0, 2.0, 4.0, 8.0, 12.0, 15.0)  # ACT's strengths tried (12-15 is the paper's range)
    act_beta: float = 0.0  # ACT: floor of the adaptive factor (1 + beta - p)
    act_C: float = 1.0  # ACT: inverse regularisation of its per-head logistic regressions
    sweep_alphas: tuple = (0.25, 0.5, 0.75, 1.0)
    steer_layers: tuple | None = None  # None: the best layers from the sweep
    steer_alphas: tuple | None = None  # None: each chosen layer's alpha from the sweep
    n_best_layers: int = 2
    neuron_factor: float = 10.0  # the "neuron" method scales the attributed neuron by this, not by alpha
    neuron_scoring: str = "paper"  # "paper" (W_up * sigmoid(W_gate) via the LM head), "output" (W_out rows), "activation"
    refine_steps: int = 30
    refine_lr: float = 0.05
    refine_prox: float = 0.1
    refine_fluency: float = 1.0  # weight of the KL to the unsteered next-token distribution inside the code
    refine_gains: bool = True  # learn a per-layer gain on alpha
    refine_offsets: bool = False  # learn per-cluster offsets of the steering vectors
    refine_online: bool = False  # the refine stage steps one prompt at a time, in order
    online_steps: int = 3  # method "gact_online": refinement steps per prompt, during generation
    eval_samples: int = 1
    eval_temperature: float = 0.0  # greedy: steered and baseline answers differ only by the steering
    eval_sets: tuple = ("neutral", "heldout")  # what the run's eval stage answers
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

    def _check_lengths(self, model, prompts: PromptSet) -> None:
        """Every prompt (neutral, explicit, paraphrase), formatted and with the answer's opening,
        must leave room in the model's context: found now, not mid-run after writing."""
        tok = model.tokenizer
        opening = len(tok(self.answer_prefix, add_special_tokens=False)["input_ids"]) if self.answer_prefix else 0
        for task in prompts:
            for text in (task.neutral, *task.prompts.values(), *task.paraphrases):
                n = len(tok(format_prompt(tok, text, model.instruction), add_special_tokens=False)["input_ids"]) + opening
                if n >= model.facts.n_ctx:
                    raise ValueError(f"task {task.id!r} has a prompt of {n} tokens (formatted, with the answer's "
                                     f"opening); this model's context is {model.facts.n_ctx} tokens")

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
        if not (math.isfinite(float(self.eval_temperature)) and self.eval_temperature >= 0):
            raise ValueError(f"eval_temperature must be 0 (greedy) or more, got {self.eval_temperature}")
        for name in ("max_new_tokens", "off_max_new_tokens", "batch_size", "eval_samples"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be between 0 and 1, got {self.val_fraction}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; expected one of {', '.join(SELECTIONS)}")
        if self.neuron_scoring not in NEURON_SCORINGS:
            raise ValueError(f"unknown neuron_scoring {self.neuron_scoring!r}; expected one of {', '.join(NEURON_SCORINGS)}")
        unknown = sorted(set(self.eval_sets) - set(PROMPT_SETS))
        if unknown:
            raise ValueError(f"unknown prompt set(s) {', '.join(unknown)}; expected {', '.join(PROMPT_SETS)}")
        self._check_lengths(model, prompts)
        for name in ("probe_paraphrases", "act_clusters", "act_heads", "online_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {getattr(self, name)!r}")


@dataclass
class Pipeline:
    model: object
    prompts: PromptSet
    run: Run
    settings: PipelineSettings = field(default_factory=PipelineSettings)
    progress: Progress | None = None
    model_ref: str | None = None  # what load_model was given (None: the embedded model), to reopen the run
    overwrite: bool = False  # a run made with other settings, model or prompts is cleared at the first write
    one_off: dict = field(default_factory=dict)  # settings for this session's eval/steer only; never stored

    @classmethod
    def reopen(cls, run_dir, model, one_off: dict | None = None, progress: Progress | None = None) -> "Pipeline":
        """The pipeline of an existing run, with its prompts and settings; ``one_off`` settings
        change this session's ``eval`` and ``steer`` (whose results are then not stored) and
        nothing else. ``model`` should be the run's (``run.settings["model_ref"]``)."""
        run = Run(run_dir)
        stored = run.settings
        settings = PipelineSettings.from_json(stored.get("pipeline", {}))
        return cls(model, run.prompt_set(), run, settings, progress=progress, model_ref=stored.get("model_ref"),
                   one_off=dict(one_off or {}))

    def __post_init__(self):
        self.settings.validate(self.model, self.prompts)
        self._stage_notes: list[str] = []
        self._shown: tuple | None = None
        self.record = {"pipeline": self.settings.to_json(), "model": self.model.facts.as_dict(),
                       "model_fingerprint": self.model.fingerprint, "model_ref": self.model_ref,
                       "prompt_set": {"name": self.prompts.name, "fingerprint": self.prompts.fingerprint(),
                                      "tasks": len(self.prompts)}}
        if not self.overwrite:
            self._check_matches_run()
        one_off = {k: v for k, v in self.one_off.items() if self.settings.to_json().get(k) != _json(v)}
        if one_off:
            self.settings = PipelineSettings.from_json({**self.settings.to_json(), **one_off})
            self.settings.validate(self.model, self.prompts)
        self.one_off = one_off

    def _check_matches_run(self) -> None:
        """A run keeps what it was started with: other settings, another model or other prompts
        are an error naming the differences, not a silent mix."""
        stored = self.run.settings
        if not stored:
            return
        was = {**PipelineSettings().to_json(), **stored.get("pipeline", {})}  # settings added since: defaults
        now = self.record["pipeline"]
        differences = [f"{k} {was.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)]
        if stored.get("model_fingerprint", self.model.fingerprint) != self.model.fingerprint:
            differences.append(f"model {stored.get('model', {}).get('name')!r} -> {self.model.facts.name!r} (other weights)")
        if stored.get("prompt_set", {}).get("fingerprint") != self.record["prompt_set"]["fingerprint"]:
            differences.append("another prompt set")
        if differences:
            raise StorageError(f"run {self.run.dir.name!r} was made with other inputs ({'; '.join(differences)}): "
                               "start a new run, or overwrite this one (--overwrite)")

    @property
    def inputs(self) -> str:
        """The hash of what every stage's results come from: settings, model weights, prompts
        (as the run stored them, once it has)."""
        return record_inputs(self.run.settings or self.record)

    def _start_writing(self) -> None:
        """At a write, under the lock: clear the run if overwriting, and store what it is made of."""
        if self.overwrite:
            self.run.clear()
            self.overwrite = False
        self._check_matches_run()  # again under the lock: another writer may have started the run
        if not self.run.settings:
            self.run.write_settings(self.record)
        elif isinstance(self.run, Run) and self.run.predates_stage_records():
            self._adopt_earlier_results()
        self.run.write_prompts(self.prompts.to_jsonl())

    def _adopt_earlier_results(self) -> None:
        """A run from before stage records: record the stages whose results it has, once, so a
        new stage written into it does not hide the earlier ones."""
        from .results import RunResults

        inputs = self.inputs
        for stage in RunResults(self.run.dir).legacy_stages():
            self.run.record_stage(stage, inputs, 0.0, 0)

    # helpers -----------------------------------------------------------------------------
    def _tick(self, stage: str, total: int):
        done = [0]
        self._shown = (stage, 0, total)  # what the heartbeat repeats between units of work
        if self.progress is not None:
            self.progress(stage, 0, total)

        def advance(n: int = 1):
            done[0] += n
            self._shown = (stage, min(done[0], total), total)
            if self.progress is not None:
                self.progress(*self._shown)

        return advance

    def _meta(self, **extra) -> dict:
        s = self.settings
        return {"model": self.model.facts.name, "d_model": self.model.d_model, "n_layers": self.model.n_layers,
                "hook_point": s.hook_point, "position": s.position, "weight_processing": "none", **extra}

    @property
    def neutral_prompts(self) -> list[str]:
        return [t.neutral for t in self.prompts]

    def eval_prompts(self, prompt_set: str = "neutral") -> tuple[list[str], list[str]]:
        """``(task ids, prompts)`` of a prompt set: the neutral prompts, or every paraphrase past
        the first ``probe_paraphrases`` of each task (no stage fits on them)."""
        if prompt_set not in PROMPT_SETS:
            raise ValueError(f"unknown prompt set {prompt_set!r}; expected one of {', '.join(PROMPT_SETS)}")
        if prompt_set == "neutral":
            return [t.id for t in self.prompts], self.neutral_prompts
        pairs = [(t.id, p) for t in self.prompts for p in t.paraphrases[self.settings.probe_paraphrases:]]
        if not pairs:
            raise ValueError(f"no held-out phrasings: every task has at most {self.settings.probe_paraphrases} "
                             "paraphrase(s), and those train the probes (lower probe_paraphrases)")
        return [i for i, _ in pairs], [p for _, p in pairs]

    def probe_data(self) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
        """Probe inputs, labels ``[layers, rows]``, the task of each row, and which rows are "off".

        Rows are the neutral activations and paraphrases (labelled with their task's cluster),
        then, for adaptive probes, activations inside target-language answers (labelled K).
        """
        acts, _ = self.run.load(ACTIVATIONS)
        labels = self.run.load(CLUSTERS)[0]["labels"].numpy()
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

    def _note(self, text: str) -> None:
        """Keep a remark about what the running stage could not do (stored with its results)."""
        if text not in self._stage_notes:
            self._stage_notes.append(text)

    def notes(self, stage: str) -> list[str]:
        return [m["extra"]["text"] for m in self.run.metrics(notes_stage(stage))]

    def _stored_answers(self, stage: str) -> list[Generation]:
        """The answers a stage stored, in order, as generated (detection is recomputed)."""
        return [Generation(r["prompt"], r["text"], r["n_tokens"], r["seed"]) for r in self.run.generations(stage)]

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
        if s.probe_paraphrases:
            most = min(s.probe_paraphrases, max((len(t.paraphrases) for t in tasks), default=0))
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
        self.run.save(ACTIVATIONS, tensors, **self._meta(kind="activations"))
        self.run.save(DELTAS, {"deltas": deltas, "mean_vectors": deltas.mean(dim=0)},
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
        self.run.replace_generations(TARGET_ANSWERS, self._generation_rows([t.id for t in tasks], "explicit", answers))
        advance(len(tasks))
        if not kept:
            self._note("the model's explicit answers were all empty: probes have no 'off' class")
            return {}
        off = extract_activations(self.model, [tasks[i].neutral for i in kept], hook_point=s.hook_point,
                                  position="answer", continuation=[answers[i].text for i in kept],
                                  per_answer=s.off_per_answer, batch_size=s.batch_size)
        return {"off": off, "index_off": torch.tensor(kept).repeat_interleave(s.off_per_answer)}

    def cluster(self) -> None:
        s = self.settings
        tensors, _ = self.run.load(DELTAS)
        deltas = tensors["deltas"]
        advance = self._tick("cluster", 2)
        fitted = SteeringClusters(s.k, mode=s.cluster_mode, random_state=s.seed).fit(deltas)
        advance()
        sweep = k_sweep(deltas, range(2, min(8, len(self.prompts)) + 1), mode=s.cluster_mode, random_state=s.seed)
        advance()
        self.run.save(CLUSTERS, {"labels": torch.as_tensor(fitted.labels_), "vectors": fitted.vectors_,
                                   "silhouette": torch.as_tensor(fitted.silhouette_)},
                      **self._meta(kind="clusters", k=s.k, mode=s.cluster_mode, target=s.target))
        rows = [("silhouette", layer, v, None) for layer, v in enumerate(fitted.silhouette_)]
        rows += [("k_sweep_silhouette", None, v["silhouette"], {"k": k}) for k, v in sweep.items()]
        rows += [("k_sweep_inertia", None, v["inertia"], {"k": k}) for k, v in sweep.items()]
        self.run.replace_metrics("cluster", rows)

    def _accuracy_rows(self, name: str, probe, X, y, groups, is_off) -> list[tuple]:
        """Per-layer accuracy metrics: on the cluster task (prompts, not "off" rows), with a
        task-resampled bootstrap interval for validation, and, for adaptive probes, on the
        held-out "off" samples."""
        train, val = probe.split_scores(X, y, ~is_off)
        rows = [(f"{name}_{split}_accuracy", layer, float(v), None)
                for split, values in (("train", train), ("val", val)) for layer, v in enumerate(values)]
        val_rows = probe.val_idx_[~is_off[probe.val_idx_]]
        if len(val_rows):
            correct = probe.predict(X[val_rows]) == y[:, val_rows]
            for layer in range(X.shape[1]):
                low, high = bootstrap_interval(correct[layer], groups[val_rows], seed=self.settings.seed)
                rows.append((f"{name}_val_ci", layer, float(val[layer]), {"low": low, "high": high}))
        if is_off.any():
            rows += [(f"{name}_off_val_accuracy", layer, float(v), None)
                     for layer, v in enumerate(probe.split_scores(X, y, is_off)[1])]
        return rows

    def _baseline_rows(self, probe, X, y, is_off, n_classes: int) -> list[tuple]:
        """What a probe must beat, per layer: the majority class of the training rows, and the
        same probe trained on shuffled labels (validation accuracy on the cluster task)."""
        s = self.settings
        train, val = probe.train_idx_[~is_off[probe.train_idx_]], probe.val_idx_[~is_off[probe.val_idx_]]
        rows = [("majority_val_accuracy", layer, majority_accuracy(y[layer, train], y[layer, val]), None)
                for layer in range(X.shape[1])]
        shuffled = y.copy()  # cluster labels permuted among the training prompts ("off" rows keep theirs)
        rng = np.random.default_rng(s.seed)
        for layer in range(X.shape[1]):
            shuffled[layer, train] = rng.permutation(y[layer, train])
        control = GactProbe(n_classes, lr=s.probe_lr, weight_decay=s.probe_weight_decay, epochs=s.probe_epochs,
                            val_fraction=s.val_fraction, random_state=s.seed)
        control.fit(X, shuffled, split=(probe.train_idx_, probe.val_idx_))
        _, val_scores = control.split_scores(X, y, ~is_off)
        rows += [("shuffled_val_accuracy", layer, float(v), None) for layer, v in enumerate(val_scores)]
        return rows

    def probe(self) -> None:
        s = self.settings
        X, y, groups, is_off = self.probe_data()
        n_classes = s.k + int(is_off.any())
        advance = self._tick("probe", 3)
        gact = GactProbe(n_classes, lr=s.probe_lr, weight_decay=s.probe_weight_decay, epochs=s.probe_epochs,
                         val_fraction=s.val_fraction, random_state=s.seed).fit(X, y, groups=groups)
        advance()
        sklearn = SklearnProbe(n_classes, C=s.sklearn_C, val_fraction=s.val_fraction, random_state=s.seed).fit(X, y, groups=groups)
        advance()
        for name, probe in ((probe_tensors("gact"), gact), (probe_tensors("sklearn"), sklearn)):
            self.run.save(name, probe.state_tensors(), **self._meta(kind="probe", method=name.split("_")[1], k=s.k))
        rows = self._accuracy_rows("gact", gact, X, y, groups, is_off) + self._accuracy_rows("sklearn", sklearn, X, y, groups, is_off)
        rows += self._baseline_rows(gact, X, y, is_off, n_classes)
        advance()
        self.run.replace_metrics("probe", rows)
        n = len(self.prompts)  # the first rows are the neutral prompts, in task order: report those
        self.run.replace_metrics("probe_report", [
            (f"{name}_prediction", r["layer"], r["confidence"], r)
            for name, probe in (("gact", gact), ("sklearn", sklearn)) for r in probe.report(X[:n], y[:, :n], self.prompts.ids)
        ])

    def act(self) -> None:
        """Faithful ACT (``steering.act``): the model's own answers to the explicit prompts, in the
        target language (good) and in the others (bad), read per head at their last token after
        the neutral prompt; per-head probes, head selection and their accuracies."""
        s = self.settings
        tasks = self.prompts.tasks
        languages = [lang for lang in LANGUAGE_KEYS if all(lang in t.prompts for t in tasks)]
        advance = self._tick("act", len(tasks) * len(languages) * 2 + 1 + len(s.act_alphas))
        config = GenerationConfig(max_new_tokens=min(s.off_max_new_tokens, s.max_new_tokens), batch_size=s.batch_size,
                                  start=s.answer_prefix)
        rows = []  # (task index, answer text, good)
        for lang in languages:
            # The target's answers were generated the same way for the "off" samples: read them back.
            answers = self._stored_answers("target_answers") if lang == s.target and s.adaptive else []
            if len(answers) == len(tasks):
                advance(len(tasks))
            else:
                answers = generate(self.model, [t.prompts[lang] for t in tasks], config, on_answers=advance)
            for i, a in enumerate(answers):
                detected = a.detection.language
                if detected is not None and a.text.strip() and (detected == s.target) == (lang == s.target):
                    rows.append((i, a.text, lang == s.target))
        task_index = np.array([i for i, _, _ in rows])
        good = np.array([g for _, _, g in rows], dtype=bool)
        counts = [("answers_good", None, float(good.sum()), None), ("answers_bad", None, float((~good).sum()), None)]
        paired = set(task_index[good].tolist()) & set(task_index[~good].tolist())
        if len(paired) < s.act_clusters:
            # A model that cannot answer in the languages asked leaves ACT nothing to learn from:
            # the run goes on, and evaluating ACT says why it cannot.
            self.run.replace_metrics("act", counts)
            self._note(f"ACT not fitted: {len(paired)} task(s) have an answer in the target language and one in "
                       f"another; it needs {s.act_clusters}")
            advance(len(rows) + 1 + len(s.act_alphas))
            return
        read = dict(prompts=[tasks[i].neutral for i, _, _ in rows], continuation=[text for _, text, _ in rows],
                    position="last", batch_size=s.batch_size)
        z = extract_activations(self.model, hook_point="attn_z", **read)
        advance(len(rows))
        act = AdaptiveActivationSteering(s.act_clusters, s.act_heads, C=s.act_C, random_state=s.seed).fit(z, good, task_index, self.model.facts.n_heads)
        tensors = {f"act_{k}": v for k, v in act.state_tensors().items()}
        if s.neuron_scoring == "activation":
            mlp = extract_activations(self.model, hook_point="mlp_post", **read)
            tensors.update(mlp_good_mean=mlp[good].mean(0), mlp_bad_mean=mlp[~good].mean(0))
        self.run.save(ACT, tensors, **self._meta(kind="act", target=s.target, hook="attn.hook_z"))
        advance()
        # ACT's strength, tried like G-ACT's alphas are in the sweep (fenced tag, greedy), so neither
        # method is compared at a strength that suits only the other.
        batches = prefixes(self.model, self.neutral_prompts)
        tried = {}
        for alpha in s.act_alphas:
            spec = SteeringSpec.uniform(act.layers_, alpha, method="act", hook_point=s.hook_point)
            tried[float(alpha)] = tag_success(batches, s.target, ActSteerer(spec, act, beta=s.act_beta))
            advance()
        chosen = s.act_alpha if s.act_alpha is not None else min(tried, key=lambda a: (-tried[a], a))
        best = act.best_head_accuracy()
        metrics = [*counts, (CHOSEN_ALPHA, None, float(chosen), None)]
        metrics += [("alpha_success", None, v, {"alpha": a}) for a, v in tried.items()]
        for layer in range(self.model.n_layers):
            c, h = np.unravel_index(np.nanargmax(np.nan_to_num(act.val_accuracy_[:, layer], nan=-1)),
                                    act.val_accuracy_[:, layer].shape)
            correct, groups = act.val_correct_.get((int(c), layer, int(h)), (np.array([]), np.array([])))
            low, high = bootstrap_interval(correct, groups, seed=s.seed)
            metrics.append(("best_head_val_accuracy", layer, float(best[layer]),
                            {"cluster": int(c), "head": int(h), "low": low, "high": high, "n_val": int(len(correct))}))
            metrics.append(("kept_heads", layer, float((act.kept_[:, 1] == layer).sum()), None))
        self.run.replace_metrics("act", metrics)

    # learned state ---------------------------------------------------------------------------
    def load_probe(self, method: str = "gact"):
        """The fitted probe, ``gact`` or ``sklearn`` (the ablation); G-ACT's refined state is read
        by ``steerer``, with the gains learned alongside it."""
        tensors, _ = self.run.load(probe_tensors(method))
        cls = SklearnProbe if method == "sklearn" else GactProbe
        return cls.from_state_tensors(tensors)

    def load_act(self) -> AdaptiveActivationSteering:
        if not self.run.has(ACT):
            notes = self.notes("act")
            raise ValueError(notes[0] if notes else "ACT is not fitted in this run: run the 'act' stage first")
        tensors, _ = self.run.load(ACT)
        state = {k.removeprefix("act_"): v for k, v in tensors.items() if k.startswith("act_")}
        return AdaptiveActivationSteering.from_state_tensors(state)

    def _neurons(self, layers) -> dict[int, int]:
        s = self.settings
        if s.neuron_scoring == "activation":
            tensors, _ = self.run.load(ACT)
            if "mlp_good_mean" not in tensors:
                raise ValueError("no neuron activations in this run: run the 'act' stage with neuron_scoring 'activation'")
            good, bad = tensors["mlp_good_mean"][None], tensors["mlp_bad_mean"][None]
            return {layer: active_neurons(good, bad, layers=[layer], top_n=1)[0].neuron for layer in layers}
        return {layer: attribute_neurons(self.model, s.target, layers=[layer], scoring=s.neuron_scoring, top_n=1)[0].neuron
                for layer in layers}

    def steerer(self, spec: SteeringSpec, refined: bool = True):
        """The steerer of ``spec`` from this run's learned state (G-ACT: refined when ``refined``
        and the refine stage ran)."""
        return {"act": lambda: ActSteerer(spec, self.load_act(), beta=self.settings.act_beta),
                "neuron": lambda: NeuronSteerer(spec, self._neurons(spec.layers)),
                "mean_diff": lambda: MeanDiffSteerer(spec, self.run.load(DELTAS)[0]["mean_vectors"]),
                "gact": lambda: self._gact_steerer(spec, refined)}[spec.method]()

    def _gact_steerer(self, spec: SteeringSpec, refined: bool) -> GactSteerer:
        extra = {}
        if refined and self.run.has(REFINED):
            tensors, _ = self.run.load(REFINED)  # the refined probe and what refinement learned with it
            probe = GactProbe.from_state_tensors(tensors)
            extra = {k: tensors[k] for k in ("log_gains", "offsets") if k in tensors}
        else:
            probe = self.load_probe("gact")
        return GactSteerer(spec, self.run.load(CLUSTERS)[0]["vectors"], probe, selection=self.settings.selection, **extra)

    def chosen_spec(self, method: str = "gact") -> SteeringSpec:
        """The spec ``eval`` uses for ``method`` (a steering method; G-ACT variants are ``gact``):
        the layers and alphas given in the settings, else the sweep's; ACT steers the layers of
        its kept heads at ``act_alpha``; the neuron method scales by ``neuron_factor``."""
        s = self.settings
        layers, alphas = s.steer_layers, s.steer_alphas
        if method == "act" and layers is None:
            layers = self.load_act().layers_
            chosen = [m["value"] for m in self.run.metrics("act") if m["name"] == CHOSEN_ALPHA]
            alphas = alphas or (s.act_alpha if s.act_alpha is not None else chosen[0],)
        if layers is None:
            chosen = {m["layer"]: m["value"] for m in self.run.metrics("sweep") if m["name"] == CHOSEN_ALPHA}
            if not chosen:
                raise ValueError("no layers chosen yet: run the sweep stage, or give --layers")
            layers, alphas = list(chosen), alphas or list(chosen.values())
        if method == "neuron" and s.steer_alphas is None:
            alphas = (s.neuron_factor,)
        alphas = alphas or (1.0,)
        if len(alphas) == 1:
            alphas = tuple(alphas) * len(layers)
        return SteeringSpec(tuple(layers), tuple(alphas), method=method, hook_point=s.hook_point)

    def sweep(self) -> None:
        """Single-layer success for every layer and alpha; then the best layers together, at the
        common scale of their alphas that steers best (or the best layer alone, if that is better);
        then, per layer, the causal test of the probe (``_causal_rows``)."""
        s = self.settings
        layers = list(range(self.model.n_layers))
        advance = self._tick("sweep", len(layers) * (len(s.sweep_alphas) + 1) + len(COMBINE_SCALES))

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
        rows = [("success", layer, grid[i, j], {"alpha": float(a)}) for i, layer in enumerate(layers)
                for j, a in enumerate(s.sweep_alphas)]
        rows += [("combined_success", None, v, {"scale": c}) for c, v in combined.items()]
        rows += self._causal_rows(base, grid, batches, advance)
        rows += [(CHOSEN_ALPHA, int(layer), float(alpha), None) for layer, alpha in zip(chosen_layers, chosen_alphas)]
        self.run.replace_metrics("sweep", rows)

    def _causal_rows(self, base: GactSteerer, grid: np.ndarray, batches, advance) -> list[tuple]:
        """Does the probe pick the right vector? Per layer, steering with the cluster vector the
        probe picks for each prompt, a random cluster's, and the prompt's own cluster's (the
        oracle), at the sweep's alpha where that layer's success is nearest 50% (most room)."""
        s = self.settings
        acts, _ = self.run.load(ACTIVATIONS)
        labels = self.run.load(CLUSTERS)[0]["labels"].numpy()
        k = base.vectors.shape[1]
        picked = base.probe.predict_proba(acts["neutral"])[..., :k].argmax(-1)  # [layers, tasks]
        rng = np.random.default_rng(s.seed)
        rows = []
        for layer in range(self.model.n_layers):
            alpha = float(s.sweep_alphas[int(np.argmin(np.abs(grid[layer] - 0.5)))])
            spec = SteeringSpec((layer,), (alpha,), hook_point=s.hook_point)
            for name, assignment in (("probe", picked[layer]), ("random", rng.integers(0, k, len(self.prompts))),
                                     ("oracle", labels[layer])):
                success = assigned_cluster_success(batches, s.target, base.vectors, spec, assignment)
                rows.append((f"causal_{name}", layer, success, {"alpha": alpha}))
            advance()
        return rows

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

        def success(live):
            return {split: tag_success(runs[split], s.target, live) if split in runs else float("nan")
                    for split in ("train", "val")}

        before = success(steerer)
        advance(2)
        refined, losses = refine_steering(steerer, train_prefix, s.target, steps=s.refine_steps, lr=s.refine_lr,
                                          prox=s.refine_prox, fluency=s.refine_fluency, gains=s.refine_gains,
                                          offsets=s.refine_offsets, online=s.refine_online, seed=s.seed, progress=advance)
        after = success(refined)
        advance(2)
        probe = refined.probe
        probe.train_accuracy_, probe.val_accuracy_ = probe.split_scores(X, y)
        tensors = probe.state_tensors()
        tensors.update({k: getattr(refined, k) for k in ("log_gains", "offsets") if getattr(refined, k) is not None})
        self.run.save(REFINED, tensors, **self._meta(kind="probe", method="gact_refined", k=s.k))
        rows = [("loss", step, loss, None) for step, loss in enumerate(losses)]
        rows += [(f"success_{when}_{split}", None, value, None)
                 for when, values in (("before", before), ("after", after)) for split, value in values.items()]
        if refined.log_gains is not None:
            rows += [("gain", layer, float(torch.exp(refined.log_gains[layer])), None) for layer in spec.layers]
        rows += self._accuracy_rows("refined", probe, X, y, groups, is_off)
        self.run.replace_metrics("refine", rows)

    def _answers(self, method: str, prompts: list[str], config: GenerationConfig, advance) -> tuple[object, list]:
        """``(steerer, steered answers)`` of an eval method."""
        s = self.settings
        spec = self.chosen_spec("gact" if method.startswith("gact") else method)
        steerer = self.steerer(spec, refined=method != "gact_unrefined")
        if method == "gact_online":
            return steerer, online_answers(steerer, self.model, prompts, s.target, config, steps=s.online_steps,
                                           on_answers=advance, lr=s.refine_lr, prox=s.refine_prox,
                                           fluency=s.refine_fluency, gains=s.refine_gains, offsets=s.refine_offsets)
        return steerer, generate(self.model, prompts, config, fwd_hooks=steerer.hooks(self.model), on_answers=advance)

    def baseline(self, prompt_set: str, config: GenerationConfig, advance) -> list:
        """Unsteered answers to a prompt set, generated once per run and decoding settings
        (stored as ``baseline_<set>``), since every method compares against the same ones."""
        ids, prompts = self.eval_prompts(prompt_set)
        stage = baseline_stage(prompt_set)
        key = hashlib.sha256(json.dumps({"prompts": prompts, "config": asdict(config), "inputs": self.inputs},
                                        sort_keys=True).encode()).hexdigest()
        stored = [m["extra"]["key"] for m in self.run.metrics(stage) if m["name"] == "answers"]
        if stored == [key]:
            answers = self._stored_answers(stage)
            if len(answers) == len(prompts):
                advance(len(prompts))
                return answers
        answers = generate(self.model, prompts, config, on_answers=advance)
        if not self.one_off:
            self.run.replace_generations(stage, self._generation_rows(ids, "baseline", answers))
            self.run.replace_metrics(stage, [("answers", None, len(answers), {"key": key})])
        return answers

    def evaluate(self, method: str = "gact", prompt_set: str = "neutral") -> dict:
        """Baseline and ``method``-steered answers to a prompt set, with the same seeds, scored
        by ``evaluation.compare_answers``; stored under ``eval_stage(method, prompt_set)``."""
        s = self.settings
        if method not in EVAL_METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {', '.join(EVAL_METHODS)}")
        ids, prompts = self.eval_prompts(prompt_set)
        ids, prompts = [i for i in ids for _ in range(s.eval_samples)], [p for p in prompts for _ in range(s.eval_samples)]
        advance = self._tick("eval", 2 * len(prompts))
        config = GenerationConfig(max_new_tokens=s.max_new_tokens, temperature=s.eval_temperature, seed=s.seed,
                                  batch_size=s.batch_size)
        baseline = self.baseline(prompt_set, config, advance) if s.eval_samples == 1 else generate(
            self.model, prompts, config, on_answers=advance)
        steerer, steered = self._answers(method, prompts, config, advance)
        result = compare_answers(baseline, steered, s.target, self.model.tokenizer, s.max_new_tokens)
        result.update(spec=steerer.spec.to_json(), method=method, prompt_set=prompt_set, temperature=s.eval_temperature,
                      seed=s.seed)
        if self.one_off:  # this session's settings, not the run's: shown, never stored
            return result
        stage = eval_stage(method, prompt_set)
        rows = [(SPEC, None, 0.0, {**steerer.spec.to_json(), "method": method})]
        for condition in ("baseline", "steered"):
            summary = result[condition]
            rows += [(f"{condition}_share_{verdict}", None, v, None) for verdict, v in summary["shares"].items()]
            rows += [(f"{condition}_{k}", None, summary[k], None)
                     for k in ("success", "fenced_target", "compiles", "no_code_block", "cut_off", "repeated_ngrams")
                     if summary[k] is not None]
        self.run.replace_metrics(stage, rows)
        self.run.replace_generations(stage, [
            row for condition in ("baseline", "steered")
            for row in self._generation_rows(ids, condition, result["answers"][condition])
        ])
        return result

    def project(self) -> None:
        """Precompute the 2-D projections of the differences the dashboard opens with."""
        advance = self._tick("project", len(self.settings.projections))
        for method in self.settings.projections:
            run_projection(self.run, method, dims=2, seed=self.settings.seed, save=True)
            advance()

    def run_stage(self, stage: str, method: str = "gact", prompt_set: str | None = None):
        """Run one stage (for ``eval``: ``method`` on ``prompt_set``, default the settings'
        ``eval_sets``), with torch's thread count re-read from the cores free now, under the
        run's lock, and record it as done with its inputs and time. ``eval`` returns the last
        set's result."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        if self.one_off and stage != "eval":
            changed = ", ".join(f"{k}={v!r}" for k, v in self.one_off.items())
            raise StorageError(f"one-off settings ({changed}) apply to eval and steer only; the {stage} stage of run "
                               f"{self.run.dir.name!r} keeps the run's settings: start a new run to change them")
        if stage == "eval":
            out = None
            for which in [prompt_set] if prompt_set else self.settings.eval_sets:
                out = self._timed(eval_stage(method, which), lambda: self.evaluate(method, which))
            return out
        return self._timed(stage, getattr(self, stage))

    def _timed(self, label: str, work):
        threads = configure_threads()
        if self.one_off:  # an evaluation with one-off settings writes nothing
            return work()
        with self.run.writing():
            self._start_writing()
            self.run.forget_before_writing([label, *later_stages(label, self.run.stage_records())])
            self._stage_notes = []
            started = time.perf_counter()
            with heartbeat(lambda: self.progress(*self._shown) if self.progress and self._shown else None):
                out = work()
            self.run.replace_metrics(notes_stage(label), [("note", None, 0.0, {"text": t}) for t in self._stage_notes])
            self.run.record_stage(label, self.inputs, time.perf_counter() - started, threads)
        return out

    def done_stages(self) -> list[str]:
        """The stages recorded as complete for this run's inputs, in the order they finished."""
        return [s for s, r in self.run.stage_records().items() if r["inputs"] == self.inputs]

    def stage_seconds(self) -> dict[str, float]:
        """Seconds each recorded stage took, in the order they last ran."""
        return {s: r["seconds"] for s, r in self.run.stage_records().items()}

    def run_all(self, stages=STAGES, resume: bool = False) -> dict | None:
        """Every stage in turn; with ``resume``, those not yet done for these inputs (the
        evaluation counts as done when every method and prompt set it asks for is)."""
        result = None
        with self.writing():  # one lock for all the stages: no other writer slips in between
            done = set(self.done_stages()) if resume else set()
            for stage in stages:
                if stage in done or (stage == "eval" and {eval_stage("gact", w) for w in self.settings.eval_sets} <= done):
                    continue
                out = self.run_stage(stage)
                result = out if stage == "eval" else result
        return result

    def writing(self):
        """The run's lock, held across several stages (none for one-off evaluations, which write nothing)."""
        return nullcontext() if self.one_off else self.run.writing()
