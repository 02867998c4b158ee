"""Windowed (temporal) R/U/S for two sequence modalities with a sequence-level label: the ``lags="auto"`` default.

The sequence is cut into ``L`` windows, window ``w`` covering the steps ``[floor(w*T/L), floor((w+1)*T/L))`` --
fraction ``[w/L, (w+1)/L)`` of the sequence. Each sample's features in a window are the mean over the steps observed
in it (``steps`` masks; every step when there are none) plus, for masked modalities, the fraction of its steps that
were observed, so an empty window does not read as zeros. ONE BATCH model is fitted on all windows at once
(:func:`~dain.interactions.batch.batch_pid_groups` with groups = window index, so the networks are shared and the
read-out is per window); whole samples are held out, never single windows of a sample that is also fitted on.

Small samples: the BATCH read-out is a mean of per-sample KL terms, which cannot be negative, so chance structure
reads as information. The estimate subtracts a label-permutation null (same networks, same steps, labels permuted
within each window) and gives every window's atoms a standard error from the spread of the per-sample read-out
terms plus the window-to-window spread of the null profile (the networks' fitting noise, which the read-out
alone does not see). :func:`shrink_profile` then pulls each window's value towards the precision-weighted mean over
windows (empirical Bayes): a profile whose window-to-window spread is no larger than its noise collapses to the
pair's mean; a real difference between windows survives.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

ATOMS = ("R", "U1", "U2", "S")
DEFAULT_WINDOWS = 8


def window_bounds(num_steps: int, num_windows: int) -> list[tuple[int, int]]:
    """Step ranges ``[lo, hi)`` of ``num_windows`` consecutive windows over ``num_steps`` steps."""
    L = max(1, min(int(num_windows), int(num_steps)))
    return [((w * num_steps) // L, ((w + 1) * num_steps) // L) for w in range(L)]


def window_features(x: np.ndarray, steps: np.ndarray | None, num_windows: int) -> np.ndarray:
    """``[N, L, D(+1)]`` per-window features of ``x [N, T, D]``: the mean over observed steps and, when ``steps
    [N, T]`` is given, the fraction of the window's steps that were observed (0 features for an empty window)."""
    x = np.asarray(x, dtype=np.float32)
    n, t = x.shape[:2]
    obs = np.ones((n, t), dtype=bool) if steps is None else np.asarray(steps, dtype=bool)
    out = []
    for lo, hi in window_bounds(t, num_windows):
        w = obs[:, lo:hi, None].astype(np.float32)
        cnt = w.sum(1)
        feat = (x[:, lo:hi] * w).sum(1) / np.maximum(cnt, 1.0)
        if steps is not None:
            feat = np.concatenate([feat, cnt / (hi - lo)], 1)
        out.append(feat)
    return np.stack(out, 1)


