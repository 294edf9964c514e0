"""``PromptCondition``: does a prompt leave the language open, or name one? Steering then yields
to a prompt that asks for another language (``SteeringSpec.conditional``), as conditional
activation steering (CAST, arXiv 2409.05907) applies a behaviour only where a condition holds.

CAST reads a condition vector's projection at the prompt; ours is a per-layer multinomial
logistic regression on the prompt's activation, read where the run reads its activations (the
last token after the answer's opening, by default), over the classes "open" (the neutral prompts
and their paraphrases) and each language (the tasks asked explicitly in it). The layer is the one
that reads best both the held-out tasks and a phrasing it was not fitted on (the paraphrases are
kept out of its training and must read as "open"): the earliest among equals. Without that
second test the earliest layers won on the prompts' wording alone: on Qwen Julia layer 1 read 40
of the 46 held-out phrasings as C++ requests (layers 5 and later read them all as open;
``bench/condition_reads.py``). A prompt
read as "open" or as the target is steered; one read as another language is not. The
classifier and its layer choice are Steerscope's (the G-ACT paper has no condition).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupShuffleSplit

from ..code.languages import LANGUAGE_KEYS
from ..engine.activations import extract_activations

OPEN = "open"  # the class of prompts that name no language


class PromptCondition:
    """An estimator: settings in ``__init__``, what ``fit`` learns ends in ``_``.

    ``fit(X[rows, layers, width], labels[rows], groups[rows])``: labels are ``OPEN`` or a
    language key; ``groups`` the task of each row, so that a task's phrasings are validated
    together. ``steers(model, prompts)`` reads the prompts and says which to steer towards
    ``target``."""

    def __init__(self, target: str, C: float = 1.0, val_fraction: float = 0.25, random_state: int = 0,
                 hook_point: str = "resid_post", position: str = "last", answer_prefix: str = "```"):
        self.target, self.C, self.val_fraction, self.random_state = target, C, val_fraction, random_state
        self.hook_point, self.position, self.answer_prefix = hook_point, position, answer_prefix

    def fit(self, X: torch.Tensor, labels, groups, unseen=None) -> "PromptCondition":
        """``unseen``: per row, whether its phrasing is kept out of training to test the layers
        on wording they were not fitted on; a layer's ``val_accuracy_`` is the lower of its
        accuracy on the held-out tasks and on those rows."""
        X, labels, groups = np.asarray(X, dtype=np.float32), np.asarray(labels), np.asarray(groups)
        unseen = np.zeros(len(labels), bool) if unseen is None else np.asarray(unseen, bool)
        unknown = sorted(set(labels) - {OPEN, *LANGUAGE_KEYS})
        if unknown:
            raise ValueError(f"unknown condition label(s) {', '.join(unknown)}; expected {OPEN} or a language")
        if len(set(labels)) < 2:
            raise ValueError("the condition needs prompts of at least two kinds (open, and a language named)")
        split = GroupShuffleSplit(n_splits=1, test_size=self.val_fraction, random_state=self.random_state)
        train, val = next(split.split(X[:, 0], labels, groups))
        train, val = train[~unseen[train]], val[~unseen[val]]
        self.val_idx_ = val
        fitted, accuracy = [], []
        for layer in range(X.shape[1]):
            model = self._model(X[train, layer], labels[train])
            fitted.append(model)
            reads = [(model[2].predict(self._standard(X[rows, layer], *model[:2])) == labels[rows]).mean()
                     for rows in (val, np.flatnonzero(unseen)) if len(rows)]
            accuracy.append(float(min(reads)))
        self.val_accuracy_ = np.array(accuracy)
        self.layer_ = int(np.argmax(self.val_accuracy_))  # the first of the best
        mean, scale, chosen = fitted[self.layer_]
        self.classes_ = [str(c) for c in chosen.classes_]
        self.mean_, self.scale_ = mean, scale
        coef, intercept = chosen.coef_, chosen.intercept_
        if len(self.classes_) == 2:  # scikit-learn's binary form: one row, for the second class
            coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
        self.coef_, self.intercept_ = coef.astype(np.float32), intercept.astype(np.float32)
        return self

    def _model(self, X, labels):
        mean, scale = X.mean(0), X.std(0) + 1e-6
        return mean, scale, LogisticRegression(C=self.C, max_iter=2000).fit(self._standard(X, mean, scale), labels)

    @staticmethod
    def _standard(X, mean, scale):
        return (X - mean) / scale

    def read(self, activations) -> list[str]:
        """The class of each prompt from its activations at ``layer_`` (``[rows, width]``)."""
        X = self._standard(np.asarray(activations, dtype=np.float32), self.mean_, self.scale_)
        return [self.classes_[i] for i in (X @ self.coef_.T + self.intercept_).argmax(-1)]

    def steers(self, model, prompts) -> list[bool]:
        """Per prompt: True where it leaves the language open (or asks for the target), read by one
        pass of the model over the prompts, as the run read its activations."""
        acts = extract_activations(model, list(prompts), layers=[self.layer_], hook_point=self.hook_point,
                                   position=self.position, continuation=self.answer_prefix, cache_dir=None)
        return [c in (OPEN, self.target) for c in self.read(acts[:, 0])]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        codes = [-1 if c == OPEN else LANGUAGE_KEYS.index(c) for c in self.classes_]
        return {"layer": torch.tensor(self.layer_), "classes": torch.tensor(codes), "coef": torch.from_numpy(self.coef_),
                "intercept": torch.from_numpy(self.intercept_), "mean": torch.from_numpy(np.asarray(self.mean_)),
                "scale": torch.from_numpy(np.asarray(self.scale_)), "val_accuracy": torch.from_numpy(self.val_accuracy_)}

    @classmethod
    def from_state_tensors(cls, tensors: dict[str, torch.Tensor], **settings) -> "PromptCondition":
        out = cls(**settings)
        out.layer_ = int(tensors["layer"])
        out.classes_ = [OPEN if i < 0 else LANGUAGE_KEYS[i] for i in tensors["classes"].tolist()]
        out.coef_, out.intercept_ = tensors["coef"].float().numpy(), tensors["intercept"].float().numpy()
        out.mean_, out.scale_ = tensors["mean"].float().numpy(), tensors["scale"].float().numpy()
        out.val_accuracy_ = tensors["val_accuracy"].double().numpy()
        return out
