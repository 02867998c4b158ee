"""How per-label thresholds tuned on a *small* validation split fare (the risk of ``dain.training.thresholds`` on a
small dataset): on saved multilabel runs, thresholds are tuned on random subsets of the validation rows and the test
macro-F1 they give is compared with 0.5 and with thresholds tuned on the whole validation split.

    python benchmarks/thresholds_small_val.py RUN_DIR [...]

One JSON line per run and subset size (30, 45, 100, 300 rows; 50 subsets each): mean and 10th percentile of the test
macro-F1, and the share of subsets that beat 0.5."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from dain.training.metrics import compute_metrics
from dain.training.runner import evaluate, load_run
from dain.training.thresholds import BUFFER, f1_optimal_offsets

SIZES = (30, 45, 100, 300)
SUBSETS = 50


def test_f1(
    val_logits: torch.Tensor, val_target: torch.Tensor, test_logits: torch.Tensor, test_target: torch.Tensor
) -> float:
    shift, _ = f1_optimal_offsets(val_logits, val_target)
    return compute_metrics("multilabel", test_logits + shift, test_target, val_logits.shape[1])["macro_f1"]


def main(runs: list[str]) -> None:
    for run in runs:
        _, data, model = load_run(run)
        getattr(model, BUFFER).zero_()
        val, test = evaluate(model, data, "val"), evaluate(model, data, "test")
        z, y = val.logits, val.target
        at_half = test.metrics["macro_f1"]
        whole = test_f1(z, y, test.logits, test.target)
        rng = np.random.default_rng(0)
        for n in SIZES:
            f1s = [
                test_f1(z[r], y[r], test.logits, test.target)
                for r in (torch.as_tensor(rng.choice(len(z), n, False)) for _ in range(SUBSETS))
            ]
            print(
                json.dumps(
                    {
                        "run": run,
                        "val_rows": n,
                        "test_f1_at_half": round(at_half, 4),
                        "test_f1_whole_val": round(whole, 4),
                        "test_f1_mean": round(float(np.mean(f1s)), 4),
                        "test_f1_p10": round(float(np.percentile(f1s, 10)), 4),
                        "share_above_half": round(float(np.mean(np.asarray(f1s) > at_half)), 2),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
