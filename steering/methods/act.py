"""ACT ("Adaptive Activation Steering", Wang et al., WWW 2025), as its authors built it.

Read per head, before the attention output projection (``attn.hook_z``), at an answer's last
token. Per question: the direction is the mean over its good answers (in the target language)
minus the mean over its bad ones (other languages). k-means (``n_init=10``) on those directions,
per (layer, head); one binary logistic-regression probe (good vs bad) per (cluster, layer, head)
on an 80/20 split; per cluster, the ``n_heads_kept`` heads with the best validation accuracy.
Steering at every generated token adds, to each kept head's output,
``alpha * sigma * theta_hat * (1 + beta - p(good | a))``: ``theta_hat`` the unit probe direction,
``sigma`` the std of the activations projected on it. Every cluster's heads are steered at once,
each gated by its own probe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from ..core.schedules import StepControl
from ..engine.models import check_layers
from .probes import train_val_split
from .steer import SteeringSpec, Steerer, needs_control, first_steered, schedule_weights


_STATE = ("coef_", "intercept_", "train_accuracy_", "val_accuracy_", "kept_", "theta_", "sigma_", "n_val_")


class AdaptiveActivationSteering(BaseEstimator):
    """ACT's probes and head selection, scikit-learn style.

    ``fit(Z, good, tasks, n_heads)``: ``Z[rows, n_layers, n_heads * d_head]`` head outputs at the
    answers' last tokens, ``good[rows]`` whether each answer is in the target language,
    ``tasks[rows]`` the question it answers. Learned state: ``coef_[C, L, H, d_head]``,
    ``intercept_[C, L, H]``, ``train_accuracy_``/``val_accuracy_`` ``[C, L, H]`` (NaN where a
    cluster had too few answers), ``kept_[m, 3]`` (cluster, layer, head) of the steered heads,
    ``theta_[m, d_head]`` their unit probe directions and ``sigma_[m]`` their scales.
    """

    def __init__(self, n_clusters: int = 3, n_heads_kept: int = 24, C: float = 1.0, val_fraction: float = 0.2,
                 n_init: int = 10, random_state: int = 0):
        self.n_clusters = n_clusters
        self.n_heads_kept = n_heads_kept
        self.C = C
        self.val_fraction = val_fraction
        self.n_init = n_init
        self.random_state = random_state

    def fit(self, Z, good, tasks, n_heads: int) -> "AdaptiveActivationSteering":
        Z = torch.as_tensor(Z, dtype=torch.float32)
        good, tasks = np.asarray(good, dtype=bool), np.asarray(tasks)
        if Z.ndim != 3 or Z.shape[-1] % n_heads:
            raise ValueError(f"expected Z of shape [rows, layers, n_heads * d_head] with {n_heads} heads, got {tuple(Z.shape)}")
        if not (len(good) == len(tasks) == Z.shape[0]):
            raise ValueError(f"{Z.shape[0]} activation rows but {len(good)} labels and {len(tasks)} tasks")
        both = [t for t in np.unique(tasks) if good[tasks == t].any() and (~good[tasks == t]).any()]
        if len(both) < self.n_clusters:
            raise ValueError(f"ACT needs at least {self.n_clusters} questions with both a good and a bad answer; "
                             f"got {len(both)}")
        n_rows, n_layers, width = Z.shape
        d_head = width // n_heads
        heads = Z.view(n_rows, n_layers, n_heads, d_head).numpy()
        directions = np.stack([heads[(tasks == t) & good].mean(0) - heads[(tasks == t) & ~good].mean(0) for t in both])
        shape = (self.n_clusters, n_layers, n_heads)
        self.coef_ = np.zeros((*shape, d_head), dtype=np.float32)
        self.intercept_ = np.zeros(shape, dtype=np.float32)
        self.train_accuracy_ = np.full(shape, np.nan)
        self.val_accuracy_ = np.full(shape, np.nan)
        self.n_val_ = np.zeros(shape, dtype=np.int64)
        self.val_correct_ = {}  # (c, l, h) -> (correct [n_val], task of each validation row): for intervals
        for layer in range(n_layers):
            for head in range(n_heads):
                kmeans = KMeans(self.n_clusters, n_init=self.n_init, random_state=self.random_state)
                labels = kmeans.fit(directions[:, layer, head]).labels_
                for c in range(self.n_clusters):
                    member_tasks = [t for t, label in zip(both, labels) if label == c]
                    self._fit_probe(c, layer, head, heads[:, layer, head], good, tasks, member_tasks)
        self._keep_heads(heads, n_heads)
        return self

    def _fit_probe(self, c, layer, head, X, good, tasks, member_tasks) -> None:
        rows = np.flatnonzero(np.isin(tasks, member_tasks))
        train, val = train_val_split(len(rows), self.val_fraction, self.random_state, groups=tasks[rows])
        train, val = rows[train], rows[val]
        if len(np.unique(good[train])) < 2:
            return  # one class seen: no probe, never kept
        probe = LogisticRegression(C=self.C, max_iter=2000).fit(X[train], good[train])
        self.coef_[c, layer, head] = probe.coef_[0]
        self.intercept_[c, layer, head] = probe.intercept_[0]
        self.train_accuracy_[c, layer, head] = probe.score(X[train], good[train])
        if len(val):
            correct = probe.predict(X[val]) == good[val]
            self.val_accuracy_[c, layer, head] = correct.mean()
            self.n_val_[c, layer, head] = len(val)
            self.val_correct_[(c, layer, head)] = (correct, tasks[val])

    def _keep_heads(self, heads: np.ndarray, n_heads: int) -> None:
        """Per cluster, the best heads by validation accuracy (then training accuracy, then the
        lower layer and head), with their unit directions and projected std."""
        kept = []
        for c in range(self.n_clusters):
            val = np.nan_to_num(self.val_accuracy_[c], nan=-1.0)
            train = np.nan_to_num(self.train_accuracy_[c], nan=-1.0)
            fitted = [(l, h) for l in range(val.shape[0]) for h in range(n_heads) if train[l, h] >= 0]
            fitted.sort(key=lambda lh: (-val[lh], -train[lh], lh))
            kept += [(c, l, h) for l, h in fitted[: self.n_heads_kept]]
        self.kept_ = np.array(kept, dtype=np.int64).reshape(-1, 3)
        coef = self.coef_[tuple(self.kept_.T)]
        self.theta_ = coef / np.linalg.norm(coef, axis=-1, keepdims=True).clip(1e-12)
        projected = np.einsum("rmd,md->rm", heads[:, self.kept_[:, 1], self.kept_[:, 2]], self.theta_)
        self.sigma_ = projected.std(axis=0)

    @property
    def layers_(self) -> list[int]:
        """The layers that hold a kept head, in order."""
        check_is_fitted(self, "kept_")
        return sorted(set(self.kept_[:, 1].tolist()))

    def best_head_accuracy(self) -> np.ndarray:
        """ACT's own probe metric per layer: the best head's validation accuracy (any cluster)."""
        check_is_fitted(self, "val_accuracy_")
        per_layer = self.val_accuracy_.transpose(1, 0, 2).reshape(self.val_accuracy_.shape[1], -1)
        return np.array([row[~np.isnan(row)].max() if (~np.isnan(row)).any() else np.nan for row in per_layer])

    def head_tensors(self, layer: int) -> dict[str, torch.Tensor]:
        """The kept heads of ``layer``: head index, probe weights and bias, unit direction, sigma."""
        check_is_fitted(self, "kept_")
        at = self.kept_[:, 1] == layer
        c, l, h = self.kept_[at].T
        return {"heads": torch.as_tensor(h), "coef": torch.as_tensor(self.coef_[c, l, h]),
                "intercept": torch.as_tensor(self.intercept_[c, l, h]), "theta": torch.as_tensor(self.theta_[at]).float(),
                "sigma": torch.as_tensor(self.sigma_[at]).float()}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        check_is_fitted(self, "kept_")
        return {name: torch.as_tensor(np.asarray(getattr(self, name))) for name in _STATE}

    @classmethod
    def from_state_tensors(cls, tensors: dict[str, torch.Tensor], **params) -> "AdaptiveActivationSteering":
        missing = [name for name in _STATE if name not in tensors]
        if missing:
            raise ValueError(f"not an ACT state: missing {', '.join(missing)}")
        act = cls(**params)
        for name in _STATE:
            setattr(act, name, tensors[name].numpy())
        act.n_clusters = int(act.coef_.shape[0])
        return act


@dataclass
class ActSteerer(Steerer):
    """ACT's injection on the kept heads of ``spec.layers``, each layer at its alpha (the
    pipeline gives every layer the same one)."""

    spec: SteeringSpec
    act: AdaptiveActivationSteering
    beta: float = 0.0
    method = "act"

    def hooks(self, model, start: int | None = None, control: StepControl | None = None) -> list[tuple[str, object]]:
        check_layers(self.spec.layers, model.n_layers)
        needs_control(self.spec, control, start)
        if self.spec.alpha_unit != "absolute":
            raise ValueError("ACT's alpha is in units of each head's projected std already: use alpha_unit 'absolute'")
        unknown = [layer for layer in self.spec.layers if layer not in self.act.layers_]
        if unknown:
            raise ValueError(f"ACT kept no head on layer(s) {unknown}; its layers are {self.act.layers_}")
        hooks = []
        for layer, alpha in zip(self.spec.layers, self.spec.alphas):
            if alpha == 0:
                continue
            kept = self.act.head_tensors(layer)

            def hook(z, hook, kept=kept, alpha=alpha):
                first = first_steered(self.spec, z, start)
                width = z.shape[-1]
                n_heads = model.facts.n_heads
                heads = z[:, first:].reshape(*z[:, first:].shape[:2], n_heads, width // n_heads)
                picked = heads[:, :, kept["heads"]].float()  # [b, p, m, d_head]
                p_good = torch.sigmoid(torch.einsum("bpmd,md->bpm", picked, kept["coef"].to(picked)) + kept["intercept"].to(picked))
                strength = (alpha * kept["sigma"].to(picked) * (1 + self.beta - p_good)).unsqueeze(-1)  # [b, p, m, 1]
                # the gate reads ACT's own probes: their mean p(good) over the layer's kept heads
                weights = schedule_weights(self.spec, control, z[:, first:], lambda _: p_good.mean(-1))
                if weights is not None:
                    strength = strength * weights[..., None]
                steered = heads.index_add(2, kept["heads"].to(z.device), (strength * kept["theta"].to(picked)).to(z.dtype))
                steered = steered.reshape(*steered.shape[:2], width)
                return torch.cat([z[:, :first], steered], dim=1) if first else steered

            hooks.append((model.hook_name(layer, "attn_z"), hook))
        return hooks

    def state(self):
        return {f"act.{k}": v for k, v in self.act.state_tensors().items()}, {"beta": self.beta}

    @classmethod
    def from_state(cls, spec, tensors, params):
        act = AdaptiveActivationSteering.from_state_tensors({k.removeprefix("act."): v for k, v in tensors.items()})
        return cls(spec, act, beta=params.get("beta", 0.0))
