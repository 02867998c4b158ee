#!/usr/bin/env bash
# Issue 12, 2026-12-07, third session (docs/results.md "The tree agent's column screen on wide data; more unseen
# shapes"). One thread per process, at most two at a time on the 2-core machine; about 1.5 hours.
# Usage: bash benchmarks/run_issue12q.sh OUT
set -euo pipefail
OUT=${1:?usage: run_issue12q.sh OUT}
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
python benchmarks/byo_shapes.py export "$OUT/byo"
B=benchmarks/tree_agent_screen.py

# 1. the tree agent's cross-fit alone, screened (256 columns per fold) and not: wide folders, mfeat, P12 splits 1-3
for s in 0 1; do
  for m in on off; do
    python $B $m "$OUT/byo/A_binary_highdim" $s >> "$OUT/tree_agent_screen.jsonl"
    python $B $m "$OUT/byo/G_omics_wide" $s >> "$OUT/tree_agent_screen.jsonl"
  done
done
for m in on off; do python $B $m mfeat >> "$OUT/tree_agent_screen.jsonl"; done
for s in 1 2 3; do
  for m in on on:512 off; do python $B $m $s >> "$OUT/tree_agent_screen.jsonl"; done
done

# 2. end to end with the defaults (the screen on where the bins say so): the wide folders
for d in A_binary_highdim G_omics_wide; do
  for m in dain late_fusion; do
    dain fit --data "$OUT/byo/$d" --model $m --seed 0 --threads 1 --no-progress --quiet --out "$OUT/runs/$d-$m"
  done
done

# 3. the structureless "image" folder at two more seeds (seed 0: benchmarks/results/issue12p), and DAIN's variants
E="$OUT/byo/E_image"
fit() { dain fit --data "$E" --threads 1 --no-progress --quiet "$@"; }
for s in 1 2; do
  for m in dain late_fusion; do fit --model $m --seed $s --out "$OUT/runs/E_image-$m-s$s"; done
done
fit --model dain --seed 1 --patience 0 --out "$OUT/runs/E_image-dain-s1-nopat"
fit --model dain --seed 1 --set gating=dense --out "$OUT/runs/E_image-dain-s1-dense"
fit --model dain --seed 1 --set lambda_spec=0 --set lambda_route=0 --set lambda_sparse=0 --set lambda_comm=0 \
  --out "$OUT/runs/E_image-dain-s1-aux0"
for s in 0 1 2; do fit --model dain --seed $s --set agent_width=128 --out "$OUT/runs/E_image-dain-s$s-w128"; done
python benchmarks/byo_shapes.py summary "$OUT/runs" > "$OUT/byo_runs.jsonl"

# 4. four more shapes, every default, 3 seeds: 150 rows, a rare binary outcome, 30 modalities, an irregular series
for d in I_small H_imbalanced J_30_modalities K_irregular; do
  jobs=1; [ $d = J_30_modalities ] || [ $d = K_irregular ] && jobs=2
  dain compare --data "$OUT/byo/$d" --models dain,late_fusion,gbm --seeds 3 --jobs $jobs --threads 1 --quiet \
    --no-frontier --out "$OUT/cmp_$d"
done

# 5. calibration at tree weight 1 (06f9da2): A's DAIN run recalibrated on its own weights, and CPU time side by side
cp -r "$OUT/runs/A_binary_highdim-dain" "$OUT/runs_A_recal"
python benchmarks/recalibrate_runs.py --force "$OUT/runs_A_recal"
python -c "from dain.training.frontier import measure_latency as m; import json, sys; d = sys.argv[1]; print(json.dumps(
  m({'trained budget': f'{d}/runs/A_binary_highdim-dain', 'budget 0': f'{d}/runs_A_recal',
     'late_fusion': f'{d}/runs/A_binary_highdim-late_fusion'}, rounds=9)))" "$OUT"

# 6. the tree blend on small validation splits (24c6f18): replayed on finished runs, then the harness's finishing
#    step on copies (MIMIC-IV demo, P12 cuts and F with dense gating: issue12p's runs)
python benchmarks/tree_weight_small_val.py "$OUT/cmp_J_30_modalities" "$OUT/cmp_K_irregular" "$OUT/cmp_I_small" \
  "$OUT/runs/G_omics_wide-dain" > "$OUT/tree_weight_small_val.jsonl"
for d in cmp_J_30_modalities cmp_K_irregular runs/G_omics_wide-dain; do
  mkdir -p "$OUT/recal/$(dirname $d)" && cp -r "$OUT/$d" "$OUT/recal/$d"
done
python benchmarks/recalibrate_runs.py --force "$OUT/recal"

# 7. gbm beside the one-seed folders and E, and DAIN on E with its tree agent forced on (measured after the review)
for d in A_binary_highdim G_omics_wide; do
  dain fit --data "$OUT/byo/$d" --model gbm --seed 0 --threads 1 --no-progress --quiet --out "$OUT/gbmruns/$d-gbm"
done
for s in 0 1 2; do
  dain fit --data "$OUT/byo/E_image" --model gbm --seed $s --threads 1 --no-progress --quiet --out "$OUT/gbmruns/E_image-gbm-s$s"
done
dain fit --data "$OUT/byo/E_image" --model dain --seed 0 --threads 1 --no-progress --quiet --set tree_agent=always \
  --out "$OUT/gbmruns/E_image-dain-trees-s0"
python benchmarks/byo_shapes.py summary "$OUT/gbmruns" > "$OUT/byo_gbm_and_E_trees.jsonl"
