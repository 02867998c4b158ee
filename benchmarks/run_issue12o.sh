#!/usr/bin/env bash
# Issue 12, 2026-12-07 (docs/results.md "Defects found by review and fixed; P12 refit beside a late fusion + gbm
# blend"): dain and late fusion with the repository defaults and gbm as recorded (z-scored summary) on the 5
# Raindrop splits, seed 0, 1 thread each; then the validation-weighted blend of late fusion and gbm per split, the
# side-by-side table and DAIN's CPU time beside late fusion's and gbm's; then MIMIC-IV demo (20 splits) with the
# corrected medication features and P12 cut to 70 training stays (5 draws), DAIN with and without the tree agent and
# dense routing beside late fusion and gbm (the evidence for tree_min_rows = 64; dain's rows there pin tree_agent, so
# they mean the same before and after that default). About 100 minutes on 2 cores.
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

# small data: MIMIC-IV demo (20 splits) and P12 cut to 70 training stays (5 draws)
M=(--seeds 20 --jobs 1 --threads 1 --quiet --no-frontier)
dain compare --data mimic4-demo --models dain --set tree_agent=never "${M[@]}" --out "$OUT/mimic20_dain" &
dain compare --data mimic4-demo --models late_fusion "${M[@]}" --out "$OUT/mimic20_late_fusion"
wait
dain compare --data mimic4-demo --models gbm "${M[@]}" --out "$OUT/mv_gbm" &
dain compare --data mimic4-demo --models dain --set tree_agent=always "${M[@]}" --out "$OUT/mv_tree"
wait
dain compare --data mimic4-demo --models dain --set tree_agent=never --set gating=dense "${M[@]}" --out "$OUT/mv_dense" &
dain compare --data mimic4-demo --models dain --set tree_agent=always --set gating=dense "${M[@]}" --out "$OUT/mv_treedense"
wait
S=$OUT/p12small
python benchmarks/small_train_p12.py export "$S"
f() { tag=$1; k=$2; shift 2; dain fit --data "$S/n70_s$k" --model "$@" --threads 1 --no-progress --quiet --out "$S/t/$tag/n70_s$k"; }
for k in 0 1 2 3 4; do
  f dain "$k" dain --set tree_agent=never &
  f tree "$k" dain --set tree_agent=always
  wait
  f dense "$k" dain --set tree_agent=never --set gating=dense &
  f treedense "$k" dain --set tree_agent=always --set gating=dense
  wait
  f late_fusion "$k" late_fusion
done
cp "$OUT/mimic20_dain/compare.md" "$R/mimic4_demo_20splits_dain.md"
cp "$OUT/mimic20_late_fusion/compare.md" "$R/mimic4_demo_20splits_late_fusion.md"
# the other MIMIC-IV demo settings of the table's notes
dain compare --data mimic4-demo --models dain --set tree_agent=never --set comm_rounds=0 "${M[@]}" --out "$OUT/mv_nocomm" &
dain compare --data mimic4-demo --models dain --set tree_agent=never --set lambda_route=0 --set lambda_spec=0 \
  --set lambda_sparse=0 --set lambda_comm=0 "${M[@]}" --out "$OUT/mv_noaux"
wait
dain compare --data mimic4-demo --models dain --set tree_agent=never --set lambda_agents=0 "${M[@]}" --out "$OUT/mv_noagents" &
python benchmarks/mimic_old_medications.py dain "$OUT/mimic20old_dain" --set tree_agent=never
python benchmarks/mimic_old_medications.py late_fusion "$OUT/mimic20old_late_fusion"
wait
python - "$OUT" "$R" <<'PY'
import json, sys
import numpy as np
out, r = sys.argv[1:]
res = {"mimic4_demo_20_splits": {}, "p12_cut_70_stays_5_draws": {}}
for tag in ("mimic20_dain", "mimic20_late_fusion", "mv_gbm", "mv_tree", "mv_dense", "mv_treedense", "mv_nocomm",
            "mv_noaux", "mv_noagents", "mimic20old_dain", "mimic20old_late_fusion"):
    x = list(json.load(open(f"{out}/{tag}/compare.json"))["results"].values())[0]
    e = {"test_auroc": x["test"]["auroc"]["values"], "val_auroc": x.get("val", {}).get("auroc", {}).get("values", [])}
    res["mimic4_demo_20_splits"][tag] = {**e, **{f"mean_{k}": float(np.mean(v)) for k, v in e.items() if v}}
for tag in ("dain", "tree", "dense", "treedense", "late_fusion"):
    ms = [json.load(open(f"{out}/p12small/t/{tag}/n70_s{k}/metrics.json")) for k in range(5)]
    e = {"val_auroc": [m["val"]["auroc"] for m in ms], "test_auroc": [m["test"]["auroc"] for m in ms]}
    res["p12_cut_70_stays_5_draws"][tag] = {**e, **{f"mean_{k}": float(np.mean(v)) for k, v in e.items()}}
json.dump(res, open(f"{r}/small_data_trees.json", "w"), indent=1)
PY
