"""What an interaction-aware router is given: R/U/S tensors on its token grid, and the request that asks for them.

A model that routes on interactions (``timemoe``) declares what it needs with :class:`InteractionRequest`
(``model.interaction_request()``); the training harness computes it once per split (``dain.training.interaction_cache``)
and hands the model a :class:`RoutingInteractions` (``model.set_interactions(...)``). The model never estimates or
touches the disk.

``dain.interactions.estimate_pairs`` returns one dict per (modality pair, lag)::

    {"modalities": [a, b], "lag": int | None, "span": [lo, hi] (optional), "R": .., "U1": .., "U2": .., "S": .., ...}

:func:`rus_tensors` maps them to ``U [M, T]`` and symmetric ``R, S [M, M, T]`` on the model's token grid of ``T``
tokens:

* a pair with ``span = [lo, hi]`` (fractions of the sequence, 0 <= lo < hi <= 1) describes the tokens whose centre
  ``(t + 0.5) / T`` falls in ``[lo, hi)`` (the last span also takes ``hi = 1``); spans are the temporal default, one
  window of the sequence per estimate;
* a pair with a ``lag`` and no span follows the public code (methods.md 2.4): the ``L`` distinct lags, sorted, are
  laid onto consecutive time segments, lag index ``l`` covering tokens ``[l*floor(T/L), (l+1)*floor(T/L))`` and the
  last segment running to ``T`` (when ``L > T`` each token averages the lags that fall onto it);
* a pair with neither (vector modalities, static estimates) is broadcast over all tokens.

``U[m, t]`` is the maximum, over the pairs containing ``m``, of that pair's unique term for ``m``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class InteractionRequest:
    """What a router needs estimated on the TRAIN split.

    ``lags``: ``"auto"`` = per-window (temporal) estimates on every pair of sequence modalities, static ones
    elsewhere; ``"static"`` = one static estimate per pair with the same estimator settings (capped steps,
    permutation null); ``()`` = the plain static BATCH estimate (no null); explicit lags = the step-wise lags of
    ``temporal_pid``.
    ``max_samples`` caps the training rows used (0 = the whole training split).
    """

    num_tokens: int
    lags: str | tuple[int, ...] = "auto"
    estimator: str = "auto"
    max_samples: int = 0
    seed: int = 0


@dataclass
class RoutingInteractions:
    """R/U/S on a router's token grid (bits) plus where they came from."""

    U: torch.Tensor  # [M, T]
    R: torch.Tensor  # [M, M, T]
    S: torch.Tensor  # [M, M, T]
    label_entropy: float  # H(Y) in bits on the rows the estimate used (thresholds are fractions of it)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    from_cache: bool = False


def label_entropy_bits(codes: np.ndarray) -> float:
    """Plug-in entropy (bits) of discrete label codes ``[N]`` (or rows of a 2-D array, each row one symbol)."""
    codes = np.asarray(codes)
    if codes.ndim > 1:
        _, codes = np.unique(codes.reshape(len(codes), -1), axis=0, return_inverse=True)
    _, counts = np.unique(codes.ravel(), return_counts=True)
    p = counts / max(counts.sum(), 1)
    return float(-(p * np.log2(p)).sum()) if len(p) > 1 else 0.0


def lag_to_token_weights(lags: list[int], num_tokens: int) -> torch.Tensor:
    """``W [L, T]``: how much lag index ``l`` contributes to token ``t`` (columns sum to 1)."""
    L, T = len(lags), num_tokens
    W = torch.zeros(L, T)
    if L == 0:
        return W
    if L <= T:
        seg = T // L
        for t in range(T):
            W[min(t // seg, L - 1), t] = 1.0
    else:
        for i in range(L):
            W[i, min(int(math.floor(i * T / L)), T - 1)] = 1.0
        W = W / W.sum(0, keepdim=True).clamp_min(1.0)
    return W


def span_to_token_weights(span: tuple[float, float], num_tokens: int) -> torch.Tensor:
    """``[T]`` indicator of the tokens whose centre ``(t + 0.5) / T`` lies in ``span = [lo, hi)`` (``hi >= 1``
    closes it)."""
    lo, hi = float(span[0]), float(span[1])
    centre = (torch.arange(num_tokens, dtype=torch.float32) + 0.5) / num_tokens
    inside = (centre >= lo) & ((centre < hi) | (hi >= 1.0))
    return inside.float()


def rus_tensors(
    pairs: list[dict[str, Any]], modality_names: list[str], num_tokens: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Build ``(U [M, T], R [M, M, T], S [M, M, T])`` from ``estimate_pairs`` dicts (see module docstring).

    Pairs naming unknown modalities are ignored; entries repeated for the same (pair, lag) are averaged;
    negative estimates are clipped at 0.
    """
    M, T = len(modality_names), num_tokens
    pos = {n: i for i, n in enumerate(modality_names)}
    lags = sorted({int(p["lag"]) for p in pairs if p.get("lag") is not None and p.get("span") is None})
    W = lag_to_token_weights(lags, T)  # [L, T]
    lag_idx = {lag: i for i, lag in enumerate(lags)}
    # accumulate per (a, b) pair: per-lag-token profile of R, S, Ua, Ub
    acc: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
    cnt: dict[tuple[int, int], torch.Tensor] = {}
    for p in pairs:
        a_name, b_name = p["modalities"]
        if a_name not in pos or b_name not in pos or a_name == b_name:
            continue
        a, b = pos[a_name], pos[b_name]
        lag, span = p.get("lag"), p.get("span")
        if span is not None:
            prof = span_to_token_weights(tuple(span), T)
        elif lag is not None:
            prof = W[lag_idx[int(lag)]]
        else:
            prof = torch.ones(T)
        key = (a, b) if a < b else (b, a)
        ua, ub = (float(p["U1"]), float(p["U2"])) if a < b else (float(p["U2"]), float(p["U1"]))
        vals = {"R": float(p["R"]), "S": float(p["S"]), "Ua": ua, "Ub": ub}
        slot = acc.setdefault(key, {k: torch.zeros(T) for k in vals})
        for k, v in vals.items():
            slot[k] += max(v, 0.0) * prof
        cnt[key] = cnt.get(key, torch.zeros(T)) + prof
    U = torch.zeros(M, T)
    R = torch.zeros(M, M, T)
    S = torch.zeros(M, M, T)
    for (a, b), slot in acc.items():
        c = cnt[(a, b)].clamp_min(1e-12)
        r, s, ua, ub = (slot[k] / c for k in ("R", "S", "Ua", "Ub"))
        R[a, b] = R[b, a] = r
        S[a, b] = S[b, a] = s
        U[a] = torch.maximum(U[a], ua)
        U[b] = torch.maximum(U[b], ub)
    return U, R, S
