#!/usr/bin/env bash
# Issue 12, 2026-12-05 (evening): DAIN's defaults on task types no goal benchmark has (regression, multilabel), as a
# user meets them (P12's inputs exported as bring-your-own folders), the tree agent there, and mfeat TMC's ceiling.
# Records in benchmarks/results/issue12j/. About 1.5 hours on 2 cores.
# Usage: bash benchmarks/run_issue12j.sh OUT
set -uo pipefail
OUT=${1:?usage: run_issue12j.sh OUT}
R=benchmarks/results/issue12j
mkdir -p "$R"
G=$OUT/p12targets
python benchmarks/p12_other_targets.py export "$G"  # saps / los / multi, 300 and 1000 training stays, 3 draws each
fit() {  # model folder fits-subfolder [--set value]
  dain fit --data "$G/$2" --model "$1" ${4:+--set $4} --threads 1 --no-progress --quiet --out "$G/fits/$3/$2"
}
# `dain` rows were fitted before tree_agent=auto covered regression (the code of faec6e8): rerun them with
# --set tree_agent=never to get the same runs from today's code; `dain_tree` is today's default on regression
for k in 0 1 2; do
  for t in saps los; do
    fit dain ${t}_n300_s$k dain tree_agent=never & fit dain ${t}_n300_s$k dain_tree tree_agent=always; wait
    fit late_fusion ${t}_n300_s$k late_fusion & fit gbm ${t}_n300_s$k gbm; wait
  done
  for n in 300 1000; do
    fit dain multi_n${n}_s$k dain & fit late_fusion multi_n${n}_s$k late_fusion; wait
    fit dain multi_n${n}_s$k dain_tree tree_agent=always & fit gbm multi_n${n}_s$k gbm; wait
  done
done
for k in 0 1; do
  fit dain saps_n1000_s$k dain tree_agent=never & fit dain saps_n1000_s$k dain_tree tree_agent=always; wait
  fit late_fusion saps_n1000_s$k late_fusion & fit gbm saps_n1000_s$k gbm; wait
done
# the multilabel `dain` runs were first calibrated with the F1-only rule; `dain_recal` = the same weights with
# today's calibration (macro AUROC checked too), which is what `dain fit` now ends with
mkdir -p "$G/fits/dain_recal" && cp -r "$G"/fits/dain/multi_* "$G/fits/dain_recal/"
python benchmarks/recalibrate_runs.py --force "$G/fits/dain_recal"
# recorded as p12_regression_300.jsonl and p12_multilabel_and_saps_1000.jsonl (the fits ran under two roots; SAPS-I
# at 300 rows: late fusion and gbm are issue12i's records of the same folders)
python benchmarks/p12_other_targets.py summary "$G" > "$R/p12_other_targets.jsonl"
# mfeat TMC: the rows every model misses (5 seeds of dain, late fusion seed 0)
dain compare --data mfeat --protocol tmc --models dain,late_fusion --seeds 5 --jobs 2 --threads 1 --quiet \
  --no-frontier --out "$OUT/mf5"
python benchmarks/mfeat_ceiling.py "$OUT"/mf5/dain-s{0,1,2,3,4} "$OUT/mf5/late_fusion-s0" > "$R/mfeat_ceiling.jsonl"
# multilabel variants tried and not adopted (dain_dense, dain_k1, dain_nodeep in the records)
for k in 0 1 2; do
  fit dain multi_n300_s$k dain_dense gating=dense & fit dain multi_n300_s$k dain_k1 active_agents=1; wait
  fit dain multi_n300_s$k dain_nodeep lambda_agents=0 & fit dain multi_n1000_s$k dain_nodeep lambda_agents=0; wait
done
python benchmarks/p12_other_targets.py summary "$G" > "$R/p12_other_targets.jsonl"
# multilabel with checkpoints selected on macro AUROC (both models alike)
for n in 300 1000; do for k in 0 1 2; do
  dain fit --config $R/monitor_auroc.yaml --data "$G/multi_n${n}_s$k" --model dain --threads 1 --no-progress --quiet \
    --out "$G/fits/dain_monauroc/multi_n${n}_s$k" &
  dain fit --config $R/monitor_auroc.yaml --data "$G/multi_n${n}_s$k" --model late_fusion --threads 1 --no-progress \
    --quiet --out "$G/fits/late_fusion_monauroc/multi_n${n}_s$k"; wait
done; done
python benchmarks/p12_other_targets.py summary "$G" > "$R/p12_other_targets.jsonl"
