"""One table per benchmark from several finished ``dain compare`` folders: every run pooled by model, CPU latency of
all models measured side by side in this one process, DAIN budget curves, and ``frontier.png``.

    python benchmarks/frontier_table.py OUT COMPARE_DIR [COMPARE_DIR ...] [--published-json F ...] [--labelled L=DIR]

Run folders are found as ``COMPARE_DIR/<model>-s<seed>[-split<k>]/metrics.json`` (``split<k>/`` sub-folders of an
``--all-splits`` compare included). ``--published-json`` adds rows of an earlier compare.json whose run folders are
gone (their accuracy as recorded; FLOPs/latency then come from ``--cost-runs``, run folders of the same model and
settings, e.g. trained for one epoch: cost does not depend on the weights)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dain.config import RunConfig
from dain.training.compare import aggregate, markdown_table
from dain.training.frontier import add_frontier


def find_runs(folders: list[Path], labelled: dict[str, Path] | None = None) -> dict[str, list[dict]]:
    """Runs pooled by model; the runs of a ``labelled`` folder become rows ``<model> (<label>)`` of their own (e.g.
    the same model with other options)."""
    runs: dict[str, list[dict]] = {}
    for f, label in [(f, None) for f in folders] + [(f, k) for k, f in (labelled or {}).items()]:
        for mj in sorted(f.glob("**/metrics.json")):
            r = json.loads(mj.read_text())
            r["run_dir"] = str(mj.parent)
            if label:
                r["model"] = f"{r['model']} ({label})"
            runs.setdefault(r["model"], []).append(r)
    for rs in runs.values():  # seed 0 of every split first (latency and --curve-runs take the first runs)
        rs.sort(key=lambda r: (r.get("seed", 0), r["run_dir"]))
    return runs


def refresh_tree_cost(runs: dict[str, list[dict]]) -> None:
    """Runs of tree models written before trees reported comparisons: fill ``flops_per_sample`` from the booster."""
    from dain.training.runner import load_run

    for r in runs.get("gbm", []):
        if r["efficiency"].get("flops_per_sample") is None:
            _, _, model = load_run(r["run_dir"])
            r["efficiency"].update(model.size_info())


def add_trained_setting_rows(summary: dict, runs: dict[str, list[dict]]) -> None:
    """For DAIN models whose inference setting was calibrated on validation, a row ``<model> (trained top-k)`` with
    the test score and FLOPs of the trained setting (recorded by the harness beside the calibrated one)."""
    from dain.training.compare import stats

    for m, rs in runs.items():
        rec = [r.get("adaptive") for r in rs]
        if not m.startswith("dain") or not all(rec) or all(a.get("skipped") for a in rec):
            continue
        row = {
            "test": {k: stats([a["trained_setting_test"][k] for a in rec]) for k in rec[0]["trained_setting_test"]},
            "efficiency": {"flops_per_sample": stats([a["trained_setting_flops_per_sample"] for a in rec])},
            "time": summary["results"][m]["time"],
            "runs": [],
            "chosen": [a["chosen"] for a in rec],
        }
        summary["results"][f"{m} (trained top-k)"] = row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--published-json", nargs="*", default=[], help="compare.json files of earlier runs")
    ap.add_argument("--cost-runs", nargs="*", default=[], help="run folders giving FLOPs/latency for those rows")
    ap.add_argument(
        "--labelled", nargs="*", default=[], help="LABEL=FOLDER: that folder's runs as rows '<model> (LABEL)'"
    )
    ap.add_argument("--no-curves", action="store_true")
    ap.add_argument("--curve-runs", type=int, default=None, help="runs per DAIN model re-evaluated for its curve")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    labelled = dict(x.split("=", 1) for x in args.labelled)
    runs = find_runs([Path(f) for f in args.folders], {k: Path(v) for k, v in labelled.items()})
    refresh_tree_cost(runs)
    first = next(iter(runs.values()))[0]
    base = RunConfig.from_yaml(Path(first["run_dir"]) / "config.yaml")
    seeds = sorted({r["seed"] for rs in runs.values() for r in rs})
    summary = aggregate(base, seeds, runs, {})
    for m, rs in runs.items():
        summary["results"][m]["runs"] = [r["run_dir"] for r in rs]
    add_trained_setting_rows(summary, runs)
    # earlier results without run folders: accuracy as recorded, cost from --cost-runs of the same model
    cost_runs = {json.loads((Path(c) / "metrics.json").read_text())["model"]: c for c in args.cost_runs}
    for pj in args.published_json:
        for m, row in json.loads(Path(pj).read_text())["results"].items():
            if m in summary["results"] or "test" not in row or "×" in m:
                continue
            row = dict(row)
            row["runs"] = [cost_runs[m]] if m in cost_runs else []
            if m in cost_runs:
                eff = json.loads((Path(cost_runs[m]) / "metrics.json").read_text())["efficiency"]
                if eff.get("flops_per_sample") is None and m == "gbm":
                    from dain.training.runner import load_run

                    eff.update(load_run(cost_runs[m])[2].size_info())
                row["efficiency"] = {
                    k: {"mean": v, "std": 0.0, "values": [v]} for k, v in eff.items() if isinstance(v, (int, float))
                }
            row["source"] = str(pj)
            summary["results"][m] = row
    (out / "compare.md").write_text("")
    summary["table"] = str(out / "compare.md")
    add_frontier(summary, out, first["task"], latency=True, curves=not args.no_curves, curve_runs=args.curve_runs)
    for row in summary["results"].values():  # budget curves only for runs of this table
        if "source" in row:
            row.pop("budget_curve", None)
    (out / "compare.json").write_text(json.dumps(summary, indent=2))
    (out / "compare.md").write_text(markdown_table(summary))
    print(markdown_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
