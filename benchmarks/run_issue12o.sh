#!/usr/bin/env bash
# Issue 12, 2026-12-07 (docs/results.md "Defects found by review and fixed; P12 refit beside a late fusion + gbm
# blend"): dain and late fusion with the repository defaults and gbm as recorded (z-scored summary) on the 5
# Raindrop splits, seed 0, 1 thread each; then the validation-weighted blend of late fusion and gbm per split, the
# side-by-side table and DAIN's CPU time beside late fusion's and gbm's. About 75 minutes on 2 cores.
# Usage: bash benchmarks/run_issue12o.sh OUT
set -euo pipefail
OUT=${1:?usage: run_issue12o.sh OUT}
R=benchmarks/results/issue12o
P12=configs/physionet2012_raindrop.yaml
mkdir -p "$R" "$OUT"
fit() { dain fit --config $P12 --model "$1" --split "$2" --seed 0 --threads 1 --no-progress --quiet --out "$OUT/$1-s$2" "${@:3}"; }
for s in 1 2 3 4 5; do
  fit dain "$s" &
  fit late_fusion "$s"
  fit gbm "$s" --option summary_encoding=zscore
  wait
done
pairs=()
for s in 1 2 3 4 5; do pairs+=("$OUT/late_fusion-s$s" "$OUT/gbm-s$s"); done
python benchmarks/blend_two_runs.py "$R/p12_late_fusion_gbm_blend.jsonl" "${pairs[@]}"
python - "$OUT" "$R" <<'PY'
import json, sys
from dain.training.frontier import measure_latency
out, r = sys.argv[1:]
rows = [json.loads(l) for l in open(f"{r}/p12_late_fusion_gbm_blend.jsonl")]
old = [json.loads(l) for l in open("benchmarks/results/issue12n/p12_raindrop_seed0.jsonl")]
table = []
for i, b in enumerate(rows, start=1):
    d = json.load(open(f"{out}/dain-s{i}/metrics.json"))
    trio = lambda v, t: (v["auroc"], t["auroc"], t["auprc"])  # noqa: E731
    table.append({
        "split": i, "w": b["w"],
        "lf": trio(b["val"]["a"], b["test"]["a"]), "gbm": trio(b["val"]["b"], b["test"]["b"]),
        "blend": trio(b["val"]["blend"], b["test"]["blend"]),
        "dain": (d["val"]["auroc"], d["test"]["auroc"], d["test"]["auprc"]),
        "dain_rec": (old[i - 1]["val_auroc"], old[i - 1]["test_auroc"], old[i - 1]["test_auprc"]),
        "dain_flops": d["efficiency"]["flops_per_sample"], "chosen": d.get("adaptive", {}).get("chosen"),
    })
json.dump(table, open(f"{r}/p12_raindrop_seed0_side_by_side.json", "w"), indent=1)
runs = {m: [f"{out}/{m}-s1", f"{out}/{m}-s2"] for m in ("dain", "late_fusion", "gbm")}
print(json.dumps(measure_latency(runs, rounds=7)))
PY
