#!/usr/bin/env bash
# Issue 12, 2026-12-05 (docs/results.md "One-hidden-layer agents: DAIN's small-data gap (issue 12), measured
# 2026-12-05"). DAIN's agents lost their second hidden layer; this reruns what the change touches: P12 cut to 70 /
# 300 / 1000 training stays (with its ablations), MIMIC-IV demo (20 splits), P12 Raindrop's 5 splits (the new agent
# and the first design's, side by side), mfeat TMC, BasicMotions and AV-digits with late fusion and the frontier plot,
# and the side-by-side latency. Records in benchmarks/results/issue12h/. About 2.5 hours on 2 cores.
# Usage: bash benchmarks/run_issue12h.sh RUNS [OLD_SRC]
#   OLD_SRC: the src/ folder of a checkout of the commit before the change (0102daa), for the first design's P12
#   runs (default: skipped).
set -uo pipefail
OUT=${1:?usage: run_issue12h.sh RUNS [OLD_SRC]}
OLD=${2:-}
R=benchmarks/results/issue12h
P12=configs/physionet2012_raindrop.yaml
mkdir -p "$R" "$OUT"
# P12 Raindrop, 5 splits, seed 0, repository defaults (the tree agent on); the first design's agents beside them
for s in 1 2 3 4 5; do
  dain fit --config $P12 --split $s --seed 0 --threads 1 --no-progress --quiet --out "$OUT/p12/new_s$s"
  [ -n "$OLD" ] && PYTHONPATH="$OLD" dain fit --config $P12 --split $s --seed 0 --threads 1 --no-progress --quiet \
    --out "$OUT/p12/old_s$s"
done
python - "$OUT/p12" > "$R/p12_agent_shape.jsonl" <<'PY'
import json, sys
from pathlib import Path
for run in sorted(Path(sys.argv[1]).glob("*_s*/metrics.json")):
    m = json.loads(run.read_text())
    row = {"run": run.parent.name, "chosen": m["adaptive"]["chosen"], "flops_per_sample": m["efficiency"]["flops_per_sample"]}
    row["trained_setting_flops_per_sample"] = m["adaptive"]["trained_setting_flops_per_sample"]
    row.update({f"{s}_{k}": m[s][k] for s in ("val", "test") for k in ("auroc", "auprc")})
    print(json.dumps(row))
PY
# the three benchmarks with late fusion beside DAIN: table, CPU latency side by side, frontier plot
dain compare --data mfeat --protocol tmc --models dain,late_fusion --seeds 5 --jobs 1 --threads 1 --quiet \
  --out "$OUT/mfeat"
dain compare --data basicmotions --models dain,late_fusion --seeds 5 --jobs 1 --threads 1 --quiet --out "$OUT/bm"
dain compare --data avdigits --models dain,late_fusion --seeds 3 --jobs 1 --threads 1 --quiet --out "$OUT/av"
# small data: MIMIC-IV demo (each seed draws its own 70/15/15 split of 100 patients)
for m in dain late_fusion; do
  dain compare --data mimic4-demo --models $m --seeds 20 --jobs 1 --threads 1 --quiet --no-frontier \
    --out "$OUT/mimic20_$m"
done
dain compare --data mimic4-demo --models dain --set gating=dense --seeds 20 --jobs 1 --threads 1 --quiet \
  --no-frontier --out "$OUT/mimic20_dense"
# small training splits judged on P12's full validation split (1199 stays): 70 / 300 / 1000 training stays, 5 draws
S=$OUT/p12small
python benchmarks/small_train_p12.py export "$S"
for n in 70 300 1000; do for k in 0 1 2 3 4; do
  d="$S/n${n}_s$k"
  dain fit --data "$d" --model dain --threads 1 --no-progress --quiet --out "$S/h/dain/n${n}_s$k"
  dain fit --data "$d" --model dain --set gating=dense --threads 1 --no-progress --quiet --out "$S/h/dense/n${n}_s$k"
  if [ "$n" = 1000 ]; then  # late fusion and gbm at 70 / 300: the records of 2026-12-04 (run_issue12g.sh)
    dain fit --data "$d" --model late_fusion --threads 1 --no-progress --quiet --out "$S/h/late_fusion/n${n}_s$k"
    dain fit --data "$d" --model gbm --threads 1 --no-progress --quiet --out "$S/h/gbm/n${n}_s$k"
  fi
  [ "$n" = 1000 ] || python benchmarks/consensus_weights_small.py "$d" "$S/h/uniform/n${n}_s$k" uniform defaults
done; done
for k in 0 1 2 3 4; do  # the agent's shape at 70 stays
  d="$S/n70_s$k"
  python benchmarks/agent_shape_small.py "$d" "$S/h/no_input_norm/n70_s$k" no_input_norm
  python benchmarks/agent_shape_small.py "$d" "$S/h/two_layer/n70_s$k" two_layer
  python benchmarks/agent_shape_small.py "$d" "$S/h/width32/n70_s$k" default --set agent_width=32
  python benchmarks/agent_shape_small.py "$d" "$S/h/width128/n70_s$k" default --set agent_width=128
done
python benchmarks/small_train_p12.py summary "$S" > "$R/small_train_p12.jsonl"
# CPU latency at batch 256, side by side in one process on the idle machine (1 thread)
python - "$OUT" "$R" <<'PY'
import json, sys
from dain.training.frontier import measure_latency
out, r = sys.argv[1], sys.argv[2]
runs = lambda b, m, n: [f"{out}/{b}/{m}-s{s}" for s in range(n)]  # noqa: E731
lat = {b: measure_latency({m: runs(b, m, n) for m in ("dain", "late_fusion")}) for b, n in (("mfeat", 5), ("av", 3), ("bm", 5))}
json.dump(lat, open(f"{r}/latency_b256.json", "w"), indent=1)
PY
