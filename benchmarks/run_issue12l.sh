#!/usr/bin/env bash
# Issue 12, 2026-12-06 (second session): DAIN's tree agent on a multiclass task as a new user meets it. P12's inputs
# (Raindrop split 1) with a four-class target (how the stay ended: died in hospital, or survived after <= 7, 8-14,
# > 14 days) as bring-your-own folders of 300 / 1000 / all training stays; default settings, and DAIN with the tree
# agent forced on. Records in benchmarks/results/issue12l/.
# Usage: bash benchmarks/run_issue12l.sh OUT
set -uo pipefail
OUT=${1:?usage: run_issue12l.sh OUT}
R=benchmarks/results/issue12l
mkdir -p "$R"
G=$OUT/p12targets
[ -d "$G/disch_nall_s0" ] || (cd benchmarks && python p12_other_targets.py export "$G")
fit() {  # model folder fits-subfolder [--set value] [more dain fit options]
  dain fit --data "$G/$2" --model "$1" ${4:+--set $4} "${@:5}" --threads 1 --no-progress --quiet --out "$G/fits/$3/$2"
}
for n in 300 1000; do for k in 0 1 2; do
  fit dain disch_n${n}_s$k dain & fit dain disch_n${n}_s$k dain_tree tree_agent=always; wait
  fit late_fusion disch_n${n}_s$k late_fusion & fit gbm disch_n${n}_s$k gbm; wait
done; done
fit dain disch_nall_s0 dain & fit dain disch_nall_s0 dain_tree tree_agent=always; wait
fit late_fusion disch_nall_s0 late_fusion & fit gbm disch_nall_s0 gbm; wait
# every training stay at two more seeds (the folder has one draw: the seed changes the fits, not the rows)
for s in 1 2; do
  fit dain disch_nall_s0 dain_seed$s "" --seed $s & fit late_fusion disch_nall_s0 late_fusion_seed$s "" --seed $s; wait
  fit dain disch_nall_s0 dain_tree_seed$s tree_agent=always --seed $s & fit gbm disch_nall_s0 gbm_seed$s "" --seed $s; wait
done
(cd benchmarks && python p12_other_targets.py summary "$G") | grep '"disch"' > "$R/p12_multiclass.jsonl"
# fixed tree blend weights on the runs with the tree agent (an analysis for the report: it chooses nothing)
python benchmarks/tree_blend_fixed.py "$G"/fits/dain_tree*/disch_* > "$R/tree_blend_fixed.jsonl"
