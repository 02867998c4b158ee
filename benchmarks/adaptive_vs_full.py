"""Goal 3b of issue 12 on saved DAIN runs: the calibrated inference setting (the adaptive mode ``dain fit`` saves)
against the same run at its full trained budget (top-k, no cascade) with the same tree blend weight, on test.

    python benchmarks/adaptive_vs_full.py RUN_DIR [...]

Nothing is chosen here: the calibrated setting was chosen on validation by ``dain fit``; this scores both settings
on test once, for the report. One JSON line per run: the chosen setting, test metrics and FLOPs per sample of both,
the FLOP ratio, and the agents woken per sample (mean and distribution) in the adaptive mode; and, as a described
curve (not a choice), the cascade at other confidence thresholds with the same blend, on validation and test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from dain.training.runner import efficiency, evaluate, load_run

CURVE = (0.8, 0.9, 0.95, 0.98, 0.99)


def compare(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    chosen = (metrics.get("adaptive") or {}).get("chosen") or {}
    _, data, model = load_run(run)
    adaptive = evaluate(model, data, "test", collect_routing=True)
    eff_a = efficiency(model, data, adaptive.stats)
    model.set_calibration(tree_weight=chosen.get("tree_weight"))  # full trained budget, top-k, same blend
    full = evaluate(model, data, "test")
    eff_f = efficiency(model, data, full.stats)
    active = adaptive.routing.get("active")  # [N, agents], the shared agent included
    record = {
        "run": str(run),
        "chosen": chosen,
        "adaptive_test": adaptive.metrics,
        "full_test": full.metrics,
        "adaptive_flops": eff_a["flops_per_sample"],
        "full_flops": eff_f["flops_per_sample"],
        "flop_ratio": eff_a["flops_per_sample"] / eff_f["flops_per_sample"],
    }
    if active is not None:
        counts = np.asarray(active, dtype=float).sum(1).astype(int)
        record["agents_woken_mean"] = float(counts.mean())
        record["agents_woken_share"] = {int(k): round(float(np.mean(counts == k)), 4) for k in np.unique(counts)}
    curve = []
    for c in CURVE:
        model.set_calibration(threshold=c, tree_weight=chosen.get("tree_weight"))
        val, test = evaluate(model, data, "val"), evaluate(model, data, "test")
        flops = efficiency(model, data, test.stats)["flops_per_sample"]
        curve.append({"threshold": c, "val": val.metrics, "test": test.metrics, "flops": flops})
    record["cascade_curve"] = curve
    return record


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(json.dumps(compare(Path(path))), flush=True)
