"""Diagnostic: how much DAIN's learned consensus weights cost on a small training split. DAIN is given late fusion's
structure (one unique agent per modality, every agent on every row: ``gating=dense``), then trained through the
harness with its consensus weights as they are (``learned``), replaced by uniform weights over each sample's
active agents (``uniform``), or uniform without the shared agent (``uniform_noshared``). The replacement patches
``DAIN._consensus`` in this process only (it is not a library option).

    python benchmarks/consensus_weights_small.py FOLDER OUT {learned|uniform|uniform_noshared} [defaults]

``defaults`` keeps DAIN's default structure (its default roles and top-k schedule) instead of late fusion's
(2026-12-05: uniform weights on the one-hidden-layer agents).

FOLDER: a bring-your-own folder of ``benchmarks/small_train_p12.py export``. One JSON line (validation and test
AUROC) on stdout (docs/results.md, issue 12, 2026-12-04)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import dain.models.dain as dain_model
from dain.config import RunConfig
from dain.training.runner import fit_run

MODES = ("learned", "uniform", "uniform_noshared")


def patch_consensus(mode: str) -> None:
    """Make the consensus weigh a sample's active agents equally (``uniform*``); training losses keep the scores."""
    if mode == "learned":
        return
    original = dain_model.DAIN._consensus

    def consensus(self, z, sched, dispatch):  # noqa: ANN001, ANN202
        scores = sched.scores
        flat = torch.where(torch.isfinite(scores), torch.zeros_like(scores), scores)
        if mode == "uniform_noshared":
            flat[:, 0] = float("-inf")
        sched.scores = flat
        try:
            return original(self, z, sched, dispatch)
        finally:
            sched.scores = scores

    dain_model.DAIN._consensus = consensus


def main() -> None:
    folder, out, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    structure = sys.argv[4] if len(sys.argv) > 4 else "late_fusion"
    if mode not in MODES or structure not in ("late_fusion", "defaults"):
        raise SystemExit(f"mode must be one of {MODES}; the optional 4th argument: defaults")
    patch_consensus(mode)
    cfg = RunConfig()
    cfg.data.name = folder
    cfg.model.name = "dain"
    if structure == "late_fusion":
        roles = ["unique:vitals", "unique:labs", "unique:static", "unique:summary"]
        cfg.model.params = {"roles": roles, "gating": "dense"}
    cfg.train.num_threads = 1
    fit_run(cfg, out, progress=False)
    m = json.loads((out / "metrics.json").read_text())
    row = {"folder": Path(folder).name, "mode": mode, "val_auroc": m["val"]["auroc"], "test_auroc": m["test"]["auroc"]}
    print(json.dumps(row))


if __name__ == "__main__":
    main()
