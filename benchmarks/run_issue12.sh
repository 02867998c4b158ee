#!/usr/bin/env bash
# The DAIN-redesign tables of docs/results.md ("DAIN redesign"): every registered model on mfeat (TMC split, 5 seeds)
# and basicmotions (5 seeds), a subset on AV-digits (3 seeds), DAIN with its defaults (5 splits x 2 seeds) and with
# the tree agent (5 splits x 1 seed) on P12 (Raindrop protocol); then one table per benchmark with CPU latency
# measured side by side and the accuracy-vs-FLOPs plot (benchmarks/tables_issue12.sh). CPU only, two fits at a time, one thread each: about
# 2.5 hours on 2 cores. compare is restartable: finished runs are reused.
# Usage: bash benchmarks/run_issue12.sh [OUT]
set -uo pipefail
OUT=${1:-runs/issue12}
R=benchmarks/results/issue12
mkdir -p "$OUT" "$R"
BASE=early_fusion,late_fusion,transformer,lrtf,moe_topk,fusemoe,flexmoe,i2moe,gbm,timemoe,timemoe_norus,timemoe_noaux
DAIN=dain,dain_tree,dain_nocomm,dain_dense,dain_nospec,dain_noroute,dain_nodeep
cmp() { dain compare "$@" --jobs 2 --threads 1 --no-progress --no-frontier; }
cmp --config configs/physionet2012_raindrop_dain.yaml --models dain --all-splits --seeds 2 --out "$OUT/p12_dain"
cmp --config configs/physionet2012_raindrop_dain.yaml --models dain_tree --all-splits --seeds 1 --out "$OUT/p12_dain"
# P12 baselines: accuracy from benchmarks/results/p12_raindrop_*.json (same protocol and settings, earlier session);
# their FLOPs and latency from one-epoch runs of the same models (cost does not depend on the weights)
for m in late_fusion transformer timemoe; do
  dain fit --config configs/physionet2012_raindrop_dain.yaml --model $m --max-epochs 1 --threads 2 --no-progress \
    --out "$OUT/p12_cost/$m"
done
dain fit --config configs/physionet2012_raindrop_dain.yaml --model gbm --option summary_encoding=zscore --threads 2 \
  --no-progress --out "$OUT/p12_cost/gbm"
cmp --data basicmotions --models $DAIN,$BASE --seeds 5 --out "$OUT/basicmotions"
cmp --data avdigits --models dain,dain_tree,late_fusion,early_fusion,transformer,gbm --seeds 3 --out "$OUT/avdigits"
cmp --data mfeat --protocol tmc --models $DAIN,$BASE --seeds 5 --out "$OUT/mfeat_tmc"
