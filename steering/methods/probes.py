"""Per-layer probes that read, from a prompt's neutral activation, which steering vector fits it.

Both probes (G-ACT's, and the same probe fitted by scikit-learn as an ablation) follow scikit-learn's estimator conventions: hyper-parameters in ``__init__``,
``fit(X, y)``, ``predict_proba``, ``predict``, ``score``, learned state ending in ``_``.
``X`` is ``[n_samples, n_layers, d_model]`` and ``y`` is ``[n_layers, n_samples]`` (one
labelling per layer, as clustering gives). Both hold out the same validation rows for the same
``val_fraction``, ``random_state`` and ``groups``, so their accuracies compare.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from ..core.progress import beat


def train_val_split(n_samples: int, val_fraction: float, random_state: int, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices for training and validation; rows of one group (task) stay together."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    groups = np.arange(n_samples) if groups is None else np.asarray(groups)
    unique = np.unique(groups)
    rng = np.random.default_rng(random_state)
    n_val = int(round(len(unique) * val_fraction))
    val_groups = rng.choice(unique, size=n_val, replace=False) if n_val else np.array([], dtype=unique.dtype)
    is_val = np.isin(groups, val_groups)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _as_inputs(X, y=None):
    X = torch.as_tensor(X, dtype=torch.float32)
    if X.ndim != 3:
        raise ValueError(f"expected X of shape [samples, layers, d_model], got {tuple(X.shape)}")
    if y is None:
        return X, None
    y = np.asarray(y)
    if y.ndim == 1:
        y = np.tile(y, (X.shape[1], 1))
    if y.shape != (X.shape[1], X.shape[0]):
        raise ValueError(f"expected y of shape [layers, samples] = {(X.shape[1], X.shape[0])}, got {y.shape}")
    return X, y


_STATE = ("mean_", "std_", "coef_", "intercept_", "train_idx_", "val_idx_", "train_accuracy_", "val_accuracy_")
_NEVER = -1e9  # the logit of a cluster a probe never saw in training


class _LayerProbe:
    """What both probes share: a linear softmax read-out per layer over standardised inputs
    (``mean_``, ``std_``, ``coef_[L, d, K]``, ``intercept_[L, K]``), the split, accuracies and
    per-task reports, and saving to plain tensors."""

    def __init__(self, val_fraction: float = 0.25, random_state: int = 0):
        self.val_fraction = val_fraction
        self.random_state = random_state

    def layer_logits(self, layer: int, h: torch.Tensor, coef=None, intercept=None) -> torch.Tensor:
        """Differentiable logits ``[..., K]`` for activations ``h[..., d]`` at ``layer``;
        ``coef``/``intercept`` replace the learned ones (e.g. while refining them)."""
        coef = self.coef_ if coef is None else coef
        intercept = self.intercept_ if intercept is None else intercept
        mean, std = self.mean_[layer].to(h), self.std_[layer].to(h)
        return ((h - mean) / std) @ coef[layer].to(h) + intercept[layer].to(h)

    def predict_proba(self, X) -> np.ndarray:
        """Cluster probabilities ``[n_layers, n_samples, K]``."""
        X, _ = _as_inputs(X)
        xs = ((X - self.mean_) / self.std_).transpose(0, 1)
        logits = torch.einsum("lnd,ldk->lnk", xs, self.coef_) + self.intercept_[:, None, :]
        return torch.softmax(logits, dim=-1).numpy()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {name: torch.as_tensor(np.asarray(getattr(self, name)) if "idx" in name or "accuracy" in name
                                      else getattr(self, name)) for name in _STATE}

    @classmethod
    def from_state_tensors(cls, tensors: dict[str, torch.Tensor], **params) -> "_LayerProbe":
        probe = cls(**params)
        for name in _STATE:
            value = tensors[name]
            setattr(probe, name, value.numpy() if "idx" in name or "accuracy" in name else value.float())
        probe.n_clusters_ = int(probe.coef_.shape[-1])
        return probe

    def predict(self, X) -> np.ndarray:
        """Most likely cluster per layer and sample: ``[n_layers, n_samples]``."""
        return self.predict_proba(X).argmax(axis=-1)

    def score(self, X, y) -> float:
        """Mean accuracy over layers."""
        return float(self.layer_scores(X, y).mean())

    def layer_scores(self, X, y) -> np.ndarray:
        _, y = _as_inputs(X, y)
        return (self.predict(X) == y).mean(axis=1)

    def _begin_fit(self, X, y, groups, split=None):
        """Check the inputs, fix the split (``split``: given ``(train rows, validation rows)``, e.g.
        another probe's) and the number of clusters: the start of every fit."""
        X, y = _as_inputs(X, y)
        self.n_clusters_ = int(self.n_clusters or y.max() + 1)
        if split is None:
            split = train_val_split(X.shape[0], self.val_fraction, self.random_state, groups)
        self.train_idx_, self.val_idx_ = (np.asarray(rows) for rows in split)
        return X, y

    def split_scores(self, X, y, rows=None) -> tuple[np.ndarray, np.ndarray]:
        """Per-layer accuracy on the training and validation rows, counting only ``rows`` (a
        boolean mask over samples) when given; NaN where no row is left."""
        X, y = _as_inputs(X, y)
        keep = np.ones(X.shape[0], dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
        scores = []
        for idx in (self.train_idx_, self.val_idx_):
            idx = idx[keep[idx]]
            scores.append(self.layer_scores(X[idx], y[:, idx]) if len(idx) else np.full(X.shape[1], np.nan))
        return scores[0], scores[1]

    def _record_split_scores(self, X, y) -> None:
        self.train_accuracy_, self.val_accuracy_ = self.split_scores(X, y)

    def report(self, X, y, ids) -> list[dict]:
        """Per sample and layer: true and predicted cluster, confidence (of the prediction, and of the
        true cluster), and whether it was held out (rows ``i`` of ``X`` are rows ``i`` of the fit)."""
        X, y = _as_inputs(X, y)
        proba = self.predict_proba(X)
        held_out = set(self.val_idx_.tolist())
        return [
            {"id": ids[i], "layer": layer, "true": int(y[layer, i]), "predicted": int(proba[layer, i].argmax()),
             "confidence": float(proba[layer, i].max()), "p_true": float(proba[layer, i, y[layer, i]]),
             "validation": i in held_out}
            for layer in range(proba.shape[0]) for i in range(proba.shape[1])
        ]


class GactProbe(_LayerProbe):
    """G-ACT's light probe: a linear softmax classifier per layer, all layers trained at once.

    Inputs are standardised with training statistics; the loss is cross-entropy plus
    ``weight_decay * ||W||^2``, minimised full-batch with Adam for ``epochs`` steps.
    Learned state: ``mean_``/``std_`` ``[L, d]``, ``coef_`` ``[L, d, K]``, ``intercept_`` ``[L, K]``.
    """

    def __init__(self, n_clusters: int | None = None, lr: float = 0.05, weight_decay: float = 1e-2,
                 epochs: int = 300, val_fraction: float = 0.25, random_state: int = 0):
        super().__init__(val_fraction, random_state)
        self.n_clusters = n_clusters
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs

    def fit(self, X, y, groups=None, split=None) -> "GactProbe":
        X, y = self._begin_fit(X, y, groups, split)
        _, n_layers, d = X.shape
        k = self.n_clusters_
        train = X[self.train_idx_]
        self.mean_ = train.mean(dim=0)
        self.std_ = train.std(dim=0, unbiased=False).clamp_min(1e-6)
        xs = ((train - self.mean_) / self.std_).transpose(0, 1)  # [L, n_train, d]
        targets = torch.as_tensor(y[:, self.train_idx_], dtype=torch.long)
        generator = torch.Generator().manual_seed(self.random_state)
        coef = (torch.randn(n_layers, d, k, generator=generator) * 0.01).requires_grad_(True)
        intercept = torch.zeros(n_layers, k, requires_grad=True)
        optimizer = torch.optim.Adam([coef, intercept], lr=self.lr)
        for _ in range(self.epochs):
            logits = torch.einsum("lnd,ldk->lnk", xs, coef) + intercept[:, None, :]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, k), targets.reshape(-1))
            loss = loss + self.weight_decay * coef.pow(2).sum() / n_layers
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            beat()  # a long fit still refreshes the progress display
        self.coef_ = coef.detach()
        self.intercept_ = intercept.detach()
        self._record_split_scores(X, y)
        return self


