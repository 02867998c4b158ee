"""What a user could build without DAIN: two finished runs' answers blended, the weight chosen on validation.

For each pair of runs (same data and split, e.g. late fusion and gbm on one P12 Raindrop split) the blend is
``(1 - w) * logits_a + w * logits_b`` for w in 0, 0.1, ..., 1; w is the one with the best validation score of the
task's monitored metric (binary: AUROC), and test is scored once at that w. One JSON line per pair: the chosen w, the
validation and test metrics of a, b and the blend.

Usage: python benchmarks/blend_two_runs.py OUT.jsonl A1 B1 [A2 B2 ...]
"""

from __future__ import annotations

import json
import sys

import torch

from dain.training.metrics import MONITOR, compute_metrics
from dain.training.runner import evaluate, load_run

WEIGHTS = [round(0.1 * i, 1) for i in range(11)]


def blended(task: str, k: int, w: float, x: tuple, y: tuple) -> dict:
    """Metrics of ``(1 - w) * x + w * y`` (each ``(logits, target)``)."""
    return compute_metrics(task, (1 - w) * x[0] + w * y[0], x[1], k)


def answers(run: str) -> tuple[dict, dict, str, int]:
    """Validation and test (logits, target) of a finished run, its task and number of outputs."""
    torch.set_num_threads(1)
    _, data, model = load_run(run)
    out = {}
    with torch.no_grad():
        for split in ("val", "test"):
            res = evaluate(model, data, split)
            out[split] = (res.logits, res.target)
    return out["val"], out["test"], data.spec.task, data.spec.num_outputs


def main(out_path: str, runs: list[str]) -> None:
    if len(runs) % 2:
        raise SystemExit("give runs in pairs: A1 B1 [A2 B2 ...]")
    with open(out_path, "w") as f:
        for a, b in zip(runs[::2], runs[1::2]):
            va, ta, task, k = answers(a)
            vb, tb, _, _ = answers(b)
            if not (torch.equal(va[1], vb[1]) and torch.equal(ta[1], tb[1])):
                raise SystemExit(f"{a} and {b} were not scored on the same rows")
            metric = MONITOR[task][0]

            val = {w: blended(task, k, w, va, vb)[metric] for w in WEIGHTS}
            best = max(WEIGHTS, key=lambda w: (val[w], -abs(w - 0.5)))  # ties: the more even blend
            parts = {"a": 0.0, "b": 1.0, "blend": best}
            rec = {
                "a": a,
                "b": b,
                "metric": metric,
                "w": best,
                "val": {name: blended(task, k, w, va, vb) for name, w in parts.items()},
                "test": {name: blended(task, k, w, ta, tb) for name, w in parts.items()},
            }
            f.write(json.dumps(rec) + "\n")
            f.flush()
            t = rec["test"]
            print(
                f"{a} + {b}: w={best}  test {metric} a {t['a'][metric]:.4f}  b {t['b'][metric]:.4f}  "
                f"blend {t['blend'][metric]:.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
