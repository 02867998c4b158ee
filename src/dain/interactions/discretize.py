"""Turn (low-dimensional) continuous inputs into integer codes for the exact PID estimator."""

from __future__ import annotations

import numpy as np


def encode_discrete(x: np.ndarray) -> np.ndarray:
    """Map the distinct values (1-d) or distinct rows (2-d+) of ``x`` to codes 0..n-1."""
    x = np.asarray(x)
    if x.ndim == 1:
        return np.unique(x, return_inverse=True)[1].astype(np.int64).ravel()
    flat = x.reshape(len(x), -1)
    return np.unique(flat, axis=0, return_inverse=True)[1].astype(np.int64).ravel()


def quantile_codes(x: np.ndarray, bins: int = 4) -> np.ndarray:
    """Per-feature quantile binning of ``x[N, D]`` -> int codes ``[N, D]``.

    A feature with at most ``bins`` distinct values keeps its values (as ranks) instead of being binned."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    out = np.empty(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        col = x[:, j]
        uniq = np.unique(col)
        if len(uniq) <= bins:
            out[:, j] = np.searchsorted(uniq, col)
        else:
            edges = np.unique(np.quantile(col, np.linspace(0, 1, bins + 1)[1:-1]))
            out[:, j] = np.searchsorted(edges, col, side="right")
    return out


def kmeans_codes(x: np.ndarray, k: int = 8, seed: int = 0) -> np.ndarray:
    """Cluster rows of ``x[N, D]`` (z-scored) with seeded k-means++ -> codes ``[N]``."""
    from scipy.cluster.vq import kmeans2

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    sd = x.std(0)
    z = (x - x.mean(0)) / np.where(sd > 1e-12, sd, 1.0)
    k = max(1, min(k, len(np.unique(z, axis=0))))
    _, labels = kmeans2(z, k, minit="++", seed=seed)
    return encode_discrete(labels)


def discretize(
    x: np.ndarray, bins: int | None = None, method: str = "auto", max_dims: int = 3, seed: int = 0
) -> np.ndarray:
    """Codes ``[N]`` for samples ``x[N]`` or ``x[N, ...]``.

    ``method``: ``"auto"`` (integer/bool input used as-is; float input with at most ``max_dims`` features is
    quantile-binned per feature with ``bins`` levels (default 4); more features -> k-means with ``bins``
    clusters
    (default 8)), ``"quantile"``, ``"kmeans"`` or ``"none"`` (use values as symbols).
    """
    x = np.asarray(x)
    flat = x.reshape(len(x), -1)
    if method == "none" or (method == "auto" and x.dtype.kind in "iub"):
        return encode_discrete(flat)
    if method == "auto":
        # float arrays holding only a few distinct values per feature (e.g. 0/1 bits) are already discrete
        if all(len(np.unique(flat[:, j])) <= (bins or 4) for j in range(flat.shape[1])):
            return encode_discrete(flat)
        method = "quantile" if flat.shape[1] <= max_dims else "kmeans"
    if method == "quantile":
        return encode_discrete(quantile_codes(flat, bins or 4))
    if method == "kmeans":
        return kmeans_codes(flat, bins or 8, seed=seed)
    raise ValueError(f"unknown discretisation method {method!r}; use auto, quantile, kmeans or none")
