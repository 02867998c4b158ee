"""Checks of validation-calibrated inference on finished DAIN runs; nothing is written to the runs, one JSON line per
run goes to stdout. Each applies the rule calibration applies (``dain.training.adaptive.cheapest_passing``) to the
candidates' records, with one ingredient changed.

    python benchmarks/calibration_checks.py soft 'RUNS_GLOB' [...]        # e.g. 'runs/avdigits/dain-*'
    python benchmarks/calibration_checks.py bound 'RUNS_GLOB' [...]       # e.g. 'runs/p12/*/dain-*'
    python benchmarks/calibration_checks.py split-half 'RUNS_GLOB' [...]

* ``soft``: calibration reruns on validation (unchanged weights); the setting it would keep *without* the
  soft-accuracy check comes from the same record. The trained setting and both choices are scored on test.
* ``bound``: from the saved record, the choice with the per-candidate bound (z = 1.645) and with the bound corrected
  for the number of candidates (``candidates_z``), both scored on test. This looks at test: measure, do not choose.
* ``split-half``: validation only. Every candidate scores validation once; on each half of its rows (fixed
  permutation, seed 0) the candidate is chosen with both bounds and its metric loss against the trained setting is
  measured on the *other* half: ``[setting, loss in points, FLOPs as a share of the trained setting's]``."""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Iterator
from typing import Any

import torch

from dain.training.adaptive import (
    PairedBootstrap,
    calibrate_inference,
    candidates_z,
    cheapest_passing,
    lower_is_better,
)
from dain.training.metrics import compute_metrics
from dain.training.runner import efficiency, evaluate, load_run


def calibrated_runs(patterns: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(run folder, calibration record) of every run matching ``patterns`` whose metrics.json holds a calibration
    that ran (not skipped, not a model without calibration)."""
    for pattern in patterns:
        for path in sorted(glob.glob(pattern + "/metrics.json")):
            with open(path) as f:
                record = json.load(f).get("adaptive") or {}
            if "full" in record:
                yield path.rsplit("/", 1)[0], record


def _setting(s: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if s is None else {"budget": s["budget"], "threshold": s["threshold"]}


def _on_test(model: torch.nn.Module, data: Any, setting: dict[str, Any] | None, metric: str) -> list[float]:
    """[test metric in points, FLOPs per sample in thousands] of ``model`` with inference ``setting``."""
    model.set_calibration(**(setting or {}))
    res = evaluate(model, data, "test")
    flops = efficiency(model, data, res.stats)["flops_per_sample"]
    return [round(float(res.metrics[metric]) * 100, 2), round(flops / 1e3)]


def soft(patterns: list[str]) -> None:
    for run, _ in calibrated_runs(patterns):
        _, data, model = load_run(run)
        record = calibrate_inference(model, data, "acc", float(model.cfg.adaptive_tolerance))
        full, tol, z = record["full"]["flops_per_sample"], record["tolerance"], record["z"]
        chosen = {
            "trained": None,
            "without_soft_check": _setting(cheapest_passing(record["settings"], full, tol, z, soft=False)),
            "with_soft_check": record["chosen"],
        }
        row = {"run": run, "settings": chosen, **{k: _on_test(model, data, c, "acc") for k, c in chosen.items()}}
        print(json.dumps(row), flush=True)


def bound(patterns: list[str]) -> None:
    for run, record in calibrated_runs(patterns):
        full, tol = record["full"]["flops_per_sample"], record["tolerance"]
        z = candidates_z(len(record["settings"]))
        chosen = {
            "trained": None,
            "bound_95": _setting(cheapest_passing(record["settings"], full, tol, candidates_z(1))),
            "corrected": _setting(cheapest_passing(record["settings"], full, tol, z)),
        }
        _, data, model = load_run(run)
        scores = {k: _on_test(model, data, c, record["metric"]) for k, c in chosen.items()}
        print(json.dumps({"run": run, "z": round(z, 3), "settings": chosen, **scores}), flush=True)


def _score(spec: Any, metric: str, logits: torch.Tensor, target: torch.Tensor) -> float:
    return float(compute_metrics(spec.task, logits, target, spec.num_outputs, only=metric)[metric])


def split_half(patterns: list[str]) -> None:
    for run, record in calibrated_runs(patterns):
        _, data, model = load_run(run)
        spec, metric, tol = data.spec, record["metric"], record["tolerance"]
        full = record["full"]["flops_per_sample"]
        sign = -1.0 if lower_is_better(metric) else 1.0

        logits = {}
        for s in [None, *record["settings"]]:
            key = (None, None) if s is None else (s["budget"], s["threshold"])
            model.set_calibration(*key)
            res = evaluate(model, data, "val")
            logits[key], target = res.logits, res.target
        perm = torch.randperm(len(target), generator=torch.Generator().manual_seed(0))
        first, second = perm[: len(perm) // 2], perm[len(perm) // 2 :]
        for direction, (pick, check) in {"A->B": (first, second), "B->A": (second, first)}.items():
            boot = PairedBootstrap(spec.task, spec.num_outputs, metric, target[pick], logits[(None, None)][pick])
            candidates = []
            for s in record["settings"]:  # the candidates' records, re-bootstrapped on this half
                key = (s["budget"], s["threshold"])
                (m, sd), soft_loss = boot.loss(logits[key][pick]), boot.soft_loss(logits[key][pick])
                c = {"budget": key[0], "threshold": key[1], "loss_mean": m, "loss_std": sd}
                if soft_loss is not None:
                    c["soft_loss_mean"], c["soft_loss_std"] = soft_loss
                candidates.append({**c, "flops_per_sample": s["flops_per_sample"]})
            ref = _score(spec, metric, logits[(None, None)][check], target[check])
            row: dict[str, Any] = {"run": run, "direction": direction}
            for name, z in (("z_1.645", candidates_z(1)), ("corrected", candidates_z(len(candidates)))):
                best = cheapest_passing(candidates, full, tol, z)
                if best is None:  # the trained setting stays: nothing lost, full cost
                    row[name] = [None, 0.0, 1.0]
                    continue
                key = (best["budget"], best["threshold"])
                lost = sign * (ref - _score(spec, metric, logits[key][check], target[check]))
                row[name] = [list(key), round(lost * 100, 3), round(best["flops_per_sample"] / full, 3)]
            print(json.dumps(row), flush=True)


CHECKS = {"soft": soft, "bound": bound, "split-half": split_half}


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in CHECKS:
        print(__doc__, file=sys.stderr)
        return 2
    CHECKS[sys.argv[1]](sys.argv[2:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
