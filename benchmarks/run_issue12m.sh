#!/usr/bin/env bash
# Issue 12: DAIN's tree agent on multiclass tasks of 4 / 6 / 8 classes where trees are weak (digits), as a new user
# meets them (bring-your-own folders, every model's defaults, 3 seeds): dain (tree_agent=auto -> always here),
# dain with tree_agent=never, late fusion, gbm. Records in benchmarks/results/issue12m/.
# Usage: bash benchmarks/run_issue12m.sh RUNS
set -uo pipefail
OUT=${1:?usage: run_issue12m.sh RUNS}
R=benchmarks/results/issue12m
mkdir -p "$R" "$OUT"
python benchmarks/class_subsets.py export "$OUT/data"
for f in mfeat_c4 mfeat_c6 mfeat_c8 avdigits_c4 avdigits_c6 avdigits_c8; do
  dain compare --data "$OUT/data/$f" --models dain,late_fusion,gbm --seeds 3 --jobs 2 --threads 1 --quiet \
    --no-frontier --out "$OUT/$f/defaults"
  dain compare --data "$OUT/data/$f" --models dain --set tree_agent=never --seeds 3 --jobs 2 --threads 1 --quiet \
    --no-frontier --out "$OUT/$f/no_trees"
done
python benchmarks/class_subsets.py summary "$OUT" > "$R/class_subsets_runs.jsonl"
# CPU time side by side (1 thread, 256 test rows; on the idle machine)
python - "$OUT" "$R" <<'PY'
import json, sys
from dain.training.frontier import measure_latency
out, r = sys.argv[1], sys.argv[2]
lat = {}
for ds in ("avdigits_c4", "avdigits_c6", "avdigits_c8", "mfeat_c4", "mfeat_c6", "mfeat_c8"):
    runs = {m: [f"{out}/{ds}/defaults/{m}-s{s}" for s in range(3)] for m in ("dain", "late_fusion", "gbm")}
    runs["dain_no_trees"] = [f"{out}/{ds}/no_trees/dain-s{s}" for s in range(3)]
    lat[ds] = measure_latency(runs, rounds=5)
json.dump(lat, open(f"{r}/latency_class_subsets.json", "w"), indent=1)
PY
for d in "$OUT"/*/*/compare.md; do  # the compare tables, one per folder and variant
  n=${d#"$OUT"/}; cp "$d" "$R/compare_$(dirname "$n" | tr / _).md"
done
