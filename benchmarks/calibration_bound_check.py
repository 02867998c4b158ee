"""What a multiple-comparison correction of calibration's bound would change, from saved calibration records.

    python benchmarks/calibration_bound_check.py 'RUNS_GLOB' [...]      # e.g. 'runs/p12/*/dain-*'

Calibration keeps the cheapest of n candidate settings whose paired-bootstrap loss passes a one-sided 95% bound
(z = 1.645), so some candidate passes by chance more often than 5% of the time. For each finished DAIN run whose
``metrics.json`` holds a calibration record, this recomputes the choice with the bound Bonferroni-corrected for the
n candidates (z = Phi^-1(1 - 0.05 / n)) from the same record (no recalibration), then scores the trained setting and
both choices on test (metric in points, FLOPs per sample in thousands). Nothing is written to the runs; one JSON line
per run goes to stdout. This looks at test: use it to measure, not to choose."""

from __future__ import annotations

import glob
import json
import sys
from statistics import NormalDist

from dain.training.adaptive import MIN_SAVING
from dain.training.runner import efficiency, evaluate, load_run


def choice(record: dict, z: float) -> dict | None:
    """The setting calibration would keep with the bound at ``z`` (accuracy and, where recorded, soft accuracy)."""
    tol = record["tolerance"]
    worth = (1.0 - MIN_SAVING) * record["full"]["flops_per_sample"]
    best = None
    for s in record["settings"]:
        ok = s["loss_mean"] + z * s["loss_std"] <= tol
        if "soft_loss_mean" in s:
            ok = ok and s["soft_loss_mean"] + z * s["soft_loss_std"] <= tol
        if ok and s["flops_per_sample"] < (best["flops_per_sample"] if best else worth):
            best = s
    return None if best is None else {"budget": best["budget"], "threshold": best["threshold"]}


def main() -> int:
    for pattern in sys.argv[1:]:
        for path in sorted(glob.glob(pattern + "/metrics.json")):
            with open(path) as f:
                record = json.load(f).get("adaptive") or {}
            if "full" not in record:  # no calibration (skipped, or not a DAIN run)
                continue
            z = NormalDist().inv_cdf(1 - 0.05 / len(record["settings"]))
            chosen = {"trained": None, "bound_95": choice(record, 1.645), "corrected": choice(record, z)}
            row: dict = {"run": path.rsplit("/", 2)[-2], "z": round(z, 3), "settings": chosen}
            _, data, model = load_run(path.rsplit("/", 1)[0])
            for name, setting in chosen.items():
                model.set_calibration(**(setting or {}))
                res = evaluate(model, data, "test")
                flops = efficiency(model, data, res.stats)["flops_per_sample"]
                row[name] = (round(float(res.metrics[record["metric"]]) * 100, 2), round(flops / 1e3))
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
