"""DAIN's routing on a small dataset: the primary metric of each saved DAIN run re-scored at test-time settings
(budget 0 = the shared agent alone, budget 1, the trained top-k, every agent), validation and test, beside late
fusion's recorded test metric; paired over the runs of one ``dain compare`` folder.

    python benchmarks/small_data_routing.py COMPARE_DIR [--dense-dir DIR]

``COMPARE_DIR`` holds ``dain-s<k>`` and ``late_fusion-s<k>`` runs (each seed its own split on datasets without a
fixed one); ``--dense-dir`` adds the recorded metrics of ``dain --set gating=dense`` runs. One JSON document on
stdout (docs/results.md, issue 12, 2026-12-04: MIMIC-IV demo, 20 splits)."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from dain.training.frontier import primary_metric, set_test_setting
from dain.training.runner import evaluate, load_run


def recorded(folder: Path, model: str, metric: str) -> dict[str, list[float]]:
    runs = sorted(folder.glob(f"{model}-s*/metrics.json"), key=lambda p: int(p.parent.name.rsplit("-s", 1)[1]))
    docs = [json.loads(p.read_text()) for p in runs]
    return {split: [float(d[split][metric]) for d in docs] for split in ("val", "test")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("compare_dir", type=Path)
    ap.add_argument("--dense-dir", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    runs = sorted(args.compare_dir.glob("dain-s*"), key=lambda p: int(p.name.rsplit("-s", 1)[1]))
    scores: dict[str, dict[str, list[float]]] = {}
    metric = ""
    for run in runs:
        _, data, model = load_run(run)
        metric = primary_metric(data.spec.task)
        K = int(model.num_agents) - 1
        for name, budget in (("budget 0", 0), ("budget 1", 1), ("trained top-k", None), ("every agent", K)):
            set_test_setting(model, budget=budget)
            for split in ("val", "test"):
                scores.setdefault(name, {}).setdefault(split, []).append(
                    float(evaluate(model, data, split).metrics[metric])
                )
    scores["late_fusion"] = recorded(args.compare_dir, "late_fusion", metric)
    if args.dense_dir:
        scores["dain trained dense"] = recorded(args.dense_dir, "dain", metric)
    lf = scores["late_fusion"]["test"]
    out = {"metric": metric, "runs": len(runs), "rows": {}}
    for name, by in scores.items():
        diff = [a - b for a, b in zip(by["test"], lf)]
        out["rows"][name] = {
            "val": statistics.fmean(by["val"]),
            "test": statistics.fmean(by["test"]),
            "test_minus_late_fusion": statistics.fmean(diff),
            "paired_se": statistics.stdev(diff) / len(diff) ** 0.5 if len(diff) > 1 else 0.0,
            "better_than_late_fusion": sum(d > 0 for d in diff),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
