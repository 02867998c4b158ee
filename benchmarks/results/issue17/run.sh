#!/usr/bin/env bash
# Issue 17: per-window (lags=auto) R/U/S on the TRAIN split, one thread. Run from the repo root.
set -euo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
D=benchmarks/results/issue17
/usr/bin/time -f "%e s wall (incl. loading)" dain interactions --data physionet2012 --option protocol=raindrop \
  --option split=1 --option summary=true --lags auto --split train --plot $D/interactions_p12.png --json \
  > $D/interactions_p12.json
/usr/bin/time -f "%e s wall (incl. loading)" dain interactions --data basicmotions --lags auto --split train \
  --plot $D/interactions_basicmotions.png --json > $D/interactions_basicmotions.json
