#!/usr/bin/env bash
# Issue 12, 2026-12-06: multilabel defaults. Checkpoints selected on macro AUROC, per-label F1 thresholds tuned on
# validation (every model), DAIN's tree agent on multilabel; P12 Raindrop 5 splits refitted with DAIN's defaults for
# the adaptive-mode check (goal 3b), the calibrated fold count. Records in benchmarks/results/issue12k/. About 3 hours on 2
# cores.
# Usage: bash benchmarks/run_issue12k.sh OUT   (OUT may be the OUT of run_issue12j.sh: its fits are reused)
set -uo pipefail
OUT=${1:?usage: run_issue12k.sh OUT}
R=benchmarks/results/issue12k
mkdir -p "$R"
G=$OUT/p12targets
[ -d "$G/multi_nall_s0" ] || python benchmarks/p12_other_targets.py export "$G"
fit() {  # model folder fits-subfolder [--set value]
  dain fit --data "$G/$2" --model "$1" ${4:+--set $4} --threads 1 --no-progress --quiet --out "$G/fits/$3/$2"
}
# the experiment before the default changed: DAIN with the tree agent, checkpoints on macro AUROC
for n in 300 1000; do for k in 0 1 2; do
  dain fit --config benchmarks/results/issue12j/monitor_auroc.yaml --data "$G/multi_n${n}_s$k" --model dain \
    --set tree_agent=always --threads 1 --no-progress --quiet --out "$G/fits/dain_tree_monauroc/multi_n${n}_s$k"
done; done
# today's defaults, as a user runs a new folder
for n in 300 1000; do for k in 0 1 2; do
  fit dain multi_n${n}_s$k d6_dain & fit late_fusion multi_n${n}_s$k d6_late_fusion; wait
  fit gbm multi_n${n}_s$k d6_gbm
done; done
# every training stay of the split (9471), one folder
fit dain multi_nall_s0 d6_dain & fit late_fusion multi_nall_s0 d6_late_fusion; wait
fit gbm multi_nall_s0 d6_gbm
python benchmarks/p12_other_targets.py summary "$G" | grep '"multi"' \
  | grep -E '"model": "(d6_[a-z_]+|dain_tree_monauroc)"' > "$R/p12_multilabel_defaults.jsonl"
# thresholds after the fact on every multilabel run of both days (run_issue12j.sh's folders included)
python benchmarks/multilabel_thresholds.py "$G" late_fusion late_fusion_monauroc dain_recal dain_monauroc gbm \
  dain_tree_recal dain_tree_monauroc d6_dain d6_late_fusion d6_gbm > "$R/multilabel_thresholds.jsonl"
# thresholds tuned on small validation subsets (30-300 rows) of the 300-stay runs
python benchmarks/thresholds_small_val.py "$G"/fits/d6_{late_fusion,dain,gbm}/multi_n300_s{0,1,2} \
  > "$R/thresholds_small_val.jsonl"
# P12 Raindrop, 5 splits, DAIN's defaults (seed 0), then each run at its trained top-k for goal 3b
dain compare --config configs/physionet2012_raindrop.yaml --models dain --all-splits --seeds 1 --jobs 2 --threads 1 \
  --no-progress --no-frontier --out "$OUT/p12d6"
python benchmarks/adaptive_vs_full.py "$OUT"/p12d6/split*/dain-s0-split* > "$R/p12_adaptive_vs_full.jsonl"
# fewer fold boosters in the tree blend (calibration's new step, b4a0d6a): the same weights recalibrated (copies),
# then latency side by side, 1 thread, 256 test rows (late fusion: P12 split 1, defaults)
[ -f "$OUT/p12/lf_s1/metrics.json" ] || dain fit --config configs/physionet2012_raindrop.yaml --model late_fusion \
  --threads 1 --no-progress --quiet --out "$OUT/p12/lf_s1"
mkdir -p "$OUT/folds" && cp -r "$OUT"/p12d6/split*/dain-s0-split* "$G/fits/d6_dain/multi_nall_s0" "$OUT/folds/"
python benchmarks/recalibrate_runs.py --force "$OUT/folds"
python - "$OUT" "$G" > "$R/latency_tree_folds.jsonl" <<'PY'
import json, sys
from dain.training.frontier import measure_latency
out, g = sys.argv[1], sys.argv[2]
S = range(1, 6)
print(json.dumps(measure_latency({"dain_5folds": [f"{out}/p12d6/split{i}/dain-s0-split{i}" for i in S],
    "dain_calfolds": [f"{out}/folds/dain-s0-split{i}" for i in S], "late_fusion": f"{out}/p12/lf_s1"}, rounds=7)))
print(json.dumps(measure_latency({"dain_5folds": f"{out}/p12d6/split1/dain-s0-split1",
    "dain_calfolds": f"{out}/folds/dain-s0-split1", "late_fusion": f"{out}/p12/lf_s1"}, rounds=9)))
print(json.dumps(measure_latency({"dain_5folds": f"{g}/fits/d6_dain/multi_nall_s0", "dain_calfolds": f"{out}/folds/multi_nall_s0",
    "late_fusion": f"{g}/fits/d6_late_fusion/multi_nall_s0", "gbm": f"{g}/fits/d6_gbm/multi_nall_s0"}, rounds=9)))
PY
# DAIN refitted on the multilabel draws with the final code (the fold step included)
for n in 300 1000; do for k in 0 1 2; do fit dain multi_n${n}_s$k d6b_dain; done; done
python benchmarks/p12_other_targets.py summary "$G" | grep '"multi"' \
  | grep -E '"model": "(d6_[a-z_]+|d6b_dain|dain_tree_monauroc)"' > "$R/p12_multilabel_defaults.jsonl"
