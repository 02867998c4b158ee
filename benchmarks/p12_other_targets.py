"""DAIN's defaults on task types no benchmark here has: P12's inputs (Raindrop split 1, the zscore summary) with
*regression*, *multilabel* and *multiclass* targets, exported as bring-your-own folders, so every model is run exactly
as a user would run a new dataset (``dain fit --data FOLDER``, default settings).

    python benchmarks/p12_other_targets.py export ROOT     # ROOT/<target>_n<n>_s<k>/
    python benchmarks/p12_other_targets.py summary ROOT    # after the fits of benchmarks/run_issue12i.sh

Targets (from PhysioNet 2012's Outcomes files, the same stays and split as ``small_train_p12.py``):

* ``saps``: the SAPS-I severity score (regression; stays without a score, -1 in the file, are left out of every
  split);
* ``los``: log(1 + length of stay in days) (regression; stays with a negative length are left out);
* ``multi``: three binary outcomes at once (multilabel): in-hospital death (14% of stays), a stay longer than 14
  days (30%), death within a year of admission (``Survival`` in 0..365 days, 27%); stays with a negative length
  are left out;
* ``disch``: how the stay ended, four classes (multiclass): died in hospital, or survived with a stay of at most 7
  days, of 8 to 14 days, of more than 14 days; stays with a negative length are left out.

The training split is a random draw of ``n`` stays of the split's training stays (seed ``100 + k``, the draws of
``small_train_p12.py``), or all of them (``<target>_nall_s0``); validation and test are the split's own (minus the
stays without the target).
``summary`` prints one JSON line per (target, n, model folder under ROOT/fits): mean validation and test metrics over
the draws that finished."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import numpy as np
from small_train_p12 import write_arrays, write_folder  # benchmarks/, this script's folder

TARGETS = ("saps", "los", "multi", "disch")
TASKS = {"saps": "regression", "los": "regression", "multi": "multilabel", "disch": "multiclass"}
SIZES = (300, 1000, "all")  # "all": every training stay of the split (one folder, draw 0)
SUBSAMPLES = 3


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


def target(name: str, row: dict[str, float]) -> float | list[float]:
    """The target value(s) of one stay (NaN: the stay has none)."""
    if name == "saps":
        return row["SAPS-I"] if row["SAPS-I"] >= 0 else float("nan")
    if row["Length_of_stay"] < 0:
        return [float("nan")] * 3 if name == "multi" else float("nan")
    if name == "los":
        return float(np.log1p(row["Length_of_stay"]))
    if name == "disch":
        los = row["Length_of_stay"]
        return 0.0 if row["In-hospital_death"] == 1 else 1.0 if los <= 7 else 2.0 if los <= 14 else 3.0
    died_within_year = 0 <= row["Survival"] <= 365
    return [float(row["In-hospital_death"]), float(row["Length_of_stay"] > 14), float(died_within_year)]


def export(root: Path) -> None:
    from dain.data import load_dataset
    from dain.data.paths import find_data_dir

    data = load_dataset("physionet2012", protocol="raindrop", split=1, summary=True, summary_encoding="zscore")
    out = outcomes(find_data_dir("physionet2012", None, ("Outcomes-a.txt",)))
    shared = root / "arrays"
    write_arrays(data, shared)
    for t in TARGETS:
        y = np.asarray([target(t, out[int(r)]) for r in data.ids], dtype=np.float32)
        labels = np.nan_to_num(y, nan=0.0)  # rows without a target are in no split
        np.save(shared / f"labels_{t}.npy", labels if TASKS[t] == "regression" else labels.astype(np.int64))
        has = np.isfinite(y) if y.ndim == 1 else np.isfinite(y).all(1)
        train = np.asarray([i for i in data.splits["train"] if has[i]])
        for n in SIZES:
            for k in range(SUBSAMPLES if n != "all" else 1):
                rows = train if n == "all" else np.random.default_rng(100 + k).choice(train, n, replace=False)
                split = {"train": sorted(int(i) for i in rows)}
                split.update({s: [int(i) for i in data.splits[s] if has[i]] for s in ("val", "test")})
                meta = {"name": f"p12_{t}_n{n}_s{k}", "task": TASKS[t]}
                meta["modalities"] = [m.name for m in data.spec.modalities]
                write_folder(root / f"{t}_n{n}_s{k}", shared, f"labels_{t}.npy", split, meta)


METRICS = {"regression": ("mae",), "multilabel": ("macro_f1", "auroc"), "multiclass": ("acc", "macro_f1")}


def run_metrics(run: Path, names: tuple[str, ...]) -> dict:
    """A run's ``metrics.json``; a metric it lacks (multilabel AUROC, added after some runs were made) is computed
    from the saved run on validation and test."""
    m = json.loads((run / "metrics.json").read_text())
    if all(n in m["val"] and n in m["test"] for n in names):
        return m
    from dain.training.runner import evaluate, load_run

    _, data, model = load_run(str(run))
    for part in ("val", "test"):
        m[part] = evaluate(model, data, part).metrics
    return m


def summary(root: Path) -> None:
    """One JSON line per (target, n, fitted model folder under ROOT/fits): the mean validation and test metrics of
    the draws that finished (MAE for regression; macro-F1, the monitored metric, and AUROC for multilabel; accuracy,
    the monitored metric, and macro-F1 for multiclass)."""
    for t in TARGETS:
        for n in SIZES:
            for model_dir in sorted((root / "fits").glob("*")):
                got = []
                for k in range(SUBSAMPLES):
                    path = model_dir / f"{t}_n{n}_s{k}" / "metrics.json"
                    if path.exists():
                        got.append(run_metrics(path.parent, METRICS[TASKS[t]]))
                if not got:
                    continue
                row = {"target": t, "n": n, "model": model_dir.name, "draws": len(got)}
                for metric in METRICS[TASKS[t]]:
                    for part in ("val", "test"):
                        row[f"{part}_{metric}"] = round(statistics.fmean(m[part][metric] for m in got), 4)
                    row[f"test_{metric}_per_draw"] = [round(m["test"][metric], 4) for m in got]
                print(json.dumps(row))


if __name__ == "__main__":
    cmd, root = sys.argv[1], Path(sys.argv[2])
    {"export": export, "summary": summary}[cmd](root)
