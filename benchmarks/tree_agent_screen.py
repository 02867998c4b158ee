"""The tree agent's cross-fit with and without the per-fold column screen (``tree_agent.SCREEN_ABOVE_BINS``): fit time,
out-of-fold score on the train rows and validation score of the fold boosters' mean, on a bring-your-own folder, a
registered dataset or P12 (Raindrop split S, the default config's features). Evidence for the screen's threshold
and kept count (docs/results.md, issue 12, 2026-12-07 third session).

    python benchmarks/tree_agent_screen.py on|on:KEEP|off|auto FOLDER|NAME|SPLIT [SEED] [LEARNING_RATE]  # a JSON line

``on:KEEP`` screens keeping KEEP columns instead of ``SCREEN_KEEP``; ``auto`` screens where the default would.
``LEARNING_RATE`` replaces the boosters' default (0.02): the evidence for the multiclass learning rate
(docs/results.md, issue 12, 2026-12-07 fourth session).

Binary tasks are scored by AUROC, multiclass by accuracy, regression by MAE (lower is better).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from tree_agent_bins import roc_auc_score  # benchmarks/ is on the path when run as a script

from dain import load_dataset
from dain.models.dain_parts import tree_agent
from dain.models.dain_parts.tree_agent import TreeAgent


def score(task: str, y: np.ndarray, logits: np.ndarray) -> float:
    if task == "binary":
        return roc_auc_score(y, logits[:, 0])
    if task == "multiclass":
        return float((logits.argmax(1) == y).mean())
    return float(np.abs(logits[:, 0] - y).mean())


def main() -> None:
    mode, where = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    rate = {"learning_rate": float(sys.argv[4])} if len(sys.argv) > 4 else {}
    if Path(where).is_dir() or not where.isdigit():  # a folder or a registered dataset's name
        data = load_dataset(where)
    else:
        opts = yaml.safe_load(open("configs/physionet2012_raindrop.yaml"))["data"]["options"]
        data = load_dataset("physionet2012", **{**opts, "split": int(where)})
    if mode.startswith("on:"):
        tree_agent.SCREEN_KEEP = int(mode[3:])
    above = {"off": 10**12, "auto": tree_agent.SCREEN_ABOVE_BINS}.get(mode, 0)  # on: whatever the bins
    agent = TreeAgent(data.spec, screen_above_bins=above, **rate)
    t0 = time.perf_counter()
    info = agent.fit(data, seed=seed, threads=1)
    seconds = time.perf_counter() - t0
    x, y, tr, va = agent.arrays(data)
    task = agent.booster_task
    oof = agent.oof_logits.numpy()
    val = np.mean(agent.features_logits(x[va]), axis=0)
    rows = x[va[:256]]  # inference: every fold booster on 256 rows, one thread (as DAIN's latency is measured)
    agent.features_logits(rows)
    ms = []
    for _ in range(5):
        t1 = time.perf_counter()
        agent.features_logits(rows)
        ms.append(1000 * (time.perf_counter() - t1))
    cols = [c for c in agent._columns if c is not None]
    print(
        json.dumps(
            {
                "data": where,
                "screen": mode if mode in ("off", "auto") else f"on:{tree_agent.SCREEN_KEEP}",
                "learning_rate": agent.learning_rate,
                "seed": seed,
                "task": task,
                "features": int(x.shape[1]),
                "kept_per_booster": [len(c) for c in cols],
                "train_rows": len(tr),
                "fit_seconds": round(seconds, 1),
                "trees": info["trees"],
                "oof": score(task, y[agent.oof_rows.numpy()], oof),
                "val": score(task, y[va], val),
                "predict_ms_256": round(float(np.median(ms)), 2),
                "comparisons_per_row": agent.flops_per_sample(),
            }
        )
    )


if __name__ == "__main__":
    main()
