"""Issue 13's goal check from `dain compare --robustness` outputs: per condition, who loses least and where DAIN
stands, for runs trained without and with modality dropout.

Usage: python benchmarks/robustness_summary.py RUN_DIR[=LABEL] [RUN_DIR[=LABEL] ...] [--metric auroc]
Each RUN_DIR holds the robustness.json written by `dain compare --robustness`. Prints markdown.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _mean(row: dict, cond: str, part: str, metric: str) -> float | None:
    s = row["conditions"][cond][part].get(metric) or {}
    return s.get("mean")


def summary(path: Path, label: str, metric: str | None) -> str:
    rob = json.loads((path / "robustness.json").read_text())
    metric = metric or rob["metric"]
    models = rob["models"]
    lines = [
        f"**{label}** ({rob['dataset']}, test {metric} in %, mean over runs; change = condition − full test)",
        "",
        "| condition | least loss (model: change) | dain: value (change) | dain rank by loss | gbm: value (change) |",
        "|---|---|---|---|---|",
    ]
    for cond in rob["conditions"]:
        if cond == "full":
            continue
        changes = {m: _mean(r, cond, "change", metric) for m, r in models.items()}
        changes = {m: c for m, c in changes.items() if c is not None}
        order = sorted(changes, key=lambda m: -changes[m])
        best = order[0]
        cells = [cond, f"{best}: {100 * changes[best]:+.2f}"]
        for m in ("dain", "gbm"):
            if m not in models:
                cells.append("–")
                if m == "dain":
                    cells.append("–")
                continue
            v = _mean(models[m], cond, "test", metric)
            cells.append(f"{100 * v:.2f} ({100 * changes[m]:+.2f})")
            if m == "dain":
                better = sum(c > changes["dain"] + 1e-12 for c in changes.values())  # ties share a rank
                cells.append(f"{better + 1} of {len(order)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--metric")
    a = ap.parse_args()
    for r in a.runs:
        path, _, label = r.partition("=")
        print(summary(Path(path), label or path, a.metric))


if __name__ == "__main__":
    main()
