#!/usr/bin/env bash
# Issue 12, 2026-12-06 (third session): the router prices the tree agent by its CPU time (TREE_COMPARISON_COST).
# Refits what the change touches, DAIN's defaults only (the other models did not change): the digit class subsets of
# run_issue12m.sh (3 seeds), P12 Raindrop's 5 splits (seed 0) and P12's four-class target (300 / 1000 stays, 3 draws;
# all stays, seeds 0-1). Records in benchmarks/results/issue12n/.
# Usage: bash benchmarks/run_issue12n.sh RUNS [RUNS_M]   (RUNS/data and RUNS/tg: the folders of run_issue12m.sh and
#        p12_other_targets.py export, made here when missing)
set -uo pipefail
OUT=${1:?usage: run_issue12n.sh RUNS}
R=benchmarks/results/issue12n
mkdir -p "$R" "$OUT"
[ -d "$OUT/data/mfeat_c4" ] || python benchmarks/class_subsets.py export "$OUT/data"
for f in mfeat_c4 mfeat_c6 mfeat_c8 avdigits_c4 avdigits_c6 avdigits_c8; do
  dain compare --data "$OUT/data/$f" --models dain --seeds 3 --jobs 2 --threads 1 --quiet --no-frontier \
    --out "$OUT/subsets/$f"
done
python benchmarks/class_subsets.py summary "$OUT/subsets" > "$R/class_subsets_runs.jsonl"
P12=configs/physionet2012_raindrop.yaml
p12() { dain fit --config $P12 --split "$1" --seed 0 --threads 1 --no-progress --quiet --out "$OUT/p12/s$1"; }
p12 1 & p12 2; wait
p12 3 & p12 4; wait
G=$OUT/tg
[ -d "$G/disch_nall_s0" ] || (cd benchmarks && python p12_other_targets.py export "$G")
disch() { dain fit --data "$G/$1" --model dain --threads 1 --no-progress --quiet --out "$OUT/disch/$2" "${@:3}"; }
p12 5 & disch disch_n300_s0 n300_s0; disch disch_n300_s1 n300_s1; disch disch_n300_s2 n300_s2; wait
disch disch_n1000_s0 n1000_s0 & disch disch_n1000_s1 n1000_s1; wait
disch disch_n1000_s2 n1000_s2 & disch disch_nall_s0 nall_seed0 --seed 0; wait
disch disch_nall_s0 nall_seed1 --seed 1
# records: each run's scores, calibrated choice, FLOPs, the tree agent's router price and share of rows woken; CPU
# time side by side (1 thread, 256 test rows) against the runs of run_issue12m.sh (RUNS_M, default: skipped)
python - "$OUT" "$R" "${2:-}" <<'PY'
import json, sys
from pathlib import Path
import numpy as np
from dain.training.frontier import measure_latency
from dain.training.runner import load_run
out, r, before = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
for part, name, keys in (("p12", "p12_raindrop_seed0.jsonl", ("auroc", "auprc")), ("disch", "p12_multiclass.jsonl", ("acc", "auroc"))):
    with open(r / name, "w") as f:
        for d in sorted((out / part).glob("*")):
            m = json.loads((d / "metrics.json").read_text())
            _, _, model = load_run(d)
            row = {"run": d.name, **{f"{s}_{k}": m[s][k] for s in ("val", "test") for k in keys}}
            row.update(chosen=m["adaptive"]["chosen"], flops=m["efficiency"]["flops_per_sample"])
            row["tree_active"] = float(np.load(d / "routing.npz")["routing__active"][:, -1].mean())
            row["tree_cost"] = float(model._relative_costs()[-1])
            f.write(json.dumps(row) + "\n")
if before:
    lat = {}
    for ds in ("avdigits_c4", "avdigits_c6", "avdigits_c8", "mfeat_c4", "mfeat_c6", "mfeat_c8"):
        runs = {"dain_priced_trees": [f"{out}/subsets/{ds}/dain-s{s}" for s in range(3)]}
        for name, sub, model in (("dain_before", "defaults", "dain"), ("dain_no_trees", "no_trees", "dain"),
                                 ("late_fusion", "defaults", "late_fusion")):
            runs[name] = [f"{before}/{ds}/{sub}/{model}-s{s}" for s in range(3)]
        lat[ds] = measure_latency(runs, rounds=5)
    (r / "latency_class_subsets.json").write_text(json.dumps(lat, indent=1))
PY
