"""Temporal PID: R(τ), U1(τ), U2(τ), S(τ) between two sequence modalities and a label, per lag τ.

Pairing rule (as in Time-MoE/MERGE's step-wise estimator, methods.md 2.2): for a *per-step* label ``y[N,
T]`` lag
τ pools the pairs ``((x1[:, t-τ], x2[:, t-τ]), y[:, t])`` over samples and all valid t (past sources, present
target; no conditioning on Y^{t-1}). For a *sequence-level* label ``y[N]`` lag τ uses the features of the
window
of ``window`` steps ending τ steps before the end, ``mean(x[:, T-τ-window : T-τ])``, paired with ``y``.

Methods: ``"stepwise"`` fits one estimator per lag; ``"shared"`` fits ONE BATCH model for all lags (lag
one-hot
appended to the inputs of the discriminators and alignment nets, batches within one lag, read-out per lag);
this is
the multi-scale variant. ``"both"`` runs the two and returns the shared results with ``reference`` (step-wise
results) and ``cost_ratio`` = step-wise seconds / shared seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from dain.interactions.exact import PIDResult


class TemporalPIDResult(list):
    """A list of per-lag :class:`PIDResult` (``.lag`` set) with run metadata."""

    def __init__(
        self, items: Iterable[PIDResult] = (), *, method: str = "", estimator: str = "", seconds: float = 0.0
    ) -> None:
        super().__init__(items)
        self.method = method
        self.estimator = estimator
        self.seconds = seconds
        self.cost_ratio: float | None = None
        self.reference: TemporalPIDResult | None = None

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self]


def _lags(lags: int | Iterable[int]) -> list[int]:
    out = list(range(int(lags) + 1)) if isinstance(lags, (int, np.integer)) else [int(v) for v in lags]
    if not out or min(out) < 0:
        raise ValueError(f"lags must be non-negative, got {out}")
    return out


def lagged_pairs(
    x1: np.ndarray, x2: np.ndarray, y: np.ndarray, lag: int, window: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled (x1, x2, y) samples for one lag (see the module docstring for the pairing rule)."""
    x1, x2, y = np.asarray(x1), np.asarray(x2), np.asarray(y)
    if x1.ndim != 3 or x2.ndim != 3 or x1.shape[:2] != x2.shape[:2]:
        raise ValueError(f"x1, x2 must be [N, T, D] with equal N, T; got {x1.shape}, {x2.shape}")
    n, t = x1.shape[:2]
    if lag >= t:
        raise ValueError(f"lag {lag} needs sequences longer than {t} steps")
    if y.ndim == 2:
        if y.shape != (n, t):
            raise ValueError(f"per-step labels must be [N, T] = {(n, t)}, got {y.shape}")
        return (
            x1[:, : t - lag].reshape(-1, x1.shape[2]),
            x2[:, : t - lag].reshape(-1, x2.shape[2]),
            y[:, lag:].reshape(-1),
        )
    lo = max(0, t - lag - window)
    hi = t - lag
    if window == 1:
        return x1[:, hi - 1], x2[:, hi - 1], y
    return x1[:, lo:hi].mean(1), x2[:, lo:hi].mean(1), y


