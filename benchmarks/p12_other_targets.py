"""DAIN's defaults on task types no benchmark here has: P12's inputs (Raindrop split 1, the zscore summary) with a
*regression* target, exported as bring-your-own folders, so every model is run exactly as a user would run a new
dataset (``dain fit --data FOLDER``, default settings).

    python benchmarks/p12_other_targets.py export ROOT     # ROOT/<target>_n<n>_s<k>/
    python benchmarks/p12_other_targets.py summary ROOT    # after the fits of benchmarks/run_issue12i.sh

Targets (from PhysioNet 2012's Outcomes files, the same stays and split as ``small_train_p12.py``):

* ``saps``: the SAPS-I severity score (regression; stays without a score, -1 in the file, are left out of every
  split);
* ``los``: log(1 + length of stay in days) (regression; stays with a negative length are left out).

The training split is a random draw of ``n`` stays of the split's training stays (seed ``100 + k``, the draws of
``small_train_p12.py``), validation and test are the split's own (minus the stays without the target).
``summary`` prints one JSON line per (target, n, model): mean validation and test MAE over the draws that finished."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np
from small_train_p12 import write_arrays, write_folder  # benchmarks/, this script's folder

TARGETS = ("saps", "los")
SIZES = (300,)
SUBSAMPLES = 3
MODELS = ("dain", "late_fusion", "gbm")


def outcomes(data_dir: Path) -> dict[int, dict[str, float]]:
    """RecordID -> the Outcomes row (SAPS-I, SOFA, Length_of_stay, Survival, In-hospital_death)."""
    rows: dict[int, dict[str, float]] = {}
    for f in sorted(data_dir.glob("Outcomes-*.txt")):
        lines = f.read_text().splitlines()
        head = lines[0].split(",")
        for line in lines[1:]:
            vals = line.split(",")
            rows[int(vals[0])] = {h: float(v) for h, v in zip(head[1:], vals[1:])}
    return rows


def target(name: str, row: dict[str, float]) -> float:
    """The target value of one stay (NaN: the stay has none)."""
    if name == "saps":
        return row["SAPS-I"] if row["SAPS-I"] >= 0 else float("nan")
    return float(np.log1p(row["Length_of_stay"])) if row["Length_of_stay"] >= 0 else float("nan")


def export(root: Path) -> None:
    from dain.data import load_dataset
    from dain.data.paths import find_data_dir

    data = load_dataset("physionet2012", protocol="raindrop", split=1, summary=True, summary_encoding="zscore")
    out = outcomes(find_data_dir("physionet2012", None, ("Outcomes-a.txt",)))
    shared = root / "arrays"
    write_arrays(data, shared)
    for t in TARGETS:
        y = np.asarray([target(t, out[int(r)]) for r in data.ids], dtype=np.float32)
        np.save(shared / f"labels_{t}.npy", np.nan_to_num(y, nan=0.0))  # rows without a target are in no split
        has = np.isfinite(y)
        train = np.asarray([i for i in data.splits["train"] if has[i]])
        for n in SIZES:
            for k in range(SUBSAMPLES):
                rows = np.random.default_rng(100 + k).choice(train, n, replace=False)
                split = {"train": sorted(int(i) for i in rows)}
                split.update({s: [int(i) for i in data.splits[s] if has[i]] for s in ("val", "test")})
                meta = {"name": f"p12_{t}_n{n}_s{k}", "task": "regression"}
                meta["modalities"] = [m.name for m in data.spec.modalities]
                write_folder(root / f"{t}_n{n}_s{k}", shared, f"labels_{t}.npy", split, meta)


def summary(root: Path) -> None:
    for t in TARGETS:
        for n in SIZES:
            for model in MODELS:
                got = []
                for k in range(SUBSAMPLES):
                    path = root / "fits" / model / f"{t}_n{n}_s{k}" / "metrics.json"
                    if path.exists():
                        m = json.loads(path.read_text())
                        got.append((m["val"]["mae"], m["test"]["mae"]))
                if got:
                    row = {"target": t, "n": n, "model": model, "draws": len(got)}
                    row["val_mae"] = round(statistics.fmean(v for v, _ in got), 4)
                    row["test_mae"] = round(statistics.fmean(v for _, v in got), 4)
                    row["test_mae_per_draw"] = [round(v, 4) for _, v in got]
                    print(json.dumps(row))


if __name__ == "__main__":
    cmd, root = sys.argv[1], Path(sys.argv[2])
    {"export": export, "summary": summary}[cmd](root)
