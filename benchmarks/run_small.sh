#!/usr/bin/env bash
# Smaller measurements for docs/results.md: DAIN budget curve, R/U/S on real data, AV-digits single vs fused,
# bring-your-own folder vs the registered dataset. Needs runs/bench/mfeat from run_comparisons.sh.
set -uo pipefail
OUT=${1:-runs/bench}
R=benchmarks/results
mkdir -p "$R"
export OMP_NUM_THREADS=1
# accuracy-budget curve of one trained DAIN run (mfeat, seed 0)
for k in 1 2 3 4 5 6 7 8 9 10; do
  dain test --run "$OUT/mfeat/dain-s0" --budget $k --json 2>/dev/null \
    | python3 -c "import json,sys; d=json.load(sys.stdin); e=d['efficiency']; print(json.dumps({'budget': $k, 'acc': d['test']['acc'], 'active_agents_mean': e['active_agents_mean'], 'flops_per_sample': e['flops_per_sample'], 'comm_bits_per_sample': e['comm_bits_per_sample']}))"
done > "$R/mfeat_budget_curve.jsonl"
# interactions on real data (train split)
dain interactions --data mfeat --estimator batch --json > "$R/interactions_mfeat.json" 2>/dev/null
dain interactions --data basicmotions --estimator batch --json > "$R/interactions_basicmotions.json" 2>/dev/null
dain interactions --data basicmotions --estimator batch --plot "$R/interactions_basicmotions.png" > /dev/null 2>&1
# AV-digits: each modality alone vs both (late fusion and transformer, 3 seeds)
for mods in "[audio]" "[image]" "[audio,image]"; do
  tag=$(echo "$mods" | tr -d '[],' )
  dain compare --data avdigits --option "modalities=$mods" --models late_fusion,transformer --seeds 3 --max-epochs 20 \
    --patience 6 --jobs 2 --out "$OUT/avdigits_$tag" --json > "$R/avdigits_$tag.json" 2> "$OUT/avdigits_$tag.log"
  cp "$OUT/avdigits_$tag/compare.md" "$R/avdigits_$tag.md"
done
# bring-your-own folder built from mfeat's arrays == --data mfeat
python3 - "$OUT/mfeat_folder" <<'PY'
import json, sys
from pathlib import Path
import numpy as np
from dain.data import load_dataset
from dain.datasets.mfeat import _read
out = Path(sys.argv[1]); (out / "modalities").mkdir(parents=True, exist_ok=True)
z = _read(); d = load_dataset("mfeat", seed=0)
for v in ("fou", "fac", "kar", "pix", "zer", "mor"):
    np.save(out / "modalities" / f"{v}.npy", z[v].astype(np.float32))
np.save(out / "labels.npy", z["y"].astype(np.int64))
(out / "split.json").write_text(json.dumps({s: d.splits[s].tolist() for s in ("train", "val", "test")}))
(out / "dataset.yaml").write_text("name: mfeat-folder\ntask: multiclass\nmodalities: [fou, fac, kar, pix, zer, mor]\n")
PY
for src in mfeat "$OUT/mfeat_folder"; do
  dain fit --data "$src" --model late_fusion --seed 0 --max-epochs 10 --threads 1 --no-progress --json \
    --out "$OUT/byo_$(basename $src)" 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'data': d['dataset'], 'test': d['test']}))"
done > "$R/byo_vs_registered.jsonl"