def _subsample(m: int, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    if cap is None or m <= cap:
        return np.arange(m)
    return np.sort(rng.choice(m, cap, replace=False))


def temporal_pid(
    x1: np.ndarray,
    x2: np.ndarray,
    y: np.ndarray,
    lags: int | Iterable[int] = 5,
    method: str = "stepwise",
    estimator: str = "batch",
    *,
    window: int = 1,
    max_samples: int | None = 20000,
    shared_samples: int | None = None,
    bins: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    eval_samples: np.ndarray | None = None,
    **batch_kwargs: Any,
) -> TemporalPIDResult:
    """Per-lag PID of sequences ``x1[N, T, D1]``, ``x2[N, T, D2]`` with ``y[N, T]`` or ``y[N]``.

    ``lags``: an int L (lags 0..L) or explicit lags. ``max_samples`` caps the pooled samples of each step-wise fit;
    the shared model sees ``shared_samples`` pooled samples in total (default ``2 * max_samples``, split evenly over
    lags). ``estimator="exact"`` (discretised plug-in, step-wise only) or ``"batch"``. BATCH reads out on the steps
    of the samples ``eval_samples`` (indices into N; default a random 20 % of the samples) and trains its networks on
    the other samples' steps: whole sequences are held out, so no sequence is on both sides.
    """
    from dain.interactions.batch import batch_pid_groups, pid_batch
    from dain.interactions.exact import pid_exact

    lag_list = _lags(lags)
    if method not in ("stepwise", "shared", "both"):
        raise ValueError(f"method must be stepwise, shared or both, got {method!r}")
    if estimator not in ("batch", "exact"):
        raise ValueError(f"estimator must be batch or exact, got {estimator!r}")
    if method != "stepwise" and estimator != "batch":
        raise ValueError("the shared (multi-scale) temporal estimator needs estimator='batch'")
    rng = np.random.default_rng(seed)
    n = len(x1)
    held = np.zeros(n, dtype=bool)
    if eval_samples is None:
        held[np.random.default_rng(seed).permutation(n)[: max(1, int(round(0.2 * n)))]] = True
    else:
        held[np.asarray(eval_samples, dtype=np.int64)] = True

    def eval_rows(pooled: int, keep: np.ndarray) -> np.ndarray:
        """Positions in ``keep`` (of ``pooled`` lagged samples, sample-major) that belong to held-out samples."""
        return np.flatnonzero(np.repeat(held, pooled // n)[keep])

    def usable(ev: np.ndarray, m: int) -> np.ndarray | None:  # both sides need rows (else BATCH's own hold-out)
        return ev if 0 < len(ev) < m else None

    def stepwise() -> TemporalPIDResult:
        t0 = time.perf_counter()
        out = []
        it: Iterable[int] = lag_list
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(lag_list, desc="temporal PID (step-wise)", leave=False)
        for lag in it:
            a1, a2, yy = lagged_pairs(x1, x2, y, lag, window)
            keep = _subsample(len(yy), max_samples, rng)
            if estimator == "exact":
                r = pid_exact(a1[keep], a2[keep], yy[keep], bins=bins, seed=seed)
            else:
                ev = usable(eval_rows(len(yy), keep), len(keep))
                r = pid_batch(a1[keep], a2[keep], yy[keep], seed=seed, device=device, eval_index=ev, **batch_kwargs)
            r.lag = lag
            out.append(r)
        return TemporalPIDResult(out, method="stepwise", estimator=estimator, seconds=time.perf_counter() - t0)

    def shared() -> TemporalPIDResult:
        t0 = time.perf_counter()
        total = shared_samples if shared_samples is not None else (2 * max_samples if max_samples else None)
        per_lag = None if total is None else max(1, total // len(lag_list))
        parts1, parts2, parts_y, groups, evals, offset = [], [], [], [], [], 0
        for gi, lag in enumerate(lag_list):
            a1, a2, yy = lagged_pairs(x1, x2, y, lag, window)
            keep = _subsample(len(yy), per_lag, rng)
            evals.append(offset + eval_rows(len(yy), keep))
            offset += len(keep)
            parts1.append(a1[keep].reshape(len(keep), -1))
            parts2.append(a2[keep].reshape(len(keep), -1))
            parts_y.append(yy[keep])
            groups.append(np.full(len(keep), gi))
        res = batch_pid_groups(
            np.concatenate(parts1),
            np.concatenate(parts2),
            np.concatenate(parts_y),
            np.concatenate(groups),
            seed=seed,
            device=device,
            progress=progress,
            eval_index=usable(np.concatenate(evals), offset),
            **batch_kwargs,
        )
        for r, lag in zip(res, lag_list):
            r.lag = lag
        return TemporalPIDResult(res, method="shared", estimator="batch", seconds=time.perf_counter() - t0)

    if method == "stepwise":
        return stepwise()
    if method == "shared":
        return shared()
    ref = stepwise()
    out = shared()
    out.reference = ref
    out.cost_ratio = ref.seconds / max(out.seconds, 1e-9)
    return out
