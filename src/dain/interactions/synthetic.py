"""Seeded numpy generators with a known (planted) PID, in bits.

Discrete sets carry the informative bits plus independent noise bits (so alphabets exceed 2); ``continuous``
variants embed every bit ``b`` as ``(2b - 1) * u_j`` along a fixed random unit direction ``u_j`` of R^dim plus
Gaussian noise (std ``noise / sqrt(dim)`` per coordinate; the bit is recoverable essentially perfectly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("redundancy", "uniqueness", "synergy", "mixed")

TRUTH: dict[str, dict[str, float]] = {
    "redundancy": {"R": 1.0, "U1": 0.0, "U2": 0.0, "S": 0.0},
    "uniqueness": {"R": 0.0, "U1": 1.0, "U2": 0.0, "S": 0.0},
    "synergy": {"R": 0.0, "U1": 0.0, "U2": 0.0, "S": 1.0},
    "mixed": {"R": 1.0, "U1": 0.0, "U2": 0.0, "S": 1.0},
}

DESCRIPTIONS = {
    "redundancy": "y ~ Bern(1/2); x1 = (y, n1), x2 = (y, n2) with independent noise bits -> R = 1 bit",
    "uniqueness": "a, b ~ Bern(1/2); y = a; x1 = (a, n1), x2 = (b, n2) -> U1 = 1 bit",
    "synergy": "a, b ~ Bern(1/2); y = a XOR b; x1 = (a, n1), x2 = (b, n2) -> S = 1 bit",
    "mixed": "a, b, c ~ Bern(1/2); x1 = (a, b), x2 = (a, c); y = 2a + (b XOR c) (4 classes) -> R = 1, S = 1 bit",
}

# planted temporal truth: lag -> atom carrying 1 bit about y_t (every other atom/lag is 0)
TEMPORAL_TRUTH: dict[int, dict[str, float]] = {
    0: {"R": 1.0, "U1": 0.0, "U2": 0.0, "S": 0.0},
    2: {"R": 0.0, "U1": 1.0, "U2": 0.0, "S": 0.0},
    4: {"R": 0.0, "U1": 0.0, "U2": 0.0, "S": 1.0},
}


@dataclass
class SyntheticPID:
    """Generated arrays and their planted PID."""

    x1: np.ndarray
    x2: np.ndarray
    y: np.ndarray
    truth: dict[Any, Any]
    description: str
    extras: dict[str, Any] = field(default_factory=dict)


def embed_bits(bits: np.ndarray, dim: int, rng: np.random.Generator, noise: float = 0.25) -> np.ndarray:
    """Embed ``bits[..., K]`` (0/1) as ``sum_j (2 b_j - 1) u_j + eps`` in R^dim (float32)."""
    k = bits.shape[-1]
    u = rng.standard_normal((k, dim))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    x = (2.0 * bits - 1.0) @ u
    x = x + rng.standard_normal(x.shape) * noise / np.sqrt(dim)
    return x.astype(np.float32)


def make_pid_data(
    kind: str,
    n: int = 4000,
    seed: int = 0,
    noise_bits: int = 1,
    continuous: bool = False,
    dim: int = 32,
    noise: float = 0.25,
) -> SyntheticPID:
    """Draw ``n`` samples of one of :data:`KINDS`; returns bits (float 0/1) or ``dim``-d embeddings."""
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; known: {', '.join(KINDS)}")
    rng = np.random.default_rng(seed)
    a, b, c = (rng.integers(0, 2, n) for _ in range(3))
    nz1 = rng.integers(0, 2, (n, noise_bits))
    nz2 = rng.integers(0, 2, (n, noise_bits))
    if kind == "redundancy":
        y, s1, s2 = a, [a], [a]
    elif kind == "uniqueness":
        y, s1, s2 = a, [a], [b]
    elif kind == "synergy":
        y, s1, s2 = a ^ b, [a], [b]
    else:  # mixed
        y, s1, s2 = 2 * a + (b ^ c), [a, b], [a, c]
        nz1, nz2 = nz1[:, :0], nz2[:, :0]
    x1 = np.concatenate([np.stack(s1, 1), nz1], 1).astype(np.float32)
    x2 = np.concatenate([np.stack(s2, 1), nz2], 1).astype(np.float32)
    if continuous:
        x1 = embed_bits(x1, dim, rng, noise)
        x2 = embed_bits(x2, dim, rng, noise)
    return SyntheticPID(x1, x2, y.astype(np.int64), dict(TRUTH[kind]), DESCRIPTIONS[kind])


def make_temporal_data(
    n: int = 1000, T: int = 20, seed: int = 0, dim: int | None = None, noise: float = 0.25
) -> SyntheticPID:
    """Two bit sequences ``x1, x2 [n, T, 3]`` and a per-step label ``y [n, T]`` (8 classes) with lag
    structure.

    Independent bit streams a, b, c, d, e, f (i.i.d. over samples and time); x1_t = (a_t, b_t, c_t),
    x2_t = (a_t, e_t, d_t) and y_t = 4 a_t + 2 b_{t-2} + (c_{t-4} XOR d_{t-4}) (streams start 4 steps
    before t = 0).
    Pairing (x1_{t-τ}, x2_{t-τ}) with y_t gives R(0) = 1, U1(2) = 1, S(4) = 1 bit and 0 for every other
    atom and lag (:data:`TEMPORAL_TRUTH`). With ``dim`` the 3 bits per step are embedded in R^dim.
    """
    rng = np.random.default_rng(seed)
    burn = 4
    st = rng.integers(0, 2, (6, n, T + burn))
    a, b, c, d, e, _ = st
    y = 4 * a[:, burn:] + 2 * b[:, burn - 2 : -2] + (c[:, :-burn] ^ d[:, :-burn])
    x1 = np.stack([a, b, c], -1)[:, burn:].astype(np.float32)
    x2 = np.stack([a, e, d], -1)[:, burn:].astype(np.float32)
    if dim is not None:
        x1 = embed_bits(x1, dim, rng, noise)
        x2 = embed_bits(x2, dim, rng, noise)
    truth = {lag: dict(v) for lag, v in TEMPORAL_TRUTH.items()}
    desc = "x1_t=(a,b,c)_t, x2_t=(a,e,d)_t, y_t=4a_t+2b_{t-2}+(c xor d)_{t-4}: R(0)=1, U1(2)=1, S(4)=1 bit"
    return SyntheticPID(x1, x2, y.astype(np.int64), truth, desc)
