#!/usr/bin/env bash
# Issue 12, third measurement (docs/results.md "DAIN redesign: CPU time"). One new set of fits: DAIN with its library
# defaults on P12 (configs/physionet2012_raindrop.yaml, 5 splits x 2 seeds; the dain rows of the earlier P12 tables
# used DAIN's tuned config). Otherwise no new training: the runs of
# benchmarks/run_issue12_update.sh are given the current calibration rule (a cheaper setting must save >= 5% of the
# trained setting's FLOPs) with the harness's own finishing step on the unchanged weights, then every table is rebuilt
# with today's code: test metrics of the recalibrated runs, FLOPs on the path that runs, and CPU latency side by side
# (one process, one thread, interleaved rounds, every run of every model). The encoder and cascade changes of
# this measurement give the same outputs (bit-identical tokens for the CNN, <= 5e-7 on logits elsewhere), so only the
# recalibrated runs' accuracy can move. About 45 minutes on 2 cores.
# Usage: bash benchmarks/run_issue12_latency.sh RUNS   (RUNS: the OUT folder of run_issue12_update.sh)
set -uo pipefail
RUNS=${1:?usage: run_issue12_latency.sh RUNS}
R=benchmarks/results/issue12c
mkdir -p "$R"
dain compare --config configs/physionet2012_raindrop.yaml --models dain --all-splits --seeds 2 --jobs 2 --threads 1 \
  --no-progress --no-frontier --out "$RUNS/p12_defaults"
python benchmarks/recalibrate_runs.py --force "$RUNS/p12" "$RUNS/avdigits" "$RUNS/mfeat_tmc" "$RUNS/basicmotions"
# issue 17's BasicMotions timemoe rows, their latency dropped (latency is measured side by side here only)
python - "$RUNS" <<'PY'
import json, sys
d = json.load(open("benchmarks/results/issue17/basicmotions/compare.json"))
for r in d["results"].values():
    for k in ("latency_ms_b256", "latency_ms_b1"):
        r.get("efficiency", {}).pop(k, None)
json.dump(d, open(f"{sys.argv[1]}/basicmotions_issue17.json", "w"))
PY
T="python benchmarks/frontier_table.py"
$T "$R/p12_raindrop" "$RUNS/p12" --labelled defaults="$RUNS/p12_defaults" --curve-runs 2 --cost-runs "$RUNS"/p12_cost/* \
  --published-json "$RUNS/p12_published.json" benchmarks/results/issue17/p12/compare.json
$T "$R/avdigits" "$RUNS/avdigits"
$T "$R/mfeat_tmc" "$RUNS/mfeat_tmc" --published-json "$RUNS/mfeat_tmc_published.json"
$T "$R/basicmotions" "$RUNS/basicmotions" --published-json "$RUNS/basicmotions_published.json" \
  "$RUNS/basicmotions_issue17.json"
