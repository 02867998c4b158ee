"""Per-label decision thresholds of multilabel tasks (dain.training.thresholds): the F1-optimal cut, the offsets a
model carries, and a run that tunes, saves and reloads them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from dain.models.base import build_model
from dain.training.metrics import compute_metrics
from dain.training.thresholds import BUFFER, attach_label_offsets, f1_optimal_logit, tune_label_thresholds
from tests.conftest import tiny_batch, tiny_spec


def _f1(pred: np.ndarray, y: np.ndarray) -> float:
    tp, fp, fn = (pred & y).sum(), (pred & ~y).sum(), (~pred & y).sum()
    return 2 * tp / (2 * tp + fp + fn)


def test_f1_optimal_logit_hand_checked() -> None:
    # scores 11..0 descending; positives at 11, 10, 8, 7, 6 and 2. Predicting the top 6 (scores >= 6) gives tp 5,
    # fp 1, fn 1: F1 = 10/12, the best cut; it sits midway between 6 and 5
    z = np.arange(12, dtype=float)[::-1]
    y = np.array([1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0])
    assert f1_optimal_logit(z, y) == 5.5
    best = max(_f1(z >= c, y.astype(bool)) for c in z)
    assert _f1(z > 5.5, y.astype(bool)) == best == 10 / 12


def test_f1_optimal_logit_never_splits_ties_and_skips_rare_labels() -> None:
    z = np.array([2.0, 1.0, 1.0, 1.0, 0.0, 0.0, -1.0, -1.0, -2.0, -3.0, -4.0, -5.0])
    y = np.array([1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0])
    cut = f1_optimal_logit(z, y)
    assert cut is not None and not np.any(z == cut)  # a cut between distinct scores, tied rows on one side
    assert f1_optimal_logit(z, np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0])) is None  # 4 positives < 5
    assert f1_optimal_logit(-z, 1 - np.array([1] * 8 + [0] * 4)) is None  # 4 negatives < 5


def test_offsets_shift_decisions_not_rankings() -> None:
    spec = tiny_spec("vector", "multilabel")
    model = build_model("late_fusion", spec, hidden=16).eval()
    batch = tiny_batch(spec, n=64)
    with torch.no_grad():
        before = model(batch).logits
    attach_label_offsets(model, spec)
    assert torch.equal(getattr(model, BUFFER), torch.zeros(spec.num_outputs))
    getattr(model, BUFFER).copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    with torch.no_grad():
        after = model(batch).logits
    torch.testing.assert_close(after, before + torch.tensor([0.5, -1.0, 2.0, 0.0]))
    t = batch["target"]
    auroc = [compute_metrics("multilabel", x, t, spec.num_outputs)["auroc"] for x in (before, after)]
    assert auroc[0] == auroc[1]
    assert BUFFER in model.state_dict()
    binary = build_model("late_fusion", tiny_spec("vector", "binary"), hidden=16)
    attach_label_offsets(binary, binary.spec)
    assert not hasattr(binary, BUFFER)  # other tasks: no offsets, no hook


def test_tuning_maximises_each_labels_validation_f1() -> None:
    rng = np.random.default_rng(0)
    n = 400
    y = (rng.random((n, 4)) < [0.1, 0.3, 0.5, 0.2]).astype(np.float32)
    z = torch.tensor(rng.normal(size=(n, 4)) + 1.5 * y - 1.0, dtype=torch.float32)  # informative, miscalibrated
    spec = tiny_spec("vector", "multilabel")
    model = build_model("late_fusion", spec, hidden=16)
    attach_label_offsets(model, spec)
    record = tune_label_thresholds(model, z, torch.tensor(y))
    shifted = (z + getattr(model, BUFFER)).numpy() > 0
    for j in range(4):
        best = max(_f1(z[:, j].numpy() >= c, y[:, j] > 0) for c in z[:, j].numpy())
        assert abs(_f1(shifted[:, j], y[:, j] > 0) - best) < 1e-12
        assert 0 < record["thresholds"][j] < 1
    at_half = compute_metrics("multilabel", z, torch.tensor(y), 4)["macro_f1"]
    tuned = compute_metrics("multilabel", z + getattr(model, BUFFER), torch.tensor(y), 4)["macro_f1"]
    assert tuned > at_half


def test_fit_tunes_saves_and_reloads_thresholds(tmp_path: Path) -> None:
    """A multilabel folder fitted through the CLI: metrics.json records the thresholds, validation macro-F1 is at
    least its value at 0.5, ``dain test`` on the saved run reproduces the test metrics, and a run saved before
    thresholds existed (no offsets in its weights) still loads, with every threshold at 0.5."""
    from safetensors.torch import load_file, save_file

    from dain.cli import main
    from dain.datasets.mfeat import _read
    from dain.training.runner import load_run, test_run

    z = _read()
    folder = tmp_path / "f"
    (folder / "modalities").mkdir(parents=True)
    for v in ("fou", "kar"):
        np.save(folder / "modalities" / f"{v}.npy", z[v].astype(np.float32))
    digit = z["y"].astype(int)
    labels = np.stack([digit >= 5, digit % 2 == 0, np.isin(digit, [0, 6, 8, 9])], 1).astype(np.int64)
    np.save(folder / "labels.npy", labels)
    run = tmp_path / "r"
    args = ["fit", "--data", str(folder), "--model", "late_fusion", "--max-epochs", "2", "--set", "hidden=16"]
    assert main([*args, "--out", str(run), "--quiet", "--no-progress"]) == 0
    doc = json.loads((run / "metrics.json").read_text())
    assert doc["task"] == "multilabel" and doc["monitor"] == "val/select"
    record = doc["label_thresholds"]
    assert len(record["thresholds"]) == 3 and all(0 < t < 1 for t in record["thresholds"])
    assert doc["val"]["macro_f1"] >= record["val_at_half"]["macro_f1"]
    assert doc["val"]["auroc"] == record["val_at_half"]["auroc"]
    again = test_run(run)
    assert again["test"] == doc["test"]
    state = load_file(str(run / "model.safetensors"))
    assert state.pop(BUFFER).abs().sum() > 0
    save_file(state, str(run / "model.safetensors"))
    _, _, model = load_run(run)
    assert torch.equal(getattr(model, BUFFER), torch.zeros(3))
