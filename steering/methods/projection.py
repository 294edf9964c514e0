"""2-D and 3-D projections of the difference vectors, every layer at once, cached in the run.

PCA is instant; UMAP compiles (numba) for about 10 s on its first call in a process and t-SNE
takes seconds, so each projection is computed once per run and saved next to the differences
it came from (keyed by their hash, so a re-extracted run never shows stale points).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..store.schema import DELTAS, projection_tensors

PROJECTIONS = ("pca", "umap", "tsne")


def check_projection(method: str, dims: int) -> None:
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection {method!r}; expected one of {', '.join(PROJECTIONS)}")
    if dims not in (2, 3):
        raise ValueError(f"projections are 2-D or 3-D, not {dims!r}-D")


def project(X: np.ndarray, method: str = "pca", dims: int = 2, seed: int = 0) -> np.ndarray:
    """Rows of ``X`` ``[n, d]`` as points ``[n, dims]``; tiny sets (n <= dims) are padded with zeros."""
    check_projection(method, dims)
    X = np.asarray(X, dtype=np.float32)
    n = X.shape[0]
    if n <= dims:  # nothing to fit: spread along the first coordinates
        return np.pad(X[:, :dims] - X[:, :dims].mean(axis=0), ((0, 0), (0, max(0, dims - X.shape[1]))))
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=dims, random_state=seed).fit_transform(X)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
        return TSNE(n_components=dims, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)
    import umap

    reducer = umap.UMAP(n_components=dims, n_neighbors=max(2, min(15, n - 1)), random_state=seed, n_jobs=1,
                        init="spectral" if n > dims + 8 else "random")
    return reducer.fit_transform(X)


def _fingerprint(deltas: torch.Tensor) -> str:
    return hashlib.sha256(deltas.contiguous().numpy().tobytes()).hexdigest()[:16]


def projection_result(deltas: torch.Tensor, method: str, dims: int, seed: int) -> tuple[str, torch.Tensor, dict]:
    """``(tensor file name, points [n_layers, n_tasks, dims], metadata)`` of ``deltas``
    ``[n_tasks, n_layers, d_model]``; the metadata names the differences they came from."""
    check_projection(method, dims)
    points = np.stack([project(deltas[:, layer].numpy(), method, dims, seed) for layer in range(deltas.shape[1])])
    meta = {"kind": "projection", "method": method, "dims": dims, "seed": seed, "deltas": _fingerprint(deltas)}
    return projection_tensors(method, dims, seed), torch.as_tensor(points, dtype=torch.float32), meta


def run_projection(run, method: str = "pca", dims: int = 2, seed: int = 0) -> np.ndarray:
    """Points ``[n_layers, n_tasks, dims]`` of a run's differences, from the run's cache when
    they were computed for these very differences (by the project stage), else computed here
    and not stored: readers never write."""
    check_projection(method, dims)
    deltas = run.load(DELTAS)[0]["deltas"]  # [n_tasks, n_layers, d_model]
    name = projection_tensors(method, dims, seed)
    if run.has(name):
        tensors, meta = run.load(name)
        if meta.get("deltas") == _fingerprint(deltas):
            return tensors["points"].numpy()
    return projection_result(deltas, method, dims, seed)[1].numpy()
