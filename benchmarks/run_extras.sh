#!/usr/bin/env bash
# Protocol tables reported in docs/results.md (run after run_comparisons.sh): mfeat on the TMC split, P12 on the
# Raindrop protocol (about 100 min on 2 CPU cores).
set -uo pipefail
OUT=${1:-runs/bench}
R=benchmarks/results
mkdir -p "$R" "$OUT"
# mfeat on the TMC split, 5 seeds, TMC's published number beside ours
dain compare --data mfeat --protocol tmc --published --models dain,late_fusion --seeds 5 --max-epochs 20 \
  --patience 8 --jobs 2 --out "$OUT/mfeat_tmc" --json > "$R/mfeat_tmc.json" 2> "$OUT/mfeat_tmc.log"
cp "$OUT/mfeat_tmc/compare.md" "$R/mfeat_tmc.md"
# P12, Raindrop protocol: 5 fixed splits, checkpoint selected on validation AUROC, published rows beside ours.
# Every neural model reads the same four modalities (vitals, labs, static, PLE summary) with the training settings
# of configs/physionet2012_raindrop_dain.yaml; DAIN keeps that file's model params, the others use their defaults.
p12() {
  local name=$1; shift
  dain compare --config configs/physionet2012_raindrop_dain.yaml --all-splits --published --jobs 2 \
    --out "$OUT/$name" --json "$@" > "$R/$name.json" 2> "$OUT/$name.log"
  cp "$OUT/$name/compare.md" "$R/$name.md"
}
p12 p12_raindrop_ple --models dain,late_fusion --seeds 2 --ensemble
p12 p12_raindrop_ple_b --models timemoe,transformer --seeds 1
p12 p12_raindrop_gbm --models gbm --seeds 1 --option summary_encoding=zscore  # trees need no PLE
