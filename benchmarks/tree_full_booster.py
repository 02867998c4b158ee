"""Ablation, rejected on validation: the tree agent answering with one booster refitted on every training row (as
stacking usually does; 5x fewer trees to score) instead of the mean of its five fold boosters (what it does).

    python benchmarks/tree_full_booster.py OUT_DIR RUN_DIR [...]

Each dain run with a tree agent is copied to ``OUT_DIR/<run name>``. On the same trained network, the full booster
(``gbm``'s parameters sized from every training row, the run's seed and threads, early stopping on validation)
replaces the fold boosters at inference, and the harness's own finishing step runs on the copy (calibration on
validation, val/test scored once, metrics.json rewritten; the copy's saved weights keep the fold boosters, so it is
a scratch folder). One JSON line per run on stdout: the trees' own validation metric and val/test/FLOPs of the
original and of the variant."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from dain.data.spec import make_batch
from dain.training.frontier import primary_metric
from dain.training.metrics import compute_metrics
from dain.training.runner import _finish, load_run


def trees_alone(model, data, split: str = "val") -> float:  # noqa: ANN001
    """The tree agent's own metric on ``split`` (whichever boosters it answers with)."""
    rows = np.asarray(data.splits[split])
    with torch.no_grad():
        logits = model.eval().tree(make_batch(data, rows))
    metric = primary_metric(data.spec.task)
    target = torch.as_tensor(data.target[rows])
    return compute_metrics(data.spec.task, logits, target, data.spec.num_outputs, metric)[metric]


def full_booster(tree, data, seed: int, threads: int):  # noqa: ANN001, ANN201
    """One booster on every training row with the tree agent's parameters (early stopping on val)."""
    import lightgbm as lgb

    x, y, tr, va = tree.arrays(data)
    b = tree.train_booster(tree.params(len(tr), seed, threads), x, y, tr, va)
    return lgb.Booster(model_str=b.model_to_string(num_iteration=b.best_iteration or None))


def main() -> int:
    out, runs = Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]]
    out.mkdir(parents=True, exist_ok=True)
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        cfg, data, model = load_run(run)
        if getattr(model, "tree", None) is None:
            continue
        metric = primary_metric(data.spec.task)
        folds_val = trees_alone(model, data)
        dest = out / run.name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(run, dest)
        threads = int(cfg.train.num_threads) or torch.get_num_threads()  # as the run's own fit
        model.tree._boosters = [full_booster(model.tree, data, int(cfg.train.seed), threads)]
        model.tree._path_len = None
        full_val = trees_alone(model, data)
        t = metrics.get("time", {})
        monitor = metrics.get("monitor", "val/auto").removeprefix("val/")
        fit, prepare = float(t.get("fit_seconds", 0.0)), float(t.get("prepare_seconds", 0.0))
        _finish(cfg, data, model, dest, fit, int(t.get("epochs", 0)), monitor, prepare)
        new = json.loads((dest / "metrics.json").read_text())
        row = {"run": str(run), "metric": metric, "trees_val": {"folds": folds_val, "full": full_val}}
        for name, m in (("folds", metrics), ("full", new)):
            row[name] = {
                "val": m["val"].get(metric),
                "test": m["test"].get(metric),
                "test_auprc": m["test"].get("auprc"),
                "flops": m["efficiency"]["flops_per_sample"],
                "chosen": m.get("adaptive", {}).get("chosen"),
            }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
