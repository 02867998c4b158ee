"""What the tree blend would have chosen on runs whose validation split is too small for calibration (fewer than
``min_val_rows`` rows: no inference setting, and so no tree weight, is chosen there). For each finished DAIN run with
a fitted tree agent: the weight `_tree_weight` picks on validation (its own rule: better than w = 0 on validation
and within the paired-bootstrap bound), and the test metric at w = 0 (the run as scored) and at that weight, the
run's weights unchanged. Evidence for whether the size rule should also hold back the blend (docs/results.md,
issue 12, 2026-12-07 third session).

    python benchmarks/tree_weight_small_val.py RUN_DIR_OR_FOLDER [...]    # one JSON line per run
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from dain.data.spec import make_batch
from dain.training.adaptive import _tree_weight
from dain.training.metrics import MONITOR, compute_metrics
from dain.training.runner import evaluate, load_run


def main() -> None:
    torch.set_num_threads(1)
    for arg in sys.argv[1:]:
        for mj in sorted(Path(arg).glob("**/metrics.json")):
            metrics = json.loads(mj.read_text())
            if metrics.get("model") != "dain":
                continue
            cfg, data, model = load_run(mj.parent)
            if model.tree is None or not model.tree.fitted:
                continue
            spec = data.spec
            metric = MONITOR[spec.task][0]
            model.eval().set_calibration()
            val, test = evaluate(model, data, "val"), evaluate(model, data, "test")
            tol = float(model.cfg.adaptive_tolerance)
            w, tried = _tree_weight(model, data, metric, tol, {}, val)
            model.set_calibration()
            with torch.no_grad():
                trees = model.tree(make_batch(data, test.index)).to(test.logits.dtype)
            weight = w or 0.0
            blended = (1.0 - weight) * test.logits + weight * trees
            at_w = compute_metrics(spec.task, blended, test.target, spec.num_outputs, only=metric)[metric]
            print(
                json.dumps(
                    {
                        "run": str(mj.parent),
                        "val_rows": len(data.splits["val"]),
                        "metric": metric,
                        "val_w0": float(val.metrics[metric]),
                        "chosen_w": w,
                        "val_at_w": max((t["metric"] for t in tried if t["tree_weight"] == w), default=None),
                        "test_w0": float(test.metrics[metric]),
                        "test_at_w": float(at_w),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
