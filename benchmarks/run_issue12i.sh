#!/usr/bin/env bash
# Issue 12, 2026-12-05 (afternoon): P12 with DAIN's defaults at a second seed (5 Raindrop splits) beside late fusion
# and gbm refit on the same splits; the tree agent on P12 cut to 70 / 300 training stays and on MIMIC-IV demo (the
# evidence for tree_min_rows = 200); DAIN's defaults on a regression target (SAPS-I) as a bring-your-own folder.
# Records in benchmarks/results/issue12i/. About 2 hours on 2 cores.
# Usage: bash benchmarks/run_issue12i.sh OUT   (OUT/p12small: the folders of small_train_p12.py export, with its
# earlier fits under h/, see run_issue12h.sh)
set -uo pipefail
OUT=${1:?usage: run_issue12i.sh OUT}
R=benchmarks/results/issue12i
mkdir -p "$R"
C=configs/physionet2012_raindrop.yaml
# P12: dain seed 1 (seed 0: run_issue12h.sh's p12 fits), late fusion and gbm seed 0
dain compare --config $C --models dain --all-splits --seed-list 1 --jobs 1 --threads 1 --quiet --no-frontier \
  --out "$OUT/p12_dain_s1" &
dain compare --config $C --models late_fusion,gbm --all-splits --seeds 1 --jobs 1 --threads 1 --quiet --no-frontier \
  --out "$OUT/p12_base_s0"
wait
# the tree agent below its old threshold of 1000 training rows
S=$OUT/p12small
for n in 300 70; do for k in 0 1 2 3 4; do
  dain fit --data "$S/n${n}_s$k" --model dain --set tree_agent=always --threads 1 --no-progress --quiet \
    --out "$S/h/tree/n${n}_s$k"
done; done
python benchmarks/small_train_p12.py summary "$S" > "$R/small_train_p12.jsonl"
dain compare --data mimic4-demo --models dain --set tree_agent=always --seeds 20 --jobs 2 --threads 1 --quiet \
  --no-frontier --out "$OUT/mimic20_tree"
# regression as a new user would meet it: SAPS-I from P12's inputs, 300 training stays (draw 0)
G=$OUT/p12reg
python benchmarks/p12_other_targets.py export "$G"
for m in dain late_fusion gbm; do
  dain fit --data "$G/saps_n300_s0" --model $m --threads 1 --no-progress --quiet --out "$G/fits/$m/saps_n300_s0"
done
python benchmarks/p12_other_targets.py summary "$G" > "$R/p12_regression_saps.jsonl"
# the same folder with the target standardised by hand (train mean / std of the draw): does scale explain the gap?
python - "$G" <<'PY'
import json, os, shutil, sys
from pathlib import Path
import numpy as np
g = Path(sys.argv[1]); src, dst = g / "saps_n300_s0", g / "sapsZ_n300_s0"
dst.mkdir(exist_ok=True)
y = np.load(g / "arrays" / "labels_saps.npy"); tr = json.loads((src / "split.json").read_text())["train"]
mu, sd = y[tr].mean(), y[tr].std()
np.save(dst / "labels.npy", ((y - mu) / sd).astype(np.float32))
for n in ("modalities", "mask.npy"):
    if not (dst / n).exists():
        os.symlink(os.readlink(src / n), dst / n)
for n in ("split.json", "dataset.yaml"):
    shutil.copy(src / n, dst / n)
print("standardised SAPS-I: mean", mu, "std", sd, "(multiply MAE by std)")
PY
for m in dain late_fusion; do
  dain fit --data "$G/sapsZ_n300_s0" --model $m --threads 1 --no-progress --quiet --out "$G/fits/$m/sapsZ_n300_s0"
done
# after the smooth-L1 per-sample loss (objectives.per_sample_task_loss): 3 draws of dain, late fusion and gbm
for k in 0 1 2; do for m in dain late_fusion gbm; do
  dain fit --data "$G/saps_n300_s$k" --model $m --threads 1 --no-progress --quiet --out "$G/fits3/$m/saps_n300_s$k"
done; done