class SklearnProbe(_LayerProbe):
    """An ablation of G-ACT's probe: the same inputs, labels and read-out, fitted by one
    scikit-learn ``LogisticRegression`` per layer on raw activations instead of by Adam. (It is
    not ACT: ACT's probes are per head and binary, see ``steering.methods.act``.)

    After fitting, each regression is kept as its linear read-out (``coef_``, ``intercept_``, with
    ``mean_ = 0`` and ``std_ = 1``): the same probabilities as ``predict_proba`` of the
    regression, usable in hooks and saved without pickle."""

    def __init__(self, n_clusters: int | None = None, C: float = 1.0, max_iter: int = 5000,
                 val_fraction: float = 0.25, random_state: int = 0):
        super().__init__(val_fraction, random_state)
        self.n_clusters = n_clusters
        self.C = C
        self.max_iter = max_iter

    def fit(self, X, y, groups=None, split=None) -> "SklearnProbe":
        X, y = self._begin_fit(X, y, groups, split)
        _, n_layers, d = X.shape
        k = self.n_clusters_
        self.mean_, self.std_ = torch.zeros(n_layers, d), torch.ones(n_layers, d)
        self.coef_ = torch.zeros(n_layers, d, k)
        self.intercept_ = torch.full((n_layers, k), _NEVER)
        for layer in range(n_layers):
            labels = y[layer, self.train_idx_]
            classes = np.unique(labels)
            if len(classes) < 2:  # one class seen: the probe can only say that class
                self.intercept_[layer, classes[0]] = 0.0
                continue
            model = LogisticRegression(C=self.C, max_iter=self.max_iter)
            model.fit(X[self.train_idx_, layer].numpy(), labels)
            coef = torch.as_tensor(model.coef_, dtype=torch.float32)
            bias = torch.as_tensor(model.intercept_, dtype=torch.float32)
            if len(classes) == 2:  # binary: P(class 1) = sigmoid(z), i.e. softmax over (0, z)
                coef = torch.cat([torch.zeros_like(coef), coef])
                bias = torch.cat([torch.zeros_like(bias), bias])
            self.coef_[layer][:, classes] = coef.T
            self.intercept_[layer, classes] = bias
        self._record_split_scores(X, y)
        return self
