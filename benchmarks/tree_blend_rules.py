"""How rules for choosing the tree agent's blend weight would have chosen on saved multiclass DAIN runs, and what test
accuracy each choice gives: the run's calibrated budget / cascade, the trees' answer blended at every weight of
calibration's grid (validation and test accuracy and log-loss for each), and the weight each rule picks on validation.
An analysis for the report: it changes no run.

Rules (validation rows only; ``z``: calibration's one-sided 95% bound for the 10 weights together):
  ``bound``   the one `dain fit` applies: the best validation accuracy among the weights that beat w = 0 and whose
              paired bootstrap accuracy loss against w = 0 is within 0.3 point at ``z``;
  ``nll``     the lowest validation log-loss among the weights whose log-loss gain over w = 0 the paired bootstrap is
              confident of at ``z`` and whose validation accuracy is not below w = 0's by more than 0.3 point.

    python benchmarks/tree_blend_rules.py RUN [RUN ...]     # one JSON line per run"""

from __future__ import annotations

import json
import sys

import torch
import torch.nn.functional as F

from dain.data.spec import make_batch
from dain.training.adaptive import TREE_WEIGHTS, PairedBootstrap, candidates_z, confidently_within
from dain.training.metrics import compute_metrics
from dain.training.runner import evaluate, load_run

TOLERANCE = 0.003


def per_row_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), target.long().view(-1), reduction="none").double()


def main(runs: list[str]) -> None:
    torch.set_num_threads(1)
    z = candidates_z(len(TREE_WEIGHTS))
    for run in runs:
        _, data, model = load_run(run)
        chosen = json.load(open(f"{run}/metrics.json"))["adaptive"]["chosen"] or {}
        setting = {k: chosen.get(k) for k in ("budget", "threshold")}
        model.set_calibration(**setting)
        row: dict = {"run": run, "setting": setting, "calibrated_tree_weight": chosen.get("tree_weight")}
        parts = {}
        for part in ("val", "test"):
            res = evaluate(model, data, part)
            with torch.no_grad():
                trees = model.tree(make_batch(data, res.index)).to(res.logits.dtype)
            parts[part] = (res.logits, trees, res.target)
        base, trees, target = parts["val"]
        spec = data.spec
        boot = PairedBootstrap(spec.task, spec.num_outputs, "acc", target, base)
        nll0 = per_row_nll(base, target)
        grid = []
        for w in (0.0, *TREE_WEIGHTS):
            entry: dict = {"w": w}
            for part, (b, t, y) in parts.items():
                logits = (1.0 - w) * b + w * t
                entry[f"{part}_acc"] = compute_metrics(spec.task, logits, y, spec.num_outputs, only="acc")["acc"]
                entry[f"{part}_nll"] = float(per_row_nll(logits, y).mean())
            logits = (1.0 - w) * base + w * trees
            lost, sd = boot.loss(logits)
            gain = (nll0 - per_row_nll(logits, target))[boot.rows].mean(1).numpy()  # calibration's resamples
            entry.update(acc_loss_mean=lost, acc_loss_std=sd)
            entry.update(nll_gain_mean=float(gain.mean()), nll_gain_std=float(gain.std()))
            grid.append(entry)
        ref = grid[0]
        bound = [
            g
            for g in grid[1:]
            if g["val_acc"] > ref["val_acc"] and confidently_within(g["acc_loss_mean"], g["acc_loss_std"], TOLERANCE, z)
        ]
        nll = [
            g for g in grid[1:] if g["nll_gain_mean"] - z * g["nll_gain_std"] > 0 and g["acc_loss_mean"] <= TOLERANCE
        ]
        pick = {
            "bound": max(bound, key=lambda g: g["val_acc"]) if bound else ref,
            "nll": min(nll, key=lambda g: g["val_nll"]) if nll else ref,
        }
        for rule, g in pick.items():
            row[f"{rule}_w"] = g["w"]
            row[f"{rule}_val_acc"], row[f"{rule}_test_acc"] = g["val_acc"], g["test_acc"]
            row[f"{rule}_test_nll"] = g["test_nll"]
        row["grid"] = [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in g.items()} for g in grid]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
