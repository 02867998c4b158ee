"""Give DAIN runs trained before validation-calibrated inference existed the step `dain fit` now ends with.

    python benchmarks/recalibrate_runs.py [--force] RUN_DIR_OR_FOLDER [...]

For every finished DAIN run found (``**/metrics.json`` without an ``adaptive`` record), the trained weights are
loaded unchanged and the harness's own finishing step runs again: the inference setting is chosen on validation
(``dain.training.adaptive``), the weights are saved with it, val/test are scored once with it, and metrics.json and
routing.npz are rewritten (fit time and epochs kept). Runs of other models are left alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dain.training.runner import _finish, load_run


def recalibrate(run: Path, force: bool = False) -> bool:
    metrics = json.loads((run / "metrics.json").read_text())
    if ("adaptive" in metrics and not force) or not str(metrics.get("model", "")).startswith("dain"):
        return False
    cfg, data, model = load_run(run)
    if not hasattr(model, "set_calibration"):
        return False
    t = metrics.get("time", {})
    metric = metrics.get("monitor", "val/auto").removeprefix("val/")
    fit, prepare = float(t.get("fit_seconds", 0.0)), float(t.get("prepare_seconds", 0.0))
    _finish(cfg, data, model, run, fit, int(t.get("epochs", 0)), metric, prepare)
    return True


def main() -> int:
    force = "--force" in sys.argv  # redo runs that already went through it (after the step itself changed)
    done = 0
    for arg in [a for a in sys.argv[1:] if a != "--force"]:
        for mj in sorted(Path(arg).glob("**/metrics.json")):
            if recalibrate(mj.parent, force):
                done += 1
                print(f"recalibrated {mj.parent}", file=sys.stderr)
    print(f"{done} run(s) recalibrated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
