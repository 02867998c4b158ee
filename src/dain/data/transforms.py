"""Feature transforms fitted on the training split only.

Piecewise-linear encoding (PLE; Gorishniy et al., "On Embeddings for Numerical Features in Tabular Deep Learning",
NeurIPS 2022): each scalar feature ``x`` becomes ``bins`` numbers, one per quantile bin ``[lo_t, hi_t)`` of the
training values: 1 for bins wholly below ``x``, the fraction ``(x - lo_t) / (hi_t - lo_t)`` inside the bin that holds
``x``, 0 above. A linear layer on this encoding is a learned piecewise-linear function of ``x`` with knots at the
training quantiles, which is what lets an MLP cut heavy-tailed clinical variables the way a tree does.
"""

from __future__ import annotations

import numpy as np


def fit_quantile_edges(x: np.ndarray, train: np.ndarray, bins: int) -> np.ndarray:
    """Quantile bin edges ``[F, bins + 1]`` per column of ``x`` ``[N, F]`` from the rows ``train`` (NaN ignored).

    A column with no finite training value gets NaN edges (its encoding is then all zeros)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    ref = np.asarray(x, dtype=np.float64)[np.asarray(train, dtype=np.int64)]
    edges = np.full((x.shape[1], bins + 1), np.nan, dtype=np.float64)
    q = np.linspace(0.0, 1.0, bins + 1)
    for j in range(x.shape[1]):
        col = ref[:, j]
        col = col[np.isfinite(col)]
        if col.size:
            edges[j] = np.quantile(col, q)
    return edges.astype(np.float32)


def piecewise_linear(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Encode ``x`` ``[N, F]`` with ``edges`` ``[F, bins + 1]`` -> ``[N, F * bins]`` (feature-major).

    Values below the first edge encode as all zeros, above the last as all ones; a zero-width bin (repeated
    quantile, common for counts) is a step ``x >= edge``. NaN (missing) encodes as all zeros: pair the encoding
    with a missing indicator when missing and minimal values must be told apart."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or edges.ndim != 2 or edges.shape[0] != x.shape[1]:
        raise ValueError(f"piecewise_linear: x {x.shape} and edges {edges.shape} do not match")
    lo, hi = edges[None, :, :-1], edges[None, :, 1:]
    width = hi - lo
    v = x[:, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(width > 0, (v - lo) / np.where(width > 0, width, 1.0), (v >= hi).astype(np.float32))
    frac = np.where(np.isnan(lo) | np.isnan(hi), 0.0, frac)  # a column never seen in training: no information
    out = np.clip(np.nan_to_num(frac, nan=0.0), 0.0, 1.0).astype(np.float32)
    return out.reshape(len(x), -1)
