"""Per-label thresholds tuned on validation, measured after the fact on saved multilabel runs (the evidence for
``dain.training.thresholds``): each run's checkpoint is scored at 0.5 and at the F1-optimal validation threshold of
each label (:func:`dain.training.thresholds.f1_optimal_offsets`), with the offsets a run may already carry removed.

    python benchmarks/multilabel_thresholds.py ROOT MODEL_FOLDER [...]

ROOT is the folder of ``p12_other_targets.py export`` (runs under ROOT/fits/MODEL_FOLDER/multi_n<n>_s<k>). One JSON
line per (model folder, training size): mean validation / test macro-F1 at 0.5 and tuned, and macro AUROC."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from dain.training.metrics import compute_metrics
from dain.training.runner import evaluate, load_run
from dain.training.thresholds import BUFFER, f1_optimal_offsets


def scores(run: Path) -> dict[str, float]:
    _, data, model = load_run(run)
    if hasattr(model, BUFFER):
        getattr(model, BUFFER).zero_()
    val, test = evaluate(model, data, "val"), evaluate(model, data, "test")
    shift, _ = f1_optimal_offsets(val.logits, val.target)
    L = val.logits.shape[1]
    out = {}
    for name, res in (("val", val), ("test", test)):
        out[f"{name}_f1_at_half"] = res.metrics["macro_f1"]
        out[f"{name}_f1_tuned"] = compute_metrics("multilabel", res.logits + shift, res.target, L)["macro_f1"]
        out[f"{name}_auroc"] = res.metrics["auroc"]
    return out


def main(root: Path, models: list[str]) -> None:
    for model in models:
        for n in (300, 1000):
            runs = sorted((root / "fits" / model).glob(f"multi_n{n}_s*"))
            rows = [scores(r) for r in runs if (r / "metrics.json").exists()]
            if rows:
                mean = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
                print(json.dumps({"model": model, "n": n, "draws": len(rows), **mean}), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
