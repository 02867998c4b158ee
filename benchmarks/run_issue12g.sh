#!/usr/bin/env bash
# Issue 12, 2026-12-04 (docs/results.md "Small data, P12's budget curve with the tree agent, CPU time (issue 12),
# measured 2026-12-04"). Fits, then the measurements; records in benchmarks/results/issue12g/. About 2 hours on 2
# cores.
# Usage: bash benchmarks/run_issue12g.sh RUNS
set -uo pipefail
OUT=${1:?usage: run_issue12g.sh RUNS}
R=benchmarks/results/issue12g
P12=configs/physionet2012_raindrop.yaml
mkdir -p "$R" "$OUT"
# P12 defaults (the tree agent on), Raindrop splits 1 and 2, seed 0: the budget curve's runs
for s in 1 2; do
  dain fit --config $P12 --split $s --seed 0 --threads 1 --no-progress --out "$OUT/p12s$s"
done
# one-epoch cost runs of the baselines (FLOPs and latency do not depend on the weights)
dain fit --config $P12 --model late_fusion --max-epochs 1 --threads 1 --no-progress --out "$OUT/p12cost/late_fusion"
dain fit --config $P12 --model gbm --option summary_encoding=zscore --threads 1 --no-progress --out "$OUT/p12cost/gbm"
dain compare --data mfeat --protocol tmc --models dain,late_fusion --seeds 5 --jobs 1 --threads 1 --quiet --out "$OUT/mfeat"
dain compare --data avdigits --models dain,late_fusion --seeds 3 --jobs 1 --threads 1 --quiet --out "$OUT/av"
dain compare --data basicmotions --models dain,late_fusion --seeds 5 --jobs 1 --threads 1 --quiet --out "$OUT/bm"
# small data: MIMIC-IV demo (100 patients; each seed draws its own 70/15/15 split), nutrimouse (40 mice)
dain compare --data mimic4-demo --models dain,late_fusion --seeds 20 --jobs 2 --threads 1 --quiet --no-frontier \
  --out "$OUT/mimic20"
dain compare --data mimic4-demo --models dain --set gating=dense --seeds 20 --jobs 2 --threads 1 --quiet \
  --no-frontier --out "$OUT/mimic20_dense"
dain compare --data mimic4-demo --models dain,late_fusion --seeds 20 --batch-size 16 --jobs 2 --threads 1 --quiet \
  --no-frontier --out "$OUT/mimic20_b16"
dain compare --data mimic4-demo --models gbm --seeds 20 --jobs 2 --threads 1 --quiet --no-frontier \
  --out "$OUT/mimic20_gbm"
dain compare --data mimic4-demo --models dain,late_fusion,early_fusion,gbm --seeds 5 --jobs 2 --threads 1 --quiet \
  --no-frontier --out "$OUT/mimic5"
dain compare --data nutrimouse --models dain,late_fusion,early_fusion,gbm --seeds 5 --jobs 2 --threads 1 --quiet \
  --no-frontier --out "$OUT/nutri"
python benchmarks/small_data_routing.py "$OUT/mimic20" --dense-dir "$OUT/mimic20_dense" > "$R/mimic4_demo_routing.json"
# small training splits judged on a large validation split: P12 split 1 with 70 / 300 training stays (5 subsamples)
S=$OUT/p12small
python benchmarks/small_train_p12.py export "$S"
for n in 70 300; do for k in 0 1 2 3 4; do
  dain compare --data "$S/n${n}_s$k" --models dain,late_fusion --seeds 1 --jobs 2 --threads 1 --quiet --no-frontier \
    --out "$S/out/n${n}_s$k"
  dain compare --data "$S/n${n}_s$k" --models dain --set gating=dense --seeds 1 --threads 1 --quiet --no-frontier \
    --out "$S/out_dense/n${n}_s$k"
  dain fit --data "$S/n${n}_s$k" --model gbm --threads 1 --no-progress --quiet --out "$S/out/n${n}_s$k/gbm-s0"
done; done
for abl in "noagents lambda_agents=0" "noroute lambda_route=0 lambda_spec=0" \
  "noaux lambda_agents=0 lambda_route=0 lambda_spec=0 lambda_sparse=0 lambda_comm=0" "budget0 active_agents=0" \
  "topk4 active_agents=4" "width128 agent_width=128"; do
  set -- $abl; tag=$1; shift; sets=(); for kv in "$@"; do sets+=(--set "$kv"); done
  for k in 0 1 2 3 4; do
    dain fit --data "$S/n70_s$k" --model dain "${sets[@]}" --threads 1 --no-progress --quiet --out "$S/abl/$tag/n70_s$k"
  done
done
for k in 0 1 2 3 4; do  # late fusion's structure inside DAIN: one unique agent per modality, all of them on every row
  dain fit --data "$S/n70_s$k" --model dain --set "roles=[unique:vitals,unique:labs,unique:static,unique:summary]" \
    --set gating=dense --threads 1 --no-progress --quiet --out "$S/abl/uniquedense/n70_s$k"
  dain fit --data "$S/n70_s$k" --model dain --set "roles=[unique:vitals,unique:labs,unique:static,unique:summary]" \
    --set gating=dense --set comm_rounds=0 --threads 1 --no-progress --quiet --out "$S/abl/uniquedense_nocomm/n70_s$k"
done
python benchmarks/small_train_p12.py summary "$S" > "$R/small_train_p12.jsonl"
# the consensus weights on the same structure: learned (the uniquedense runs again), uniform, uniform without the
# shared agent
for mode in learned uniform uniform_noshared; do for k in 0 1 2 3 4; do
  python benchmarks/consensus_weights_small.py "$S/n70_s$k" "$S/diag/${mode}_s$k" $mode
done; done > "$R/consensus_weights_small.jsonl"
# the tree agent alone under feature variants (Raindrop splits 1 and 2)
for s in 1 2; do
  for v in "zscore base" "zscore vectors" "zscore stdfirst" "ple base"; do
    python benchmarks/tree_features.py $s $v
  done
done > "$R/tree_features_p12.jsonl"
# P12's budget curve (2 runs) and the side-by-side latency (idle machine, one process per benchmark)
python - "$OUT" "$R" <<'PY'
import json, sys
from dain.training.frontier import budget_curve, measure_latency
out, r = sys.argv[1], sys.argv[2]
with open(f"{r}/p12_budget_curve.jsonl", "w") as f:
    for p in budget_curve([f"{out}/p12s1", f"{out}/p12s2"]):
        f.write(json.dumps(p) + "\n")
def runs(d, m, n):
    return [f"{out}/{d}/{m}-s{s}" for s in range(n)]
lat = {
    "p12": measure_latency({"dain": [f"{out}/p12s1", f"{out}/p12s2"], "late_fusion": f"{out}/p12cost/late_fusion",
                            "gbm": f"{out}/p12cost/gbm"}),
    "mfeat_tmc": measure_latency({m: runs("mfeat", m, 5) for m in ("dain", "late_fusion")}),
    "avdigits": measure_latency({m: runs("av", m, 3) for m in ("dain", "late_fusion")}),
}
json.dump(lat, open(f"{r}/latency_b256.json", "w"), indent=1)
PY
