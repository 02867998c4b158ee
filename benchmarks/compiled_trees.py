"""Would compiled trees make DAIN's tree agent follow its FLOP count (goal 3c of issue 12)? Times one LightGBM
booster of a saved ``gbm`` run (P12 Raindrop split 1: 385 trees over 3325 features) on 256 test rows, one thread,
with LightGBM's own predictor, Treelite's GTIL interpreter and Treelite models compiled to C by TL2cgen (gcc, -O1 /
-O2), and checks that the raw scores agree. Treelite and TL2cgen are not dependencies of dain: install them to run
this (``pip install treelite tl2cgen``).

    python benchmarks/compiled_trees.py RUN        # RUN: a gbm run directory; one JSON line on stdout"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import numpy as np
import torch


def per_call_ms(fn, calls: int = 20) -> float:  # noqa: ANN001
    """Median milliseconds of ``fn()`` over ``calls`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main(run: str) -> None:
    import tl2cgen
    import treelite

    from dain.data.spec import make_batch
    from dain.models.gbm import batch_features
    from dain.training.runner import load_run

    torch.set_num_threads(1)
    _, data, model = load_run(run)
    x = batch_features(data.spec, make_batch(data, np.resize(np.asarray(data.splits["test"]), 256)))
    booster = model._get_boosters()[0]
    reference = booster.predict(x, num_threads=1, raw_score=True)
    out = {"run": run, "trees": booster.num_trees(), "features": x.shape[1], "rows": len(x)}
    out["lightgbm_ms"] = per_call_ms(lambda: booster.predict(x, num_threads=1, raw_score=True))
    tl_model = treelite.frontend.from_lightgbm(booster)
    out["gtil_ms"] = per_call_ms(lambda: treelite.gtil.predict(tl_model, x, nthread=1, pred_margin=True))
    with tempfile.TemporaryDirectory() as tmp:
        for opt in ("-O1", "-O2"):
            lib = os.path.join(tmp, f"trees{opt}.so")
            t0 = time.perf_counter()
            tl2cgen.export_lib(tl_model, toolchain="gcc", libpath=lib, params={"parallel_comp": 8}, options=[opt])
            out[f"tl2cgen{opt}_compile_s"] = round(time.perf_counter() - t0, 2)
            predictor = tl2cgen.Predictor(lib, nthread=1)

            def score(predictor=predictor) -> np.ndarray:  # noqa: ANN001
                return predictor.predict(tl2cgen.DMatrix(x), pred_margin=True)

            out[f"tl2cgen{opt}_ms"] = per_call_ms(score)
            out[f"tl2cgen{opt}_max_abs_diff"] = float(np.abs(score().ravel() - reference).max())
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main(sys.argv[1])
