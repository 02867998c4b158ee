"""The training harness's selection rules: test-time overrides start from the trained budget, NaN validation
metrics never win checkpoint selection, calibration under a ``val/loss`` monitor, the multilabel trained-setting test
score, ``compare`` reusing only runs of the same config, and ``--resume`` naming the settings it ignores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dain.cli import main
from dain.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from dain.errors import DainWarning
from dain.models.base import build_model
from dain.training.metrics import compute_metrics
from dain.training.thresholds import BUFFER, attach_label_offsets, f1_optimal_offsets
from tests.conftest import tiny_batch, tiny_multilabel_dataset, tiny_spec


def _dain(spec, **kw):  # noqa: ANN001, ANN202
    return build_model("dain", spec, hidden=16, tree_agent="never", **kw).eval()


def test_adaptive_override_runs_at_the_trained_budget() -> None:
    """``--adaptive C`` on a run calibrated to a lower budget: the cascade is capped at the trained budget, as
    calibration's candidates and compare's budget curve run it, not at the calibrated one."""
    from dain.training.frontier import set_test_setting
    from dain.training.runner import apply_budget

    spec = tiny_spec("vector")
    model = _dain(spec)  # 6 agents, budget 2
    batch = tiny_batch(spec, n=32)
    model.set_calibration(budget=0)  # as if validation had chosen the shared agent alone
    apply_budget(model, None, 0.9)
    assert (model.budget, model.gating, model.threshold) == (2, "threshold", 0.9)
    with torch.no_grad():
        override = model(batch).logits
        set_test_setting(model, adaptive=0.9)
        torch.testing.assert_close(model(batch).logits, override)
    model.set_calibration(budget=0)
    apply_budget(model, 1, 0.9)  # both given: the budget given
    assert (model.budget, model.gating) == (1, "threshold")


def test_nan_metric_is_the_worst_of_its_direction() -> None:
    from dain.training.module import _worst_if_nan

    nan = float("nan")
    assert _worst_if_nan("mae", nan) == _worst_if_nan("loss", nan) == float("inf")
    assert _worst_if_nan("auroc", nan) == 0.0  # undefined on a one-class split: low, finite (no early stop)
    assert _worst_if_nan("mae", 1.5) == 1.5


def _folder(root: Path, labels: np.ndarray, n: int) -> Path:
    """A bring-your-own folder with two vector modalities that predict ``labels``."""
    rng = np.random.default_rng(0)
    (root / "modalities").mkdir(parents=True)
    a = rng.normal(size=(n, 6)).astype(np.float32)
    np.save(root / "modalities" / "a.npy", a)
    np.save(root / "modalities" / "b.npy", rng.normal(size=(n, 4)).astype(np.float32))
    np.save(root / "labels.npy", labels(a))
    return root


def test_diverged_regression_keeps_the_last_finite_checkpoint(tmp_path: Path, monkeypatch) -> None:
    """Weights turned NaN from the third epoch: the best checkpoint is one before, early stopping ends the run."""
    from dain.training import module
    from dain.training.runner import fit_run

    start = module.FusionModule.on_train_epoch_start

    def diverge(self) -> None:  # noqa: ANN001
        if self.current_epoch == 2:
            with torch.no_grad():
                for p in self.model.parameters():
                    p.fill_(float("nan"))
        start(self)

    monkeypatch.setattr(module.FusionModule, "on_train_epoch_start", diverge)
    folder = _folder(tmp_path / "reg", lambda a: (3 * a[:, 0] + 10).astype(np.float64), 200)
    cfg = RunConfig(
        DataConfig(str(folder)), ModelConfig("late_fusion", {"hidden": 16}), TrainConfig(max_epochs=6, num_threads=1)
    )
    res = fit_run(cfg, tmp_path / "run", progress=False)
    assert res["monitor"] == "val/mae" and np.isfinite(res["val"]["mae"]) and np.isfinite(res["test"]["mae"])
    assert res["time"]["epochs"] < 6  # stopped at the non-finite metric
    rows = (tmp_path / "run" / "logs" / "metrics.csv").read_text().splitlines()
    assert any(",inf," in r for r in rows)


def test_val_loss_monitor_calibrates_on_the_primary_metric(tmp_path: Path) -> None:
    """``train.monitor: val/loss`` with a calibrating dain run: the run finishes, calibrated on accuracy."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": {"name": "mfeat"},
                "model": {"name": "dain", "params": {"hidden": 16, "adaptive_tolerance": 0.02, "tree_agent": "never"}},
                "train": {"max_epochs": 1, "monitor": "val/loss", "num_threads": 1},
            }
        )
    )
    assert main(["fit", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    doc = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert doc["monitor"] == "val/loss" and doc["adaptive"]["metric"] == "acc"
    assert doc["adaptive"]["settings"]  # calibrated, not skipped


def test_multilabel_trained_setting_is_scored_with_its_own_tuned_thresholds(monkeypatch) -> None:
    """Calibration chose another setting: the trained setting's test score uses per-label thresholds tuned on
    validation for it, as the chosen setting's score does; the offsets are left at zero for the harness."""
    from dain.training import adaptive
    from dain.training.runner import evaluate

    data = tiny_multilabel_dataset(n=400)
    model = _dain(data.spec, adaptive="auto")
    attach_label_offsets(model, data.spec)

    def choose_budget_0(model, data, metric, tolerance):  # noqa: ANN001, ANN202
        model.set_calibration(budget=0)
        return {"chosen": {"budget": 0, "threshold": None}, "metric": metric}

    monkeypatch.setattr(adaptive, "calibrate_inference", choose_budget_0)
    record = adaptive.calibrate_for_run(model, data, "select")
    assert int(model.calibration[0]) == 0 and torch.equal(getattr(model, BUFFER), torch.zeros(3))
    model.set_calibration()
    val, test = evaluate(model, data, "val"), evaluate(model, data, "test")
    shift, _ = f1_optimal_offsets(val.logits, val.target)
    assert shift.abs().sum() > 0  # the thresholds moved: the test below tells the two footings apart
    expected = compute_metrics("multilabel", test.logits + shift, test.target, 3)
    assert record["trained_setting_test"] == pytest.approx(expected)


def _compare(out: Path, *extra: str) -> int:
    args = ["compare", "--data", "mfeat", "--models", "late_fusion", "--seeds", "1", "--set", "hidden=16"]
    return main([*args, "--max-epochs", "1", "--threads", "1", "--no-frontier", "--quiet", "--out", str(out), *extra])


def test_compare_reuses_only_runs_of_the_same_config(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cmp"
    assert _compare(out) == 0
    metrics = out / "late_fusion-s0" / "metrics.json"
    first = metrics.stat().st_mtime_ns
    assert _compare(out) == 0 and metrics.stat().st_mtime_ns == first  # nothing changed: reused, not refitted
    capsys.readouterr()
    assert _compare(out, "--lr", "0.01") == 2
    err = capsys.readouterr().err
    assert "train.lr: 0.001 -> 0.01" in err and "another --out" in err
    assert metrics.stat().st_mtime_ns == first


def test_config_differences_ignore_data_resolved_and_location_fields() -> None:
    from dain.models.base import config_to_dict, make_config
    from dain.training.compare import config_differences

    # a saved run: expanded params, tree_agent resolved from its data; found elsewhere, refitted with other --jobs
    saved = RunConfig(DataConfig("mfeat", root="/a"), ModelConfig("dain", {"tree_agent": "never"}))
    saved.model.params = config_to_dict(make_config("dain", {"hidden": 16, "tree_agent": "never"}))
    planned = RunConfig(DataConfig("mfeat", root="/b"), ModelConfig("dain", {"hidden": 16}), TrainConfig(num_threads=4))
    assert config_differences(planned, saved) == []
    planned.model.params = {"hidden": 7}
    planned.data.options = {"protocol": "tmc"}
    diff = ["data.options.protocol: (unset) -> tmc", "model.params.hidden: 16 -> 7"]
    assert config_differences(planned, saved) == diff


def test_resume_warns_about_ignored_settings() -> None:
    from dain.training.runner import _warn_ignored_on_resume

    saved = RunConfig(DataConfig("mfeat"), ModelConfig("dain", {"hidden": 16}), TrainConfig(max_epochs=2))
    with pytest.warns(DainWarning, match=r"ignored: train.max_epochs=5 \(the run's: 2\)"):
        _warn_ignored_on_resume(RunConfig(DataConfig("mfeat"), train=TrainConfig(max_epochs=5)), saved)
    with pytest.warns(DainWarning, match="model.params.hidden=32"):
        _warn_ignored_on_resume(RunConfig(model=ModelConfig("dain", {"hidden": 32})), saved)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DainWarning)
        _warn_ignored_on_resume(RunConfig(DataConfig("mfeat")), saved)  # flags left out: nothing ignored
