#!/usr/bin/env bash
# Robustness to missing modalities (issue 13, docs/results.md "Missing modalities"): every model below trained
# without and with training-time modality dropout (p = 0.3, fixed before any run), then re-tested with each single
# modality dropped, labs + summary dropped together (P12), and at missing rates 0.1 / 0.3 / 0.5 (`compare
# --robustness`). CPU only, two fits at a time, one thread each. compare is restartable: finished runs and their
# robustness scores are reused.
# Usage: bash benchmarks/run_issue13.sh [OUT]      (DAIN=<python -m dain.cli or dain> to pick the code)
set -uo pipefail
OUT=${1:-runs/issue13}
DAIN_CMD=${DAIN:-dain}
mkdir -p "$OUT"
cmp() { $DAIN_CMD compare "$@" --jobs 2 --threads 1 --no-progress --no-frontier --robustness; }
AV=dain,dain_tree,late_fusion,early_fusion,transformer,fusemoe,flexmoe,gbm  # basicmotions and avdigits
P12=dain,gbm,late_fusion,early_fusion,flexmoe,fusemoe
P12C=(--config configs/physionet2012_raindrop_dain.yaml --all-splits --seeds 1 --robustness-drop labs,summary)
cmp "${P12C[@]}" --models $P12 --out "$OUT/p12"
cmp "${P12C[@]}" --models $P12 --modality-dropout 0.3 --out "$OUT/p12_md"
cmp --data basicmotions --models $AV --seeds 5 --out "$OUT/basicmotions"
cmp --data basicmotions --models $AV --seeds 5 --modality-dropout 0.3 --out "$OUT/basicmotions_md"
# AV-digits: one seed, rates 0.3 / 0.5 (what the 2026-12-01 session had time for; 3 seeds and the dropout pass next)
cmp --data avdigits --models $AV --seeds 1 --robustness-rates 0.3,0.5 --out "$OUT/avdigits1"
# cmp --data avdigits --models $AV --seeds 3 --modality-dropout 0.3 --out "$OUT/avdigits_md"
