"""Synthetic bring-your-own folders of shapes none of the registered datasets has, for the defaults' robustness and
run time on data dain has never seen (not for accuracy claims: the signals are made up, see each folder's comment).

  A_binary_highdim   binary, 5000 rows, vectors of 2000 and 50 columns (signal: 10 columns of the wide one + a
                     product of two narrow ones)
  B_30class          30 classes, 3000 rows, two noisy class-prototype vectors (100 and 20 columns)
  C_longseq          4 classes, 600 rows, a 500-step sequence of 6 channels (class = frequency) + a vector
  D_regression       regression, 2000 rows, three vectors (a linear term + a cross-modality product)
  E_image            10 classes, 2000 rows, a 1x28x28 "image" (a class template under 3x pixel noise, no spatial
                     structure) + a vector carrying the class's parity
  F_many_missing     binary, 1000 rows, 12 vectors of 5 columns, each absent for ~30% of rows (mask.npy; NaN there),
                     the label a noisy sum over all twelve (every modality adds a little)
  G_omics_wide       binary, 600 rows, vectors of 8000, 2000 and 40 columns, an omics-like shape (signal: 5 columns
                     of the widest, 3 of the second and a product of two narrow ones)
  H_imbalanced       binary, 4000 rows, ~3% positive (a rare clinical outcome's shape): a vector of 20, a 24-step
                     sequence of 4 channels (signal: a trend in channel 0) and a vector of 5 noise columns
  I_small            3 classes, 150 rows, two vectors (10 and 6 columns) with a moderate class shift in each
  J_30_modalities    binary, 2000 rows, 30 vectors of 4 columns (sensor-array-like), the label from 6 of them
                     (three single-modality terms and a cross-modality product)
  K_irregular        binary, 1500 rows, an irregularly sampled 48-step sequence of 5 channels (.npz with a "steps"
                     mask, ~25% of steps observed; the label from channel 0's level and its last value) + a static
                     vector of 4

Usage:
  python benchmarks/byo_shapes.py export ROOT      # ROOT/<name>/ in the folder format of docs/datasets.md
  python benchmarks/byo_shapes.py summary RUNS     # one JSON line per fitted run under RUNS (metrics.json)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _save(root: Path, name: str, mods: dict[str, np.ndarray], y: np.ndarray, mask: np.ndarray | None = None) -> None:
    d = root / name
    (d / "modalities").mkdir(parents=True, exist_ok=True)
    for k, v in mods.items():
        np.save(d / "modalities" / f"{k}.npy", v.astype(np.float32))
    np.save(d / "labels.npy", y)
    if mask is not None:
        np.save(d / "mask.npy", mask)


def export(root: Path) -> None:
    rng = np.random.default_rng(0)
    n = 5000
    a, b = rng.normal(size=(n, 2000)), rng.normal(size=(n, 50))
    logit = a[:, :10].sum(1) * 0.4 + b[:, 0] * b[:, 1] + rng.normal(size=n)
    _save(root, "A_binary_highdim", {"a": a, "b": b}, (logit > 0).astype(np.int64))

    n = 3000
    c = rng.integers(0, 30, n)
    p1, p2 = rng.normal(size=(30, 100)), rng.normal(size=(30, 20))
    x1, x2 = p1[c] + 2.0 * rng.normal(size=(n, 100)), p2[c] + 1.5 * rng.normal(size=(n, 20))
    _save(root, "B_30class", {"x1": x1, "x2": x2}, c)

    n = 600
    c = rng.integers(0, 4, n)
    t = np.linspace(0, 1, 500)
    seq = np.sin(2 * np.pi * (c[:, None, None] + 1) * t[None, :, None] * 3) + rng.normal(size=(n, 500, 6))
    _save(root, "C_longseq", {"seq": seq, "v": rng.normal(size=(n, 8)) + c[:, None] * 0.3}, c)

    n = 2000
    xs = [rng.normal(size=(n, d)) for d in (30, 10, 5)]
    y = xs[0][:, 0] * 2 + xs[1][:, 0] * xs[2][:, 0] + 0.5 * rng.normal(size=n)
    _save(root, "D_regression", {"p": xs[0], "q": xs[1], "r": xs[2]}, y.astype(np.float32))

    n = 2000
    c = rng.integers(0, 10, n)
    pats = rng.normal(size=(10, 1, 28, 28))
    img, vec = pats[c] + 3.0 * rng.normal(size=(n, 1, 28, 28)), rng.normal(size=(n, 4)) + (c[:, None] % 2)
    _save(root, "E_image", {"img": img, "v": vec}, c)

    n = 1000
    mods = {f"m{i:02d}": rng.normal(size=(n, 5)) for i in range(12)}
    logit = sum(mods[f"m{i:02d}"][:, 0] for i in range(12)) * 0.5 + rng.normal(size=n)
    mask = rng.random((n, 12)) > 0.3
    mask[np.arange(n), rng.integers(0, 12, n)] = True  # every row keeps one modality at least
    for i, k in enumerate(sorted(mods)):
        mods[k][~mask[:, i]] = np.nan
    _save(root, "F_many_missing", mods, (logit > 0).astype(np.int64), mask)

    n = 600
    g1, g2, g3 = rng.normal(size=(n, 8000)), rng.normal(size=(n, 2000)), rng.normal(size=(n, 40))
    logit = g1[:, :5].sum(1) * 0.5 + g2[:, :3].sum(1) * 0.5 + g3[:, 0] * g3[:, 1] + rng.normal(size=n)
    _save(root, "G_omics_wide", {"g1": g1, "g2": g2, "g3": g3}, (logit > 0).astype(np.int64))

    n = 4000
    v, noise = rng.normal(size=(n, 20)), rng.normal(size=(n, 5))
    trend = rng.normal(size=n)
    seq = rng.normal(size=(n, 24, 4))
    seq[:, :, 0] += trend[:, None] * np.linspace(0, 1, 24)[None, :]
    logit = v[:, :3].sum(1) * 0.7 + trend + 0.8 * v[:, 3] * trend + rng.normal(size=n)
    y = (logit > np.quantile(logit, 0.97)).astype(np.int64)
    _save(root, "H_imbalanced", {"v": v, "seq": seq, "noise": noise}, y)

    n = 150
    c = rng.integers(0, 3, n)
    x1, x2 = rng.normal(size=(n, 10)) + 0.6 * c[:, None], rng.normal(size=(n, 6)) - 0.5 * c[:, None]
    _save(root, "I_small", {"x1": x1, "x2": x2}, c)

    n = 2000
    mods = {f"s{i:02d}": rng.normal(size=(n, 4)) for i in range(30)}
    logit = mods["s00"][:, 0] + mods["s01"][:, 0] + mods["s02"][:, 0] + 1.5 * mods["s10"][:, 0] * mods["s20"][:, 0]
    logit += 0.5 * mods["s29"][:, 1] + 0.7 * rng.normal(size=n)
    _save(root, "J_30_modalities", mods, (logit > 0).astype(np.int64))

    n, t = 1500, 48
    level, static = rng.normal(size=n), rng.normal(size=(n, 4))
    seq = rng.normal(size=(n, t, 5)) * 0.8
    seq[:, :, 0] += level[:, None] + np.linspace(0, 1, t)[None, :] * static[:, :1]
    steps = rng.random((n, t)) < 0.25
    steps[np.arange(n), rng.integers(0, t, n)] = True  # every row observes one step at least
    seq[~steps] = 0.0
    last = seq[np.arange(n), t - 1 - np.argmax(steps[:, ::-1], axis=1), 0]
    logit = level + 0.7 * last + 0.5 * static[:, 1] + 0.5 * rng.normal(size=n)
    d = root / "K_irregular"
    (d / "modalities").mkdir(parents=True, exist_ok=True)
    np.savez(d / "modalities" / "vitals.npz", x=seq.astype(np.float32), steps=steps)
    np.save(d / "modalities" / "static.npy", static.astype(np.float32))
    np.save(d / "labels.npy", (logit > 0).astype(np.int64))


def summary(runs: Path) -> None:
    for m in sorted(runs.rglob("metrics.json")):
        d = json.loads(m.read_text())
        key = {"binary": "auroc", "regression": "mae"}.get(d["task"], "acc")
        row = {
            "run": str(m.parent.relative_to(runs)),
            "model": d["model"],
            "seed": d["seed"],
            "metric": key,
            "val": round(100 * d["val"][key], 2) if key != "mae" else round(d["val"][key], 4),
            "test": round(100 * d["test"][key], 2) if key != "mae" else round(d["test"][key], 4),
            "flops": round(d["efficiency"]["flops_per_sample"]),
            "fit_seconds": d["time"]["fit_seconds"],
            "prepare_seconds": d["time"].get("prepare_seconds"),  # the tree agent's cross-fit (recorded since 6674ce4)
            "epochs": d["time"]["epochs"],
            "chosen": (d.get("adaptive") or {}).get("chosen"),
        }
        print(json.dumps(row))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("export", "summary"):
        sys.exit(__doc__)
    (export if sys.argv[1] == "export" else summary)(Path(sys.argv[2]))
