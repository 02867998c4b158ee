"""The tree agent's cross-fit at LightGBM's default 255 bins per feature against fewer bins: fit time, out-of-fold
AUROC on the train rows and validation AUROC of the fold boosters' mean, on P12 (Raindrop split S, the default
config's features) or on a bring-your-own folder. Evidence for a data-sized ``max_bin`` (docs/results.md, issue 12,
2026-12-07 second session: one round on 2050 features took 344 ms at 255 bins, 128 ms at 63).

    python benchmarks/tree_agent_bins.py BINS [SPLIT | FOLDER]    # one JSON line
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from scipy.stats import rankdata

from dain import load_dataset
from dain.models.dain_parts.tree_agent import TreeAgent, _lgb


def roc_auc_score(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC by the rank-sum (Mann-Whitney) formula, ties averaged."""
    y = np.asarray(y) > 0.5
    r = rankdata(score)
    pos, neg = int(y.sum()), int((~y).sum())
    return float((r[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


class BinnedTreeAgent(TreeAgent):
    """The tree agent with ``max_bin`` bins per feature (LightGBM's default: 255)."""

    def __init__(self, spec, max_bin: int) -> None:  # noqa: ANN001
        super().__init__(spec)
        self.max_bin = max_bin

    def train_booster(self, params, x, y, rows, val):  # noqa: ANN001, ANN201
        lgb = _lgb()
        ds = lgb.Dataset(x[rows], y[rows], params={"max_bin": self.max_bin})
        return lgb.train(
            {**params, "max_bin": self.max_bin},
            ds,
            num_boost_round=2000,
            valid_sets=[lgb.Dataset(x[val], y[val], reference=ds)],
            callbacks=[lgb.early_stopping(self.early_stopping, verbose=False)],
        )


def main() -> None:
    bins, where = int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "1"
    if Path(where).is_dir():
        data = load_dataset(where)
    else:
        opts = yaml.safe_load(open("configs/physionet2012_raindrop.yaml"))["data"]["options"]
        data = load_dataset("physionet2012", **{**opts, "split": int(where)})
    agent = BinnedTreeAgent(data.spec, bins)
    t0 = time.perf_counter()
    info = agent.fit(data, seed=0, threads=1)
    seconds = time.perf_counter() - t0
    x, y, tr, va = agent.arrays(data)
    oof = agent.oof_logits.numpy()[:, 0]
    val = np.mean([b.predict(x[va]) for b in agent._get_boosters()], axis=0)
    print(
        json.dumps(
            {
                "data": where,
                "max_bin": bins,
                "features": int(x.shape[1]),
                "train_rows": len(tr),
                "fit_seconds": seconds,
                "trees": info["trees"],
                "oof_auroc": roc_auc_score(y[agent.oof_rows.numpy()], oof),
                "val_auroc": roc_auc_score(y[va], val),
            }
        )
    )


if __name__ == "__main__":
    main()
