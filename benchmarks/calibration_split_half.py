"""Validation-only check of calibration's bound: choose on one half of validation, measure on the other half.

    python benchmarks/calibration_split_half.py 'RUNS_GLOB' [...]      # e.g. 'runs/p12/*/dain-*'

For each finished, calibrated DAIN run, every candidate inference setting scores the validation split once; the
rows are split in two halves (fixed permutation, seed 0). On each half, the candidate is chosen as calibration does
(paired bootstrap against the trained setting, the cheapest that saves ``MIN_SAVING`` and passes the bound, soft
accuracy included for accuracy) with the per-candidate bound (z = 1.645) and with the bound corrected for the number
of candidates (:func:`dain.training.adaptive.candidates_z`); the chosen setting's metric loss against the trained
setting is then measured on the *other* half. The test split is never read. One JSON line per run and direction:
``[setting, loss in points on the other half, FLOPs as a share of the trained setting's]``."""

from __future__ import annotations

import glob
import json
import sys

import torch

from dain.training.adaptive import MIN_SAVING, PairedBootstrap, candidates_z, confidently_within
from dain.training.metrics import compute_metrics
from dain.training.runner import evaluate, load_run


def _score(spec, logits: torch.Tensor, target: torch.Tensor, metric: str) -> float:  # noqa: ANN001
    return float(compute_metrics(spec.task, logits, target, spec.num_outputs, only=metric)[metric])


def _sign(metric: str) -> float:
    """+1 where higher is better (a loss is a fall), -1 for error metrics (a loss is a rise)."""
    return -1.0 if metric in ("mae", "mse", "rmse", "loss") else 1.0


def main() -> int:
    for pattern in sys.argv[1:]:
        for path in sorted(glob.glob(pattern + "/metrics.json")):
            with open(path) as f:
                record = json.load(f).get("adaptive") or {}
            if "full" not in record:  # not calibrated (skipped, or not a DAIN run)
                continue
            _, data, model = load_run(path.rsplit("/", 1)[0])
            spec, metric, tol = data.spec, record["metric"], record["tolerance"]
            candidates = [(s["budget"], s["threshold"]) for s in record["settings"]]
            flops = {(s["budget"], s["threshold"]): s["flops_per_sample"] for s in record["settings"]}
            full = record["full"]["flops_per_sample"]
            logits = {}
            for setting in [(None, None), *candidates]:
                model.set_calibration(*setting)
                res = evaluate(model, data, "val")
                logits[setting], target = res.logits, res.target
            perm = torch.randperm(len(target), generator=torch.Generator().manual_seed(0))
            halves = {"A->B": (perm[: len(perm) // 2], perm[len(perm) // 2 :])}
            halves["B->A"] = halves["A->B"][::-1]
            for direction, (pick, check) in halves.items():
                boot = PairedBootstrap(spec.task, spec.num_outputs, metric, target[pick], logits[(None, None)][pick])
                losses = {c: (boot.loss(logits[c][pick]), boot.soft_loss(logits[c][pick])) for c in candidates}
                ref = _score(spec, logits[(None, None)][check], target[check], metric)
                row: dict = {"run": path.rsplit("/", 2)[-2], "direction": direction}
                for name, z in (("z_1.645", candidates_z(1)), ("corrected", candidates_z(len(candidates)))):
                    best = None
                    for c in candidates:
                        (m, s), soft = losses[c]
                        ok = confidently_within(m, s, tol, z) and (soft is None or confidently_within(*soft, tol, z))
                        if ok and flops[c] < (flops[best] if best else (1.0 - MIN_SAVING) * full):
                            best = c
                    if best is None:  # the trained setting stays: nothing lost, full cost
                        row[name] = [None, 0.0, 1.0]
                        continue
                    lost = _score(spec, logits[best][check], target[check], metric) - ref
                    row[name] = [list(best), round(-lost * 100 * _sign(metric), 3), round(flops[best] / full, 3)]
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
