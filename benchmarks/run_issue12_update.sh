#!/usr/bin/env bash
# Issue 12, second measurement (docs/results.md "DAIN redesign, continued"): reruns the rows whose code changed
# since benchmarks/run_issue12.sh (the bootstrap-bounded calibration, the 5-fold tree agent that runs only on its
# routed rows): DAIN and DAIN with the tree agent on every benchmark, beside the baselines a table needs for CPU
# latency measured side by side; the other rows are the recorded results of the earlier tables (their code did not
# change; timemoe's rows are reruns of issue 17's rewrite or issue 17's own runs). CPU only, two fits at a time, one thread each: about
# 1.5 hours on 2 cores. compare is restartable: finished runs are reused.
# Usage: bash benchmarks/run_issue12_update.sh [OUT]
set -uo pipefail
OUT=${1:-runs/issue12b}
R=benchmarks/results/issue12b
R1=benchmarks/results/issue12
R17=benchmarks/results/issue17
mkdir -p "$OUT" "$R"
cmp() { dain compare "$@" --jobs 2 --threads 1 --no-progress --no-frontier; }
P12=configs/physionet2012_raindrop_dain.yaml
cmp --config $P12 --models dain,dain_tree --all-splits --seeds 2 --out "$OUT/p12"
for m in late_fusion transformer timemoe moe_topk; do  # cost (FLOPs, latency) does not depend on the weights
  dain fit --config $P12 --model $m --max-epochs 1 --threads 2 --no-progress --out "$OUT/p12_cost/$m"
done
dain fit --config $P12 --model gbm --option summary_encoding=zscore --threads 2 --no-progress --out "$OUT/p12_cost/gbm"
cmp --data avdigits --models dain,dain_tree,late_fusion,early_fusion,transformer,gbm --seeds 3 --out "$OUT/avdigits"
cmp --data mfeat --protocol tmc --models dain,dain_tree,late_fusion,timemoe,timemoe_norus,timemoe_noaux,timemoe_static \
  --seeds 5 --out "$OUT/mfeat_tmc"
cmp --data basicmotions --models dain,dain_tree,late_fusion,timemoe_noaux --seeds 5 --out "$OUT/basicmotions"

# tables: rows of this session's runs, then recorded rows (first file wins; timemoe from issue 17's rewrite)
python - "$OUT" "$R1" "$R17" <<'PY'
import json, sys
out, r1, r17 = sys.argv[1:]
for name, old in (("p12", "p12_raindrop"), ("mfeat_tmc", "mfeat_tmc"), ("basicmotions", "basicmotions")):
    d = json.load(open(f"{r1}/{old}/compare.json"))
    d["results"] = {m: r for m, r in d["results"].items() if not m.startswith("timemoe")}
    json.dump(d, open(f"{out}/{name}_published.json", "w"))
PY
T="python benchmarks/frontier_table.py"
$T "$R/p12_raindrop" "$OUT/p12" --curve-runs 5 --cost-runs "$OUT"/p12_cost/* \
  --published-json "$OUT/p12_published.json" "$R17/p12/compare.json"
$T "$R/avdigits" "$OUT/avdigits"
$T "$R/mfeat_tmc" "$OUT/mfeat_tmc" --published-json "$OUT/mfeat_tmc_published.json"
$T "$R/basicmotions" "$OUT/basicmotions" --published-json "$OUT/basicmotions_published.json" \
  "$R17/basicmotions/compare.json"
