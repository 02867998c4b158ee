"""R/U/S for interaction-aware routers, computed once per training split by the harness and cached on disk.

A model that routes on interactions declares what it needs (``model.interaction_request()`` ->
:class:`~dain.interactions.routing.InteractionRequest`, or None); :func:`provide_interactions` estimates it on the
TRAIN split only (:func:`dain.interactions.estimate_pairs` on a dataset copy whose val/test splits are empty), caches
the pairs and the label entropy as JSON, and hands the model its tensors with ``model.set_interactions(U, R, S,
label_entropy=...)``. The model itself never estimates and never touches the disk.

Cache files live under ``dain.data.paths.cache_dir() / "interactions"`` unless told otherwise, one per key: sha256 of
the dataset name, the training indices used and those rows' contents, the modality shapes, the request's options and
:data:`ESTIMATOR_VERSION`
(bump it when the estimator's output changes). The token grid (``num_tokens``) is not part of the key: the tensors
are rebuilt from the cached pairs for any grid.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dain.data.paths import atomic_write, cache_dir
from dain.data.spec import MultimodalDataset
from dain.interactions.routing import InteractionRequest, RoutingInteractions, label_entropy_bits, rus_tensors

ESTIMATOR_VERSION = "windows-batch-null-shrink-1"


def _options(request: InteractionRequest) -> dict[str, Any]:
    lags = request.lags if isinstance(request.lags, str) else [int(v) for v in request.lags]
    return {
        "lags": lags,
        "estimator": request.estimator,
        "max_samples": int(request.max_samples),
        "seed": int(request.seed),
        "version": ESTIMATOR_VERSION,
    }


def cache_key(data: MultimodalDataset, train_idx: np.ndarray, options: dict[str, Any]) -> str:
    """sha256 of (dataset name, train indices, the training rows' values, masks and labels, modality shapes, options
    incl. the estimator version): two loads of one dataset with different options (imputation, encodings) never
    share an entry."""
    h = hashlib.sha256()
    h.update(data.spec.name.encode())
    rows = np.ascontiguousarray(np.asarray(train_idx, dtype=np.int64))
    h.update(rows.tobytes())
    for name in data.spec.modality_names:
        h.update(np.ascontiguousarray(np.asarray(data.inputs[name])[rows]).tobytes())
        if name in data.steps:
            h.update(np.ascontiguousarray(np.asarray(data.steps[name])[rows]).tobytes())
    h.update(np.ascontiguousarray(np.asarray(data.mask)[rows]).tobytes())
    h.update(np.ascontiguousarray(np.asarray(data.target)[rows]).tobytes())
    shapes = [[m.name, m.kind, list(m.shape)] for m in data.spec.modalities]
    h.update(json.dumps({"shapes": shapes, "options": options}, sort_keys=True, default=str).encode())
    return h.hexdigest()


def train_rows(data: MultimodalDataset, max_samples: int, seed: int) -> np.ndarray:
    """The training indices used: all of them, or a seeded sorted subsample of ``max_samples`` when that is > 0."""
    idx = np.asarray(data.splits["train"], dtype=np.int64)
    if 0 < max_samples < len(idx):
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=max_samples, replace=False))
    return idx


def train_only(data: MultimodalDataset, rows: np.ndarray) -> MultimodalDataset:
    """A shallow copy of ``data`` whose train split is ``rows`` and whose val/test splits are empty."""
    empty = np.zeros(0, dtype=np.int64)
    return dataclasses.replace(data, splits={"train": np.asarray(rows, dtype=np.int64), "val": empty, "test": empty})


def _estimate(data: MultimodalDataset, **kwargs: Any) -> list[dict[str, Any]]:
    """Indirection over ``dain.interactions.estimate_pairs`` (imported lazily; patched in tests)."""
    from dain.interactions import estimate_pairs

    return estimate_pairs(data, **kwargs)


def _label_entropy(data: MultimodalDataset, rows: np.ndarray) -> float:
    from dain.interactions import _target_codes

    return label_entropy_bits(_target_codes(data, rows)) if len(rows) else 0.0


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.generic, torch.Tensor)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def routing_interactions(
    data: MultimodalDataset,
    request: InteractionRequest,
    cache_root: str | Path | None = None,
    progress: bool = True,
) -> RoutingInteractions:
    """R/U/S of ``data``'s TRAIN split for ``request``, on its token grid; from the JSON cache when the key matches.

    ``cache_root``: the folder for cache files (default ``cache_dir() / "interactions"``). ``progress``: a log line
    on stderr before and after an estimation (and the estimator's bars on a terminal)."""
    rows = train_rows(data, request.max_samples, request.seed)
    options = _options(request)
    key = cache_key(data, rows, options)
    root = Path(cache_root) if cache_root is not None else cache_dir() / "interactions"
    path = root / f"{data.spec.name}_{key[:24]}.json"
    names = data.spec.modality_names
    if path.is_file():
        try:
            blob = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            blob = {}
        if blob.get("key") == key:
            U, R, S = rus_tensors(blob["pairs"], names, request.num_tokens)
            return RoutingInteractions(
                U, R, S, float(blob["label_entropy"]), blob["pairs"], float(blob.get("seconds", 0.0)), True
            )
    if progress:
        print(f"interactions: estimating R/U/S on {len(rows)} training rows of {data.spec.name}", file=sys.stderr)
    t0 = time.perf_counter()
    sub = train_only(data, rows)
    lags = request.lags if isinstance(request.lags, str) else (list(request.lags) or None)
    # the estimator seeds and draws from torch's global generator: fork it, so that training starts from the same
    # random state whether the estimate was computed here or read from the cache (a saved config rebuilds its run)
    with torch.random.fork_rng(devices=[]):
        pairs = _estimate(
            sub,
            lags=lags,
            estimator=request.estimator,
            split="train",
            seed=request.seed,
            progress=progress and sys.stderr.isatty(),
        )
    pairs = [_jsonable(p) for p in pairs]
    seconds = time.perf_counter() - t0
    h_y = _label_entropy(data, rows)
    if progress:
        print(f"interactions: {len(pairs)} estimates in {seconds:.1f}s (H(Y) = {h_y:.3f} bits)", file=sys.stderr)
    root.mkdir(parents=True, exist_ok=True)
    blob = {
        "key": key,
        "dataset": data.spec.name,
        "options": options,
        "rows": int(len(rows)),
        "label_entropy": h_y,
        "seconds": seconds,
        "pairs": pairs,
    }
    text = json.dumps(blob)
    atomic_write(path, lambda tmp: tmp.write_text(text))
    U, R, S = rus_tensors(pairs, names, request.num_tokens)
    return RoutingInteractions(U, R, S, h_y, pairs, seconds, False)


def provide_interactions(
    model: Any, data: MultimodalDataset, cache_root: str | Path | None = None, progress: bool = True
) -> RoutingInteractions | None:
    """Give ``model`` the interactions it asks for: a no-op (None) unless it has ``interaction_request()`` and
    that returns an :class:`InteractionRequest`; then ``model.set_interactions(U, R, S, label_entropy=...)``."""
    ask = getattr(model, "interaction_request", None)
    if not callable(ask):
        return None
    request = ask()
    if request is None:
        return None
    if not isinstance(request, InteractionRequest):
        raise TypeError(f"interaction_request() must return an InteractionRequest or None, got {type(request)}")
    ri = routing_interactions(data, request, cache_root, progress=progress)
    model.set_interactions(ri.U, ri.R, ri.S, label_entropy=ri.label_entropy)
    return ri
