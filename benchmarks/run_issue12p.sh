#!/usr/bin/env bash
# Issue 12, 2026-12-07, second session (docs/results.md "The GRU-D decay fix, measured; dense gating below 1000
# training rows; bring-your-own shapes"). Each part ran against a checkout of the commit named (PYTHONPATH=SRC/src):
#   BEFORE = 476df55 (the time-aware encoder's state decay reading 0 at observed steps), AFTER = 2a46e6e (fixed; top-k
#   by default), NEW = f4e51ca (gating=auto). Fits one thread each, two at a time; about 3 hours on 2 cores.
# Usage: bash benchmarks/run_issue12p.sh OUT BEFORE AFTER NEW
set -euo pipefail
OUT=${1:?usage: run_issue12p.sh OUT BEFORE AFTER NEW}
BEFORE=${2:?}; AFTER=${3:?}; NEW=${4:?}
mkdir -p "$OUT"
T=configs/physionet2012_raindrop_dain.yaml
at() { src=$1; shift; PYTHONPATH="$src/src" "$@"; }

# 1. DAIN's tuned P12 config (time-aware encoders), 5 Raindrop splits, seed 0, before and after the GRU-D fix
for s in 1 2 3 4 5; do
  at "$BEFORE" dain fit --config $T --split $s --seed 0 --threads 1 --no-progress --quiet --out "$OUT/ta_before-s$s" &
  at "$AFTER" dain fit --config $T --split $s --seed 0 --threads 1 --no-progress --quiet --out "$OUT/ta_after-s$s"
  wait
done

# DAIN's defaults with the fixed time-aware encoders, 5 splits
for s in 1 2 3 4 5; do
  at "$AFTER" dain fit --config configs/physionet2012_raindrop.yaml --split $s --seed 0 --threads 1 --no-progress \
    --quiet --out "$OUT/defta_after-s$s" --set "encoders={vitals: time_aware, labs: time_aware}"
done

# 2. synthetic bring-your-own shapes (benchmarks/byo_shapes.py), dain and late fusion with defaults, one seed
python benchmarks/byo_shapes.py export "$OUT/byo"
for d in "$OUT"/byo/*/; do
  for m in dain late_fusion; do
    at "$AFTER" dain fit --data "$d" --model $m --seed 0 --threads 1 --no-progress --quiet --out "$OUT/runs/$(basename "$d")-$m"
  done
done
M3=(--seeds 3 --jobs 1 --threads 1 --quiet --no-frontier)
F="$OUT/byo/F_many_missing"
at "$AFTER" dain compare --data "$F" --models dain,late_fusion,gbm "${M3[@]}" --out "$OUT/F_base"
at "$AFTER" dain compare --data "$F" --models dain --set gating=dense "${M3[@]}" --out "$OUT/F_dense"
at "$AFTER" dain compare --data "$F" --models dain --set tree_agent=never "${M3[@]}" --out "$OUT/F_notree"

# 3. dense against top-k where the data are small: P12 cut to 300 stays (benchmarks/small_train_p12.py), 5 draws;
#    BasicMotions (32 training rows) and nutrimouse (30), 5 seeds
S="$OUT/p12small"
python benchmarks/small_train_p12.py export "$S"
for k in 0 1 2 3 4; do
  for g in topk dense; do
    at "$AFTER" dain fit --data "$S/n300_s$k" --model dain --set gating=$g --threads 1 --no-progress --quiet \
      --out "$OUT/p300/$g/n300_s$k"
  done
done
M5=(--seeds 5 --jobs 1 --threads 1 --quiet --no-frontier)
for d in basicmotions nutrimouse; do
  at "$AFTER" dain compare --data $d --models dain --set gating=topk "${M5[@]}" --out "$OUT/$d-topk"
  at "$AFTER" dain compare --data $d --models late_fusion "${M5[@]}" --out "$OUT/$d-lf"
  at "$AFTER" dain compare --data $d --models dain --set gating=dense "${M5[@]}" --out "$OUT/$d-dense"
done

# 4. the new default (gating=auto) on MIMIC-IV demo (20 splits) and P12 cut to 70 stays (5 draws), beside top-k
M20=(--seeds 20 --jobs 1 --threads 1 --quiet --no-frontier)
at "$NEW" dain compare --data mimic4-demo --models dain "${M20[@]}" --out "$OUT/mimic_new" &
at "$NEW" dain compare --data mimic4-demo --models dain --set gating=topk "${M20[@]}" --out "$OUT/mimic_topk"
wait
for k in 0 1 2 3 4; do
  at "$NEW" dain fit --data "$S/n300_s$k" --model dain --threads 1 --no-progress --quiet --out "$OUT/p300/new/n300_s$k"
done
for k in 0 1 2 3 4; do
  at "$NEW" dain fit --data "$S/n70_s$k" --model dain --threads 1 --no-progress --quiet --out "$OUT/p70/new/n70_s$k" &
  at "$NEW" dain fit --data "$S/n70_s$k" --model dain --set gating=topk --threads 1 --no-progress --quiet \
    --out "$OUT/p70/topk/n70_s$k"
  wait
done
for p in "$OUT"/runs "$OUT"/F_base "$OUT"/F_dense "$OUT"/F_notree "$OUT"/p300 "$OUT"/p70 "$OUT"/mimic_new "$OUT"/mimic_topk; do
  python benchmarks/byo_shapes.py summary "$p" > "$p.jsonl"
done
