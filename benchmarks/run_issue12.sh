#!/usr/bin/env bash
# The DAIN-redesign tables of docs/results.md ("DAIN redesign"): every registered model on mfeat (TMC split, 5 seeds),
# basicmotions (5 seeds), AV-digits (3 seeds, a subset of models) and DAIN on P12 (Raindrop protocol, 5 splits x
# 2 seeds); then one table per benchmark with CPU latency measured side by side and the accuracy-vs-FLOPs plot.
# CPU only, one thread per fit. About 4 hours on 2 cores when run one after another.
# Usage: bash benchmarks/run_issue12.sh [OUT]
set -uo pipefail
OUT=${1:-runs/issue12}
R=benchmarks/results/issue12
mkdir -p "$OUT" "$R"
BASE=early_fusion,late_fusion,transformer,lrtf,moe_topk,fusemoe,flexmoe,i2moe,gbm,timemoe,timemoe_norus,timemoe_noaux
DAIN=dain,dain_nocomm,dain_dense,dain_nospec,dain_noroute,dain_nodeep
cmp() { dain compare "$@" --jobs 1 --threads 1 --no-progress --no-frontier; }
cmp --data mfeat --protocol tmc --models $BASE --seeds 5 --out "$OUT/mfeat_tmc_base"
cmp --data mfeat --protocol tmc --models $DAIN --seeds 5 --out "$OUT/mfeat_tmc_dain"
cmp --data basicmotions --models $BASE,$DAIN --seeds 5 --out "$OUT/basicmotions"
cmp --data avdigits --models late_fusion,early_fusion,transformer,gbm,dain,dain_nocomm --seeds 3 --out "$OUT/avdigits"
cmp --config configs/physionet2012_raindrop_dain.yaml --models dain --all-splits --seeds 2 --out "$OUT/p12_dain"
# P12 baselines: accuracy from benchmarks/results/p12_raindrop_*.json (same protocol and settings, earlier session);
# their FLOPs and latency from one-epoch runs of the same models (cost does not depend on the weights)
for m in late_fusion transformer timemoe; do
  dain fit --config configs/physionet2012_raindrop_dain.yaml --model $m --max-epochs 1 --out "$OUT/p12_cost/$m"
done
dain fit --config configs/physionet2012_raindrop_dain.yaml --model gbm --option summary_encoding=zscore \
  --out "$OUT/p12_cost/gbm"
# the tree agent, one seed per split (validation decides whether it is the better config)
for sp in 1 2 3 4 5; do
  dain fit --config configs/physionet2012_raindrop_dain.yaml --split $sp --set tree_agent=always \
    --out "$OUT/p12_tree/split$sp"
done
T="python benchmarks/frontier_table.py"
$T "$R/mfeat_tmc" "$OUT/mfeat_tmc_base" "$OUT/mfeat_tmc_dain"
$T "$R/basicmotions" "$OUT/basicmotions"
$T "$R/avdigits" "$OUT/avdigits"
$T "$R/p12_raindrop" "$OUT/p12_dain" --cost-runs "$OUT"/p12_cost/* \
  --published-json benchmarks/results/p12_raindrop_ple.json benchmarks/results/p12_raindrop_ple_b.json \
  benchmarks/results/p12_raindrop_gbm.json
