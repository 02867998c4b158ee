"""Turning temporal PID estimates into the Time-MoE router tensors, with an on-disk cache.

``dain.interactions.estimate_pairs`` returns one dict per (modality pair, lag)::

    {"modalities": [a, b], "lag": int | None, "R": .., "U1": .., "U2": .., "S": .., "total": ..}   # bits

:func:`rus_tensors` maps them to ``U [M, T]`` and symmetric ``R, S [M, M, T]`` on the model's token grid of
``T`` steps, following the public code (methods.md 2.4): the ``L`` distinct lags, sorted, are laid onto
consecutive time segments, lag index ``l`` covering tokens ``[l*floor(T/L), (l+1)*floor(T/L))`` and the last
segment running to ``T`` (when ``L > T`` each token averages the lags that fall onto it); a lag of ``None``
(vector modalities) is broadcast over all tokens. ``U[m, t]`` is the maximum, over the pairs containing
``m``, of that pair's unique term for ``m``.

:func:`load_or_compute_pairs` runs the estimator on (a seeded subsample of) the TRAIN split only and caches
the result as JSON keyed on a hash of (dataset name, train indices, modality shapes, options).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dain.data.paths import atomic_write
from dain.data.spec import MultimodalDataset


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


def rus_tensors(
    pairs: list[dict[str, Any]], modality_names: list[str], num_tokens: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Build ``(U [M, T], R [M, M, T], S [M, M, T])`` from ``estimate_pairs`` dicts (see module docstring).

    Pairs naming unknown modalities are ignored; entries repeated for the same (pair, lag) are averaged;
    negative estimates are clipped at 0.
    """
    M, T = len(modality_names), num_tokens
    pos = {n: i for i, n in enumerate(modality_names)}
    lags = sorted({int(p["lag"]) for p in pairs if p.get("lag") is not None})
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
        lag = p.get("lag")
        prof = torch.ones(T) if lag is None else W[lag_idx[int(lag)]]
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


def cache_key(data: MultimodalDataset, train_idx: np.ndarray, options: dict[str, Any]) -> str:
    """sha256 of (dataset name, train indices, modality shapes, options)."""
    h = hashlib.sha256()
    h.update(data.spec.name.encode())
    h.update(np.ascontiguousarray(np.asarray(train_idx, dtype=np.int64)).tobytes())
    shapes = [[m.name, m.kind, list(m.shape)] for m in data.spec.modalities]
    h.update(json.dumps({"shapes": shapes, "options": options}, sort_keys=True, default=str).encode())
    return h.hexdigest()


def subsample_train(data: MultimodalDataset, max_samples: int, seed: int) -> np.ndarray:
    """Seeded subsample (sorted) of at most ``max_samples`` train indices (all of them if ``max_samples <=
    0``)."""
    idx = np.asarray(data.splits["train"], dtype=np.int64)
    if 0 < max_samples < len(idx):
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=max_samples, replace=False))
    return idx


def _estimate(data: MultimodalDataset, **kwargs: Any) -> list[dict[str, Any]]:
    """Indirection over ``dain.interactions.estimate_pairs`` (imported lazily; patched in tests)."""
    from dain.interactions import estimate_pairs

    return estimate_pairs(data, **kwargs)


def load_or_compute_pairs(
    data: MultimodalDataset,
    cache_dir: str | Path | None,
    lags: list[int] | None,
    estimator: str = "auto",
    max_samples: int = 512,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], bool]:
    """RUS pairs on the TRAIN split (subsampled), from the JSON cache when the key matches.

    Returns ``(pairs, from_cache)``. Only the train rows are handed to the estimator: the dataset copy given
    to it has its ``train`` split replaced by the subsample and its val/test splits emptied.
    """
    train_idx = subsample_train(data, max_samples, seed)
    options = {
        "lags": None if lags is None else [int(x) for x in lags],
        "estimator": estimator,
        "max_samples": int(max_samples),
        "seed": int(seed),
    }
    key = cache_key(data, train_idx, options)
    path = Path(cache_dir) / f"timemoe_rus_{key[:20]}.json" if cache_dir is not None else None
    if path is not None and path.is_file():
        blob = json.loads(path.read_text())
        if blob.get("key") == key:
            return blob["pairs"], True
    empty = np.zeros(0, dtype=np.int64)
    sub = dataclasses.replace(data, splits={"train": train_idx, "val": empty, "test": empty})
    pairs = _estimate(sub, lags=options["lags"], estimator=estimator, split="train", seed=seed, progress=False)
    pairs = [_jsonable(p) for p in pairs]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = json.dumps({"key": key, "dataset": data.spec.name, "options": options, "pairs": pairs})
        atomic_write(path, lambda tmp: tmp.write_text(blob))
    return pairs, False


def _jsonable(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in p.items():
        if isinstance(v, (np.generic, torch.Tensor)):
            v = v.item()
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out
