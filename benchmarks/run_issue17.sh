#!/usr/bin/env bash
# Time-MoE with temporal R/U/S (issue 17, docs/results.md "Time-MoE, temporal R/U/S"): timemoe (default: per-window
# R/U/S) against timemoe_static (one R/U/S per pair), timemoe_norus (router without R/U/S), transformer, moe_topk and
# gbm, every model with its defaults. BasicMotions: 5 seeds; P12 (Raindrop protocol, configs/physionet2012_raindrop_dain.yaml
# data + training settings for every model): one seed per split, split by split so that every finished split is a
# complete comparison. CPU only, two fits at a time, one thread each; compare reuses finished runs.
# Then the routing-evidence benchmark (generated redundant/unique data, default thresholds).
# Usage: bash benchmarks/run_issue17.sh [OUT] [SPLITS]   (DAIN=<python -m dain.cli or dain> to pick the code)
set -uo pipefail
OUT=${1:-runs/issue17}
SPLITS=${2:-1 2 3 4 5}
DAIN_CMD=${DAIN:-dain}
PY=${PYTHON:-python}
mkdir -p "$OUT"
cmp() { $DAIN_CMD compare "$@" --jobs 2 --threads 1 --no-progress; }
M=timemoe,timemoe_static,transformer,timemoe_norus,moe_topk,gbm
cmp --data basicmotions --models $M --seeds 5 --out "$OUT/basicmotions"
$PY benchmarks/routing_follows_interactions.py --epochs 6 --seeds 0 1 2 --out "$OUT/routing_evidence.json"
for k in $SPLITS; do
  cmp --config configs/physionet2012_raindrop_dain.yaml --split "$k" --models $M --seeds 1 --out "$OUT/p12_s$k"
done
