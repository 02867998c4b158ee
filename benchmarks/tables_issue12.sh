#!/usr/bin/env bash
# Tables and frontier plots from the runs of benchmarks/run_issue12.sh (run on a quiet machine: it times latency).
set -uo pipefail
OUT=${1:-runs/issue12}
R=benchmarks/results/issue12
T="python benchmarks/frontier_table.py"
$T "$R/mfeat_tmc" "$OUT/mfeat_tmc"
$T "$R/basicmotions" "$OUT/basicmotions"
$T "$R/avdigits" "$OUT/avdigits"
$T "$R/p12_raindrop" "$OUT/p12_dain" --curve-runs 5 --cost-runs "$OUT"/p12_cost/* \
  --published-json benchmarks/results/p12_raindrop_ple.json benchmarks/results/p12_raindrop_ple_b.json \
  benchmarks/results/p12_raindrop_gbm.json
