"""Multiclass tasks with 4 to 8 classes from real data, as bring-your-own folders: the first C classes of mfeat
(six feature views of handwritten digits; UCI, van Breukelen et al.) and of AV-digits (spoken digits, FSDD, paired by
class with scikit-learn's 8x8 written digits), each keeping only the rows of those classes in the dataset's own
default split.

Why: DAIN's ``tree_agent=auto`` puts the cross-fitted LightGBM agent on every task with at most 8 classes
(``TREE_AUTO_MAX_OUTPUTS``), measured on one 4-class task (P12, where trees are strong). These folders ask whether
the trees cost accuracy on data where trees are weak (digits: late fusion and logistic regression beat gbm there).

Usage:
  python benchmarks/class_subsets.py export ROOT          # ROOT/{mfeat,avdigits}_c{4,6,8}/
  python benchmarks/class_subsets.py summary RUNS         # one JSON line per fitted run under RUNS (metrics.json)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from dain import load_dataset

SOURCES = {"mfeat": {}, "avdigits": {}}
CLASSES = (4, 6, 8)


def export_subset(name: str, classes: int, folder: Path) -> None:
    """The rows of classes ``0 .. classes - 1`` of dataset ``name`` (its inputs as the loader gives them, its split)
    written as a bring-your-own folder."""
    data = load_dataset(name, **SOURCES[name])
    y = np.asarray(data.target).astype(np.int64)
    keep = np.flatnonzero(y < classes)
    new_index = {int(r): i for i, r in enumerate(keep)}
    (folder / "modalities").mkdir(parents=True, exist_ok=True)
    for m in data.spec.modalities:
        x = np.asarray(data.inputs[m.name])[keep].astype(np.float32)
        steps = data.steps.get(m.name) if m.kind == "sequence" else None
        if steps is not None:
            np.savez(folder / "modalities" / f"{m.name}.npz", x=x, steps=np.asarray(steps)[keep].astype(bool))
        else:
            np.save(folder / "modalities" / f"{m.name}.npy", x)
    np.save(folder / "mask.npy", np.asarray(data.mask)[keep].astype(bool))
    np.save(folder / "labels.npy", y[keep])
    split = {s: [new_index[int(r)] for r in rows if int(r) in new_index] for s, rows in data.splits.items()}
    (folder / "split.json").write_text(json.dumps(split))
    names = ", ".join(m.name for m in data.spec.modalities)
    (folder / "dataset.yaml").write_text(
        f"name: {name}_c{classes}\ntask: multiclass\nmodalities: [{names}]\nstandardize: false\n"
    )


def export(root: Path) -> None:
    for name in SOURCES:
        for c in CLASSES:
            export_subset(name, c, root / f"{name}_c{c}")


def summary(runs: Path) -> None:
    for f in sorted(runs.rglob("metrics.json")):
        m = json.loads(f.read_text())
        cfg = (f.parent / "config.yaml").read_text()
        row = {"run": str(f.parent.relative_to(runs)), "tree_agent": "tree_agent: always" in cfg}
        for split in ("val", "test"):
            for k in ("acc", "macro_f1", "auroc"):
                if k in m.get(split, {}):
                    row[f"{split}_{k}"] = m[split][k]
        eff = m.get("efficiency", {})
        row["flops_per_sample"] = eff.get("flops_per_sample")
        row["fit_s"] = m.get("time", {}).get("fit_seconds")
        row["chosen"] = m.get("adaptive", {}).get("chosen") if isinstance(m.get("adaptive"), dict) else None
        print(json.dumps(row))


if __name__ == "__main__":
    cmd, arg = sys.argv[1], Path(sys.argv[2])
    {"export": export, "summary": summary}[cmd](arg)
