"""Multimodal interaction quantification: redundancy R, uniqueness U1/U2 and synergy S (bits) of modality
pairs.

* :func:`pid_exact` / :func:`pid_from_joint` -- exact convex PID for discrete (or discretised low-dim) data;
* :func:`pid_batch` -- the neural BATCH estimator for high-dimensional continuous inputs;
* :func:`temporal_pid` -- R/U/S per time lag for sequence modalities (step-wise or one shared multi-scale
model);
* :func:`estimate_pairs` -- every modality pair of a :class:`~dain.data.spec.MultimodalDataset` (train split).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from dain.interactions.batch import batch_pid_groups, pid_batch
from dain.interactions.discretize import discretize, encode_discrete
from dain.interactions.exact import PIDResult, pid_exact, pid_from_joint
from dain.interactions.temporal import TemporalPIDResult, temporal_pid
from dain.interactions.windows import DEFAULT_WINDOWS, auto_batch_options, windowed_pid

__all__ = [
    "PIDResult",
    "TemporalPIDResult",
    "discretize",
    "estimate_pairs",
    "format_table",
    "pid_batch",
    "pid_exact",
    "pid_from_joint",
    "temporal_pid",
]

RESULT_KEYS = ("modalities", "lag", "R", "U1", "U2", "S", "total", "unique", "read_on")


def _target_codes(data: Any, rows: np.ndarray) -> np.ndarray:
    t = np.asarray(data.target)[rows]
    task = data.spec.task
    if task in ("binary", "multiclass"):
        return encode_discrete(np.rint(t).astype(np.int64))
    if task == "multilabel":
        return encode_discrete((np.asarray(t) > 0.5).astype(np.int64))
    return discretize(np.asarray(t, dtype=np.float64).reshape(len(t), -1), bins=4, method="quantile")


def _summary(data: Any, name: str, rows: np.ndarray) -> np.ndarray:
    """A per-sample feature vector for one modality (sequences: mean over observed steps + last step)."""
    spec = data.spec.modality(name)
    x = np.asarray(data.inputs[name])[rows]
    if spec.kind == "vector":
        return x.reshape(len(rows), -1)
    if spec.kind == "sequence":
        st = data.steps[name][rows] if name in data.steps else np.ones(x.shape[:2], dtype=bool)
        w = st[..., None].astype(np.float32)
        mean = (x * w).sum(1) / np.maximum(w.sum(1), 1.0)
        return np.concatenate([mean, x[:, -1]], 1)
    import torch

    pooled = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(np.ascontiguousarray(x)).float(), 4)
    return pooled.flatten(1).numpy()


def _batch_dict(r: PIDResult) -> dict[str, Any]:
    """``{atom}_raw`` / ``{atom}_se`` / ``{atom}_null`` of a BATCH result (empty for other estimators)."""
    out: dict[str, Any] = {}
    if "raw" in r.extras:
        for k in ("R", "U1", "U2", "S"):
            out[f"{k}_raw"] = float(r.extras["raw"][k])
            out[f"{k}_se"] = float(r.extras["se"][k])
            if "null" in r.extras:
                out[f"{k}_null"] = float(r.extras["null"][k])
    return out


def estimate_pairs(
    data: Any,
    modalities: Sequence[str] | None = None,
    lags: int | str | Iterable[int] | None = None,
    estimator: str = "auto",
    split: str = "train",
    seed: int = 0,
    progress: bool = True,
    *,
    fit_split: str | None = None,
    temporal_method: str = "stepwise",
    device: str = "cpu",
    max_exact_dims: int = 3,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """R/U1/U2/S/total (bits) for every pair of ``modalities`` (default: all) of ``data`` on one split.

    ``lags="auto"`` (the temporal default, :mod:`dain.interactions.windows`): two sequence modalities with a
    sequence-level label get one result per window of the sequence (``span`` = its fraction of the steps, ``lag`` =
    windows before the end), all windows from ONE shared BATCH model with a label-permutation null subtracted,
    standard errors and shrinkage towards the pair's mean (``{atom}_raw``, ``{atom}_se`` keep the unshrunk values);
    per-step labels (``data.info["step_labels"]``) use the lagged path with lags ``0..min(7, T-1)``; every other pair
    gets one null-corrected static estimate. ``num_windows`` (default 8) sets L. ``lags="static"``: that static
    estimate (same steps, same null) for every pair, sequences included -- the ablation of the windows alone.

    Only rows where both modalities are observed are used. Two sequence modalities with ``lags`` given get one
    result per lag (:func:`temporal_pid`; per-step labels from ``data.info["step_labels"]`` when present,
    else the
    sequence label); otherwise one result with ``lag`` None (sequences summarised by their mean and last
    step).
    ``estimator="auto"`` uses the exact estimator (discretised) when both inputs have at most
    ``max_exact_dims``
    features and BATCH otherwise. Returns dicts with keys ``modalities, lag, R, U1, U2, S, total``, ``unique``
    (U1 and U2 keyed by their modality) and ``read_on`` (which rows the estimate was read on, which it was fitted on).

    ``fit_split`` (BATCH): train the estimator's networks on that split's rows and read out on
    ``split``'s, e.g. ``fit_split="train", split="val"``: information the networks found in the training rows counts
    only as far as it holds on new rows. Default (or equal to ``split``): a held-out 20 % of ``split``'s rows. The
    exact estimator is a plug-in on ``split``'s rows. Lagged results (BATCH) follow the same rule with whole
    sequences held out (:func:`temporal_pid`).
    """
    if estimator not in ("auto", "exact", "batch"):
        raise ValueError(f"estimator must be auto, exact or batch, got {estimator!r}")
    auto = isinstance(lags, str)  # the defaults: capped BATCH steps and a permutation null on every pair
    if auto and lags not in ("auto", "static"):
        raise ValueError(f"lags must be 'auto', 'static', None, an int or a list of ints, got {lags!r}")
    windowed = lags == "auto"
    num_windows = int(kwargs.pop("num_windows", DEFAULT_WINDOWS))
    names = list(modalities) if modalities is not None else data.spec.modality_names
    for m in names:
        data.spec.modality(m)  # KeyError on unknown names
    if len(names) < 2:
        raise ValueError(f"need at least two modalities, got {names}")
    pairs = list(combinations(names, 2))
    split_rows = np.asarray(data.splits[split], dtype=np.int64)
    if fit_split == split:
        fit_split = None
    fit_rows_all = None if fit_split is None else np.asarray(data.splits[fit_split], dtype=np.int64)
    out: list[dict[str, Any]] = []
    it: Iterable[tuple[str, str]] = pairs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(pairs, desc="interactions", unit="pair")
    for a, b in it:
        ja, jb = data.spec.modality_names.index(a), data.spec.modality_names.index(b)
        rows = split_rows[data.mask[split_rows, ja] & data.mask[split_rows, jb]]
        if len(rows) < 10:
            continue
        sa, sb = data.spec.modality(a), data.spec.modality(b)
        both_seq = sa.kind == "sequence" and sb.kind == "sequence"
        if windowed and both_seq and data.info.get("step_labels") is None:
            out += _windowed_pair(
                data, (a, b), rows, fit_rows_all, split, fit_split, estimator, num_windows, seed, device, kwargs
            )
            continue
        pair_lags: Any = lags
        if auto:
            pair_lags = list(range(min(num_windows, sa.shape[0], sb.shape[0]))) if windowed and both_seq else None
        extra: list[dict[str, Any]] = []
        if pair_lags is not None and both_seq:
            step = data.info.get("step_labels")
            est = estimator
            if est == "auto":
                est = "exact" if max(sa.shape[-1], sb.shape[-1]) <= max_exact_dims else "batch"
            # BATCH: networks trained on fit_split's sequences (default: 80 % of split's), read out on split's
            fit_rows = np.zeros(0, dtype=np.int64)
            if est == "batch" and fit_rows_all is not None:
                fit_rows = fit_rows_all[data.mask[fit_rows_all, ja] & data.mask[fit_rows_all, jb]]
            both = np.concatenate([fit_rows, rows])
            y = np.asarray(step)[both] if step is not None else _target_codes(data, both)
            res: list[PIDResult] = temporal_pid(
                data.inputs[a][both],
                data.inputs[b][both],
                y,
                pair_lags,
                method=temporal_method if est == "batch" else "stepwise",
                estimator=est,
                seed=seed,
                device=device,
                **({"eval_samples": np.arange(len(fit_rows), len(both))} if len(fit_rows) else {}),
                **kwargs,
            )
            if est == "exact":
                read_on = f"{split} (plug-in on its rows)"
            elif len(fit_rows):
                read_on = f"{split} ({len(rows)} sequences; BATCH fitted on {fit_split}, {len(fit_rows)} sequences)"
            else:
                read_on = f"{split} (a held-out 20% of its sequences; BATCH fitted on the other 80%)"
        else:
            x1, x2, y = _summary(data, a, rows), _summary(data, b, rows), _target_codes(data, rows)
            est = estimator
            if est == "auto":
                est = "exact" if max(x1.shape[1], x2.shape[1]) <= max_exact_dims else "batch"
            batch_kw = {k: v for k, v in kwargs.items() if k != "bins"}
            if auto:  # the default: capped steps and a permutation null, as for the windowed pairs
                batch_kw = {**auto_batch_options(int(0.8 * len(rows))), **batch_kw}
            if est == "exact":
                r = pid_exact(x1, x2, y, seed=seed, **{k: v for k, v in kwargs.items() if k == "bins"})
                read_on = f"{split} (plug-in on its {len(rows)} rows)"
            elif fit_rows_all is not None:
                fit_rows = fit_rows_all[data.mask[fit_rows_all, ja] & data.mask[fit_rows_all, jb]]
                both = np.concatenate([fit_rows, rows])
                x1, x2, y = _summary(data, a, both), _summary(data, b, both), _target_codes(data, both)
                ev = np.arange(len(fit_rows), len(both))
                r = batch_pid_groups(x1, x2, y, None, seed=seed, device=device, eval_index=ev, **batch_kw)[0]
                read_on = f"{split} ({len(rows)} rows; BATCH fitted on {fit_split}, {len(fit_rows)} rows)"
            else:
                r = batch_pid_groups(x1, x2, y, None, seed=seed, device=device, **batch_kw)[0]
                read_on = f"{split} (held-out 20% of its rows; BATCH fitted on the other 80%)"
            res = [r]
            extra = [_batch_dict(r)]
        for r in res:
            out.append(
                {
                    "modalities": [a, b],
                    "lag": r.lag,
                    "R": r.R,
                    "U1": r.U1,
                    "U2": r.U2,
                    "S": r.S,
                    "total": r.total,
                    "unique": {a: r.U1, b: r.U2},
                    "read_on": read_on,
                    **(extra[0] if extra else {}),
                }
            )
    return out


def _windowed_pair(
    data: Any,
    pair: tuple[str, str],
    rows: np.ndarray,
    fit_rows_all: np.ndarray | None,
    split: str,
    fit_split: str | None,
    estimator: str,
    num_windows: int,
    seed: int,
    device: str,
    kwargs: dict[str, Any],
) -> list[dict[str, Any]]:
    """``lags="auto"`` on two sequence modalities: :func:`dain.interactions.windows.windowed_pid` on ``rows``
    (BATCH read out on a held-out 20 %, or fitted on ``fit_split``'s rows and read out on all of ``rows``)."""
    a, b = pair
    names = data.spec.modality_names
    ja, jb = names.index(a), names.index(b)
    est = "batch" if estimator == "auto" else estimator
    eval_rows = None
    all_rows = rows
    read_on = f"{split} (held-out 20% of its rows; one BATCH model for all windows fitted on the other 80%)"
    if est == "exact":
        read_on = f"{split} (plug-in per window on its {len(rows)} rows)"
    elif fit_rows_all is not None:
        fit_rows = fit_rows_all[data.mask[fit_rows_all, ja] & data.mask[fit_rows_all, jb]]
        all_rows = np.concatenate([fit_rows, rows])
        eval_rows = np.arange(len(fit_rows), len(all_rows))
        read_on = f"{split} ({len(rows)} rows; BATCH fitted on {fit_split}, {len(fit_rows)} rows)"

    def steps(m: str) -> np.ndarray | None:
        return data.steps[m][all_rows] if m in data.steps else None

    res = windowed_pid(
        data.inputs[a][all_rows],
        data.inputs[b][all_rows],
        _target_codes(data, all_rows),
        steps(a),
        steps(b),
        num_windows=num_windows,
        estimator=est,
        eval_rows=eval_rows,
        seed=seed,
        device=device,
        **{k: v for k, v in kwargs.items() if est == "exact" or k != "bins"},
    )
    return [{"modalities": [a, b], **r, "unique": {a: r["U1"], b: r["U2"]}, "read_on": read_on} for r in res]


def format_table(results: list[dict[str, Any]], split: str) -> str:
    """``estimate_pairs`` results as the text table ``dain interactions`` prints: R, U(a), U(b), S and total per
    pair and lag, in bits, and the rows each was read on (``split`` when the results name none)."""
    lines = [f"{'pair a/b':<24}{'lag':>5}{'R':>8}{'U(a)':>8}{'U(b)':>8}{'S':>8}{'total':>8}"]
    for r in results:
        lag = "-" if r["lag"] is None else str(r["lag"])
        lines.append(
            f"{'/'.join(r['modalities']):<24}{lag:>5}"
            + "".join(f"{r[k]:>8.3f}" for k in ("R", "U1", "U2", "S", "total"))
        )
    read_on = sorted({r["read_on"] for r in results})
    return "\n".join(lines) + "\n(bits; read on " + "; ".join(read_on or [split]) + ")"
