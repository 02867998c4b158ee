"""What fixed tree blend weights would have done on saved DAIN runs with a tree agent: each run at its calibrated
budget / cascade, with the trees' answer blended at w = 0 (none), 0.3, 0.5 and 0.7 on every row; validation and test
accuracy for each. An analysis for the report only: it chooses nothing (docs/results.md, issue 12, 2026-12-06,
second session: P12's four-class target, where calibration's bound almost never admits a blend weight).

    python benchmarks/tree_blend_fixed.py RUN [RUN ...]     # one JSON line per run"""

from __future__ import annotations

import json
import sys

import torch

from dain.training.runner import evaluate, load_run

WEIGHTS = (0.0, 0.3, 0.5, 0.7)


def main(runs: list[str]) -> None:
    torch.set_num_threads(2)
    for run in runs:
        _, data, model = load_run(run)
        chosen = json.load(open(f"{run}/metrics.json"))["adaptive"]["chosen"] or {}
        setting = {k: chosen.get(k) for k in ("budget", "threshold")}
        row: dict = {"run": run, "setting": setting}
        for w in WEIGHTS:
            model.set_calibration(**setting, **({"tree_weight": w} if w else {}))
            for part in ("val", "test"):
                row[f"{part}_acc_w{w}"] = round(evaluate(model, data, part).metrics["acc"], 5)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
