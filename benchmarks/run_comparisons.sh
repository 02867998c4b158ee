#!/usr/bin/env bash
# The comparisons reported in docs/results.md. CPU-only; 2 parallel fits with 1 thread each.
# Usage: bash benchmarks/run_comparisons.sh [OUT]   (run directories under OUT, tables copied to benchmarks/results/)
set -uo pipefail
OUT=${1:-runs/bench}
R=benchmarks/results
mkdir -p "$R"
ALL=early_fusion,late_fusion,transformer,lrtf,moe_topk,fusemoe,flexmoe,i2moe,dain,dain_nocomm,dain_dense,dain_nospec,timemoe,timemoe_norus,timemoe_noaux
cmp() {  # name, then dain compare args
  local name=$1; shift
  dain compare "$@" --out "$OUT/$name" --jobs 2 --json --patience 8 > "$R/$name.json" 2> "$OUT/$name.log"
  cp "$OUT/$name/compare.md" "$R/$name.md"
}
mkdir -p "$OUT"
cmp mfeat --data mfeat --models $ALL --seeds 3 --max-epochs 20
cmp basicmotions --data basicmotions --models $ALL,gbm --seeds 3 --max-epochs 60
cmp mfeat_gbm --data mfeat --models gbm --seeds 3 --set learning_rate=0.1 --set n_estimators=300 --set early_stopping_rounds=30
cmp physionet2012 --data physionet2012 --models late_fusion,transformer,dain,timemoe,moe_topk,gbm --seeds 3 \
  --max-epochs 12 --batch-size 128
