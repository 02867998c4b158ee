"""Ablation of the soft-accuracy check in validation-calibrated inference, on finished DAIN runs.

    python benchmarks/calibration_soft_check.py RUN_FOLDER [...]

For every DAIN run found (``**/metrics.json`` of a ``dain*`` model), the trained weights are loaded unchanged and
:func:`dain.training.adaptive.calibrate_inference` runs on validation. Its record holds, for every setting, both the
accuracy loss and the soft-accuracy loss under the same paired bootstrap, so the setting chosen *without* the soft
check is recomputed from the same record. Both choices are then scored once on test, beside the trained setting.
Nothing is written to the runs; one JSON line per run goes to stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dain.training.adaptive import MIN_SAVING, calibrate_inference, candidates_z, confidently_within
from dain.training.runner import efficiency, evaluate, load_run


def _choice_without_soft_check(record: dict) -> dict | None:
    if "skipped" in record:  # validation too small to calibrate: the trained setting stays either way
        return None
    worth = (1.0 - MIN_SAVING) * record["full"]["flops_per_sample"]
    best = None
    for s in record["settings"]:
        ok = confidently_within(s["loss_mean"], s["loss_std"], record["tolerance"], record.get("z", candidates_z(1)))
        if ok and s["flops_per_sample"] < (best["flops_per_sample"] if best else worth):
            best = s
    return None if best is None else {"budget": best["budget"], "threshold": best["threshold"]}


def _test(model, data, chosen: dict | None) -> dict:
    model.set_calibration(**(chosen or {}))
    res = evaluate(model, data, "test")
    return {
        "setting": chosen,
        "test_acc": float(res.metrics["acc"]),
        "flops_per_sample": efficiency(model, data, res.stats).get("flops_per_sample"),
    }


def main() -> int:
    for arg in sys.argv[1:]:
        for mj in sorted(Path(arg).glob("**/metrics.json")):
            if not str(json.loads(mj.read_text()).get("model", "")).startswith("dain"):
                continue
            _, data, model = load_run(mj.parent)
            record = calibrate_inference(model, data, "acc", float(model.cfg.adaptive_tolerance))
            row = {
                "run": str(mj.parent),
                "trained": _test(model, data, None),
                "without_soft_check": _test(model, data, _choice_without_soft_check(record)),
                "with_soft_check": _test(model, data, record["chosen"]),
                "skipped": record.get("skipped"),
            }
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