def shrink_profile(raw: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Empirical-Bayes shrinkage of per-window values towards their precision-weighted mean.

    ``tau2 = max(0, var(raw) - mean(se**2))`` is the between-window variance beyond noise;
    ``shrunk = mean + tau2 / (tau2 + se**2) * (raw - mean)``. Returns ``(shrunk, mean, tau2)``."""
    raw = np.asarray(raw, dtype=np.float64)
    se2 = np.maximum(np.asarray(se, dtype=np.float64) ** 2, 1e-12)
    if len(raw) < 2:
        return raw.copy(), float(raw.mean()) if len(raw) else 0.0, 0.0
    mean = float((raw / se2).sum() / (1.0 / se2).sum())
    tau2 = max(0.0, float(raw.var(ddof=1)) - float(se2.mean()))
    return mean + tau2 / (tau2 + se2) * (raw - mean), mean, tau2


def auto_batch_options(n_samples: int) -> dict[str, Any]:
    """BATCH settings of the default: batches of at most 256 and at least ~8 per epoch on small data, and capped
    optimisation steps (every row is still read out) so that ~10k training rows x 8 windows stay cheap."""
    return {
        "batch_size": int(min(256, max(16, n_samples // 8))),
        "discrim_steps": 300,
        "align_steps": 40,
        "sinkhorn_iters": 30,
        "null": True,
    }


def windowed_pid(
    x1: np.ndarray,
    x2: np.ndarray,
    y: np.ndarray,
    steps1: np.ndarray | None = None,
    steps2: np.ndarray | None = None,
    *,
    num_windows: int = DEFAULT_WINDOWS,
    estimator: str = "batch",
    holdout: float = 0.2,
    eval_rows: np.ndarray | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    **batch_kwargs: Any,
) -> list[dict[str, Any]]:
    """Per-window R/U1/U2/S (bits) of ``x1 [N, T, D1]``, ``x2 [N, T, D2]`` and a sequence-level label ``y [N]``.

    Returns one dict per window ``w`` (of ``L = min(num_windows, T)``): ``span = [w/L, (w+1)/L]``, ``lag = L-1-w``
    (windows before the end), the shrunk atoms ``R, U1, U2, S`` (clipped at 0) and ``total``; for BATCH also
    ``{atom}_raw`` (null-corrected, unshrunk), ``{atom}_se``, ``{atom}_null`` and the pair-level ``{atom}_mean`` /
    ``{atom}_tau2`` of the shrinkage. ``estimator="exact"`` fits a discretised plug-in per window (no shrinkage).
    ``eval_rows`` (BATCH): the samples to read out on (bool ``[N]`` or indices; the networks are fitted on the
    others); default a random ``holdout`` share of the samples. ``batch_kwargs`` override
    :func:`auto_batch_options`."""
    from dain.interactions.batch import batch_pid_groups
    from dain.interactions.exact import pid_exact

    t0 = time.perf_counter()
    n, t = np.asarray(x1).shape[:2]
    if np.asarray(x2).shape[:2] != (n, t):
        raise ValueError(f"x1, x2 must share [N, T]; got {np.asarray(x1).shape}, {np.asarray(x2).shape}")
    f1, f2 = window_features(x1, steps1, num_windows), window_features(x2, steps2, num_windows)
    L = f1.shape[1]
    y = np.asarray(y).reshape(n, -1)
    if y.shape[1] > 1:  # several label columns: one code per row
        _, y = np.unique(y, axis=0, return_inverse=True)
    y = y.ravel()
    spans = [[w / L, (w + 1) / L] for w in range(L)]
    out: list[dict[str, Any]] = []
    if estimator == "exact":
        for w in range(L):
            r = pid_exact(f1[:, w], f2[:, w], y, seed=seed, **{k: v for k, v in batch_kwargs.items() if k == "bins"})
            d = {a: getattr(r, a) for a in ATOMS}
            out.append({"span": spans[w], "lag": L - 1 - w, **d, "total": r.total, "n_train": n})
        secs = time.perf_counter() - t0
        for d in out:
            d["seconds"] = secs
        return out
    rng = np.random.default_rng(seed)
    if eval_rows is None:
        ho_rows = rng.permutation(n)[: max(1, int(round(holdout * n)))]
    else:
        ev = np.asarray(eval_rows)
        ho_rows = np.flatnonzero(ev) if ev.dtype == bool else ev.astype(np.int64)
    # sample index of (row i, window w) is w * n + i
    eval_index = (np.arange(L)[:, None] * n + ho_rows[None, :]).ravel()
    opts = {**auto_batch_options(n * L - len(eval_index)), **batch_kwargs}
    res = batch_pid_groups(
        f1.transpose(1, 0, 2).reshape(n * L, -1),
        f2.transpose(1, 0, 2).reshape(n * L, -1),
        np.tile(y, L),
        np.repeat(np.arange(L), n),
        seed=seed,
        device=device,
        progress=progress,
        eval_index=eval_index,
        **opts,
    )
    raw = {a: np.array([r.extras["raw"][a] for r in res]) for a in ATOMS}
    se = {a: np.array([r.extras["se"][a] for r in res]) for a in ATOMS}
    if L > 1 and "null" in res[0].extras:
        # The read-out SE misses the networks' fitting noise. The null profile is pure noise of the same estimator
        # (same networks, steps, rows), so its spread over windows measures that noise; it enters twice (the
        # fitted run's own noise, and the subtracted null's).
        for a in ATOMS:
            nul = np.array([r.extras["null"][a] for r in res])
            se[a] = np.sqrt(se[a] ** 2 + 2.0 * float(nul.var(ddof=1)))
    shrunk, means, taus = {}, {}, {}
    for a in ATOMS:
        shrunk[a], means[a], taus[a] = shrink_profile(raw[a], se[a])
    secs = time.perf_counter() - t0
    for w, r in enumerate(res):
        d: dict[str, Any] = {"span": spans[w], "lag": L - 1 - w}
        for a in ATOMS:
            d[a] = max(0.0, float(shrunk[a][w]))
        d["total"] = r.total
        for a in ATOMS:
            d[f"{a}_raw"] = float(raw[a][w])
            d[f"{a}_se"] = float(se[a][w])
            d[f"{a}_null"] = float(r.extras.get("null", {}).get(a, 0.0))
            d[f"{a}_mean"] = float(means[a])
            d[f"{a}_tau2"] = float(taus[a])
        d["n_train"], d["n_eval"], d["seconds"] = int(r.extras["n_train"]), int(r.extras["n_eval"]), secs
        out.append(d)
    return out
