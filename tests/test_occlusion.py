"""Occlusion in ``dain explain``: removing a pure-noise modality changes nothing, removing the one that carries the
label changes almost every prediction, whatever the consensus weights say."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dain.cli import main
from dain.occlusion import prediction_change


@pytest.fixture(scope="module")
def signal_noise_run(tmp_path_factory) -> Path:
    """A DAIN run on a bring-your-own folder: ``signal`` holds the class (3 classes), ``noise`` is pure noise."""
    root = tmp_path_factory.mktemp("occ")
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 3, n)
    signal = np.concatenate([2.0 * np.eye(3)[y] + 0.3 * rng.normal(size=(n, 3)), rng.normal(size=(n, 2))], 1)
    (root / "data" / "modalities").mkdir(parents=True)
    np.save(root / "data" / "modalities" / "signal.npy", signal.astype(np.float32))
    np.save(root / "data" / "modalities" / "noise.npy", rng.normal(size=(n, 5)).astype(np.float32))
    np.save(root / "data" / "labels.npy", y)
    (root / "data" / "dataset.yaml").write_text("class_names: [red, green, blue]\n")
    run = root / "run"
    args = ["fit", "--data", str(root / "data"), "--model", "dain", "--max-epochs", "10", "--lr", "0.01"]
    args += ["--set", "hidden=16", "--patience", "0", "--threads", "1", "--out", str(run), "--quiet"]
    assert main(args) == 0
    return run


@pytest.mark.slow
def test_occlusion_finds_the_modality_that_carries_the_label(signal_noise_run: Path, tmp_path, capsys) -> None:
    capsys.readouterr()
    assert main(["explain", "--run", str(signal_noise_run), "--out", str(tmp_path / "ex"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    occ = s["occlusion"]
    assert occ["split"] == "test" and occ["rows"] == s["n_samples"] > 80
    noise, signal = occ["modalities"]["noise"], occ["modalities"]["signal"]
    assert noise["change"] < 0.02 and noise["flipped"] < 0.02 and abs(noise["metric_drop"]) < 0.02
    assert signal["change"] > 0.3 and signal["flipped"] > 0.3 and signal["metric_drop"] > 0.3
    # one entry per agent, each beside its consensus weight (the tree agent: on by default for 3 classes and these
    # training rows); the noise agent decides nothing
    agents = {"a0:shared", "a1:unique:noise", "a2:unique:signal", "a3:synergy:all", "a4:tree:summary"}
    assert set(occ["agents"]) == set(s["consensus_weight_mean"]) == agents
    assert occ["agents"]["a1:unique:noise"]["change"] < 0.02
    assert s["class_names"] == ["red", "green", "blue"]
    assert (tmp_path / "ex" / "occlusion.png").exists()
    assert "Occlusion: what the prediction rests on" in (tmp_path / "ex" / "report.html").read_text()


@pytest.mark.slow
def test_removing_the_only_active_agent_leaves_no_prediction(signal_noise_run: Path) -> None:
    from dain.occlusion import occlusion
    from dain.training.runner import load_run

    _, data, model = load_run(signal_noise_run)
    model.set_budget(0)  # the shared agent alone: without its vote the consensus is empty
    occ = occlusion(model, data, "test")
    shared = occ["agents"]["a0:shared"]
    assert shared["rows_without_prediction"] == occ["rows"] and shared["change"] is None
    assert occ["agents"]["a2:unique:signal"]["change"] == pytest.approx(0.0, abs=1e-6)  # never active at budget 0


def test_prediction_change_measures() -> None:
    full = torch.tensor([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    same = prediction_change("multiclass", full, full.clone(), torch.tensor([0, 1, 0]), 2)
    assert same["change"] == 0.0 and same["flipped"] == 0.0 and same["metric_drop"] == 0.0
    swapped = prediction_change("multiclass", full, full.flip(1), torch.tensor([0, 1, 0]), 2)
    p = torch.softmax(full[0], 0)
    assert swapped["change"] == pytest.approx(float(abs(p[0] - p[1])))  # total variation of two classes
    assert swapped["flipped"] == 1.0 and swapped["metric_drop"] == pytest.approx(1.0)
    nan = prediction_change("multiclass", full, torch.full_like(full, float("nan")), torch.tensor([0, 1, 0]), 2)
    assert nan["rows_without_prediction"] == 3 and nan["change"] is None
