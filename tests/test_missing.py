"""Missing modalities on purpose: the removal draw, what a model receives, training-time dropout, and the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import dain.models  # noqa: F401
from dain.data.missing import Missingness, apply_removal, dropout_batch, keep_one, removal, with_missing
from dain.data.spec import MultimodalDataset, make_batch, stratified_split
from dain.errors import ConfigError
from dain.models import build_model
from dain.registry import MODELS
from tests.conftest import NO_TREES, fit_mfeat, tiny_batch, tiny_dataset, tiny_spec


def _partly_missing(n: int = 300, seed: int = 0) -> MultimodalDataset:
    """tiny_dataset with about a third of the (sample, modality) pairs already missing, some samples down to one."""
    data = tiny_dataset(n=n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    mask = rng.random(data.mask.shape) > 0.35
    mask[np.arange(n), rng.integers(0, mask.shape[1], n)] = True  # every sample keeps one
    for j, m in enumerate(data.spec.modalities):
        data.inputs[m.name][~mask[:, j]] = 0.0
    return MultimodalDataset(data.spec, data.inputs, mask, data.target, data.splits)


def test_missing_rate_draw_is_reproducible_and_keyed_on_the_row() -> None:
    data = _partly_missing()
    rows = np.asarray(data.splits["test"])
    miss = Missingness(rate=0.4, seed=7)
    a = removal(data, rows, miss)
    np.testing.assert_array_equal(a, removal(data, rows, miss))  # same seed, same draw
    assert not np.array_equal(a, removal(data, rows, Missingness(rate=0.4, seed=8)))
    # a row's draw does not depend on which other rows are evaluated, or their order
    sub = rows[::-1][:7]
    np.testing.assert_array_equal(removal(data, sub, miss), a[::-1][:7])
    assert not (a & ~data.mask[rows]).any()  # only what was present is removed


@pytest.mark.parametrize("rate", [0.3, 0.9, 0.99])
def test_missing_rate_never_empties_a_sample(rate: float) -> None:
    data = _partly_missing()
    rows = np.arange(data.n_samples)
    for seed in range(5):
        out, report = with_missing(data, "train", Missingness(rate=rate, seed=seed))
        tr = np.asarray(data.splits["train"])
        assert out.mask[tr].any(1).all()
        assert report["empty_samples"] == 0
        np.testing.assert_array_equal(out.mask[~np.isin(rows, tr)], data.mask[~np.isin(rows, tr)])  # other splits
    removed = removal(data, rows, Missingness(rate=0.3, seed=0))
    share = removed.sum() / data.mask.sum()
    assert 0.2 < share < 0.35  # about the rate (a little less: a sample's last modality is kept)


def test_keep_one_keeps_the_highest_scored_present_modality() -> None:
    present = torch.tensor([[True, True, False], [True, False, False], [True, True, True]])
    remove = torch.ones_like(present)
    pick = torch.tensor([[0.1, 0.9, 0.5], [0.3, 0.2, 0.9], [0.5, 0.1, 0.2]])
    kept = present & ~keep_one(remove, present, pick)
    np.testing.assert_array_equal(kept.numpy(), [[False, True, False], [True, False, False], [True, False, False]])


def test_drop_removes_values_mask_and_steps() -> None:
    spec = tiny_spec("sequence")
    n = 40
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    inputs = {m.name: rng.normal(size=(n, *m.shape)).astype(np.float32) for m in spec.modalities}
    steps = {m.name: np.ones((n, m.shape[0]), bool) for m in spec.modalities}
    data = MultimodalDataset(spec, inputs, np.ones((n, 2), bool), y, stratified_split(y), steps)
    out, report = with_missing(data, "test", Missingness(drop=("s1",)))
    te = np.asarray(data.splits["test"])
    assert not out.mask[te, 0].any() and out.mask[te, 1].all()
    assert (out.inputs["s1"][te] == 0).all() and not out.steps["s1"][te].any()
    assert out.mask[data.splits["train"]].all()  # other splits untouched
    assert data.mask.all() and (data.inputs["s1"][te] != 0).any()  # the original is not modified
    assert report["removed_fraction"] == {"s1": 1.0, "s2": 0.0} and report["condition"] == "drop s1"


@pytest.mark.parametrize(
    ("miss", "pattern"),
    [
        (Missingness(drop=("zz",)), "unknown modality 'zz'; the modalities are a, b, c"),
        (Missingness(drop=("a", "b", "c")), "removes every modality"),
        (Missingness(rate=1.0), r"probability in \[0, 1\)"),
        (Missingness(rate=-0.1), r"probability in \[0, 1\)"),
    ],
)
def test_bad_missingness_is_a_clear_error(miss: Missingness, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        with_missing(tiny_dataset(), "test", miss)


def _tiny_sequences(spec, n: int) -> MultimodalDataset:  # noqa: ANN001
    """A learnable sequence dataset for ``spec`` (class shifts every value), every step observed."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, spec.num_outputs, n)
    inputs = {m.name: (rng.normal(size=(n, *m.shape)) + y[:, None, None]).astype(np.float32) for m in spec.modalities}
    steps = {m.name: np.ones((n, m.shape[0]), bool) for m in spec.modalities}
    return MultimodalDataset(spec, inputs, np.ones((n, spec.num_modalities), bool), y, stratified_split(y), steps)


def _prepared(name: str, spec, kind: str):  # noqa: ANN001, ANN202
    model = build_model(name, spec).eval()
    if getattr(model, "fit_direct_model", False):
        pytest.importorskip("lightgbm")
        model.fit_direct(tiny_dataset(n=120) if kind == "vector" else _tiny_sequences(spec, n=120))
    return model


@pytest.mark.parametrize("kind", ["vector", "sequence"])
@pytest.mark.parametrize("name", MODELS.names())
def test_a_removed_modality_reaches_every_model_as_missing(name: str, kind: str) -> None:
    """After removal the modality's mask is False, and its values (and steps) are never read: filling them with
    noise leaves every prediction unchanged."""
    torch.manual_seed(0)
    spec = tiny_spec(kind)
    model = _prepared(name, spec, kind)
    batch = tiny_batch(spec, n=12, seed=5)
    names = spec.modality_names
    remove = torch.zeros(12, len(names), dtype=torch.bool)
    remove[:4, 0] = True  # drop the first modality of four samples
    remove[4:8, -1] = True  # and the last of four others
    dropped = apply_removal(batch, remove, names)
    assert not dropped["mask"][remove].any() and dropped["mask"][~remove].all()
    noisy = {**dropped, "inputs": dict(dropped["inputs"])}
    g = torch.Generator().manual_seed(1)
    for j, n in enumerate(names):
        x = noisy["inputs"][n].clone()
        x[remove[:, j]] = 50 * torch.randn(x[remove[:, j]].shape, generator=g)
        noisy["inputs"][n] = x
    if "steps" in dropped:
        noisy["steps"] = {n: s.clone() for n, s in dropped["steps"].items()}
        for j, n in enumerate(names):
            noisy["steps"][n][remove[:, j]] = True
    with torch.no_grad():
        a = model(dropped).logits
        b = model(noisy).logits
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_dropout_batch_removes_about_p_and_never_the_last_modality() -> None:
    spec = tiny_spec("vector")
    batch = tiny_batch(spec, n=2000, seed=0, missing=True)
    torch.manual_seed(3)
    out = dropout_batch(batch, 0.4, spec.modality_names)
    assert out["mask"].any(1).all()
    assert not (out["mask"] & ~batch["mask"]).any()
    gone = batch["mask"] & ~out["mask"]
    assert 0.3 < float(gone.sum() / batch["mask"].sum()) < 0.4
    for j, n in enumerate(spec.modality_names):
        assert (out["inputs"][n][gone[:, j]] == 0).all()
    assert dropout_batch(batch, 0.0, spec.modality_names) is batch
    torch.manual_seed(3)
    torch.testing.assert_close(dropout_batch(batch, 0.4, spec.modality_names)["mask"], out["mask"])


def test_gbm_trains_with_modality_dropout() -> None:
    pytest.importorskip("lightgbm")
    data = tiny_dataset(n=200)
    plain = build_model("gbm", data.spec)
    plain.fit_direct(data, seed=0)
    dropped = build_model("gbm", data.spec)
    dropped.fit_direct(data, seed=0, modality_dropout=0.5)
    test, _ = with_missing(data, "test", Missingness(drop=("a", "b")))
    batch = make_batch(test, np.asarray(data.splits["test"]))
    with torch.no_grad():
        a, b = plain(batch).logits, dropped(batch).logits
    assert torch.isfinite(b).all() and not torch.allclose(a, b)  # the trees saw rows without a and b


# ----------------------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def lf_run(tmp_path_factory):  # noqa: ANN001, ANN201
    out = tmp_path_factory.mktemp("missing") / "lf"
    fit_mfeat(out, "late_fusion")
    return out


def _cli_json(args: list[str], capsys) -> dict:  # noqa: ANN001
    from dain.cli import main

    assert main(args + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_test_drop_and_missing_rate(lf_run, capsys) -> None:  # noqa: ANN001
    full = _cli_json(["test", "--run", str(lf_run)], capsys)
    assert full["missing"] is None
    drop = _cli_json(["test", "--run", str(lf_run), "--drop", "fou,pix"], capsys)
    assert drop["missing"]["drop"] == ["fou", "pix"]
    assert drop["missing"]["removed_fraction"]["fou"] == 1.0 and drop["missing"]["removed_fraction"]["kar"] == 0.0
    assert drop["test"] != full["test"]
    r1 = _cli_json(["test", "--run", str(lf_run), "--missing-rate", "0.3", "--seed", "4"], capsys)
    r2 = _cli_json(["test", "--run", str(lf_run), "--missing-rate", "0.3", "--missing-seed", "4"], capsys)
    assert r1["test"] == r2["test"] and r1["missing"] == r2["missing"]
    assert r1["missing"]["seed"] == 4 and 0.2 < np.mean(list(r1["missing"]["removed_fraction"].values())) < 0.35


def test_cli_test_unknown_modality_is_one_error_line(lf_run, capsys) -> None:  # noqa: ANN001
    from dain.cli import main

    assert main(["test", "--run", str(lf_run), "--drop", "labs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown modality 'labs'" in err[0] and "fou" in err[0]


def test_fit_with_modality_dropout_changes_training(tmp_path) -> None:
    a = fit_mfeat(tmp_path / "plain", "late_fusion")
    b = fit_mfeat(tmp_path / "md", "late_fusion", "--modality-dropout", "0.5")
    from dain.config import RunConfig

    assert RunConfig.from_yaml(tmp_path / "md" / "config.yaml").train.modality_dropout == 0.5
    assert a["val"] != b["val"]


def test_compare_robustness_table_and_plot(tmp_path, capsys, data_root) -> None:  # noqa: ANN001
    out = tmp_path / "cmp"
    res = _cli_json(
        [
            "compare",
            "--data",
            "basicmotions",
            "--models",
            "late_fusion,gbm",
            "--seeds",
            "1",
            "--max-epochs",
            "2",
            "--out",
            str(out),
            "--no-frontier",
            "--robustness",
            "--robustness-rates",
            "0.3,0.5",
        ],
        capsys,
    )
    assert res["robustness"]["table"] == str(out / "robustness.md")
    rob = json.loads((out / "robustness.json").read_text())
    assert rob["conditions"] == ["full", "drop accel", "drop gyro", "rate 0.3", "rate 0.5"]
    assert set(rob["models"]) == {"late_fusion", "gbm"}
    for m, row in rob["models"].items():
        full = json.loads((out / f"{m}-s0" / "metrics.json").read_text())["test"]["acc"]
        assert row["conditions"]["full"]["test"]["acc"]["mean"] == pytest.approx(full)
        assert row["conditions"]["full"]["change"]["acc"]["mean"] == 0.0
    assert (out / "robustness.png").stat().st_size > 1000
    assert "| late_fusion |" in (out / "robustness.md").read_text()
    assert (out / "late_fusion-s0" / "robustness.json").exists()  # per-run scores: a rerun reuses them


def test_robustness_scores_are_reused_only_for_the_weights_they_scored(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import yaml

    from dain.training import runner
    from dain.training.robustness import score_run

    run = tmp_path / "lf"
    fit_mfeat(run, "late_fusion")
    conds = [Missingness(), Missingness(rate=0.3)]
    first = {k: v["test"] for k, v in score_run(run, conds).items()}
    assert first["full"] == json.loads((run / "metrics.json").read_text())["test"]
    with monkeypatch.context() as m:  # unchanged weights: every score from robustness.json, nothing evaluated
        m.setattr(runner, "evaluate", lambda *a, **k: pytest.fail("unchanged weights evaluated again"))
        assert {k: v["test"] for k, v in score_run(run, conds).items()} == first
    cfg = yaml.safe_load((run / "config.yaml").read_text())  # trained further: fit --resume to more epochs
    cfg["train"]["max_epochs"] = 3
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    resumed = fit_mfeat(run, "late_fusion", "--resume", epochs=3)
    again = {k: v["test"] for k, v in score_run(run, conds).items()}
    assert again["full"] == resumed["test"] != first["full"]
    assert again["rate 0.3"] != first["rate 0.3"]


def test_train_config_rejects_a_bad_modality_dropout() -> None:
    from dain.config import TrainConfig
    from dain.validation import check_train_config

    with pytest.raises(ConfigError, match="modality_dropout"):
        check_train_config(dataclasses.replace(TrainConfig(), modality_dropout=1.0))


def test_explain_with_a_dropped_modality(tmp_path, capsys) -> None:  # noqa: ANN001
    run = tmp_path / "dain"
    fit_mfeat(run, "dain", *NO_TREES)
    capsys.readouterr()
    res = _cli_json(
        ["explain", "--run", str(run), "--drop", "fou", "--out", str(tmp_path / "ex"), "--no-occlusion"], capsys
    )
    summary = res["summary"]
    assert summary["missing"]["removed_fraction"]["fou"] == 1.0
    full = json.loads((run / "metrics.json").read_text())["test"]
    again = _cli_json(["test", "--run", str(run), "--drop", "fou"], capsys)["test"]
    assert summary["test_rerun"] == pytest.approx(again) and summary["test_rerun"] != full
    reads_fou = [a for a in summary["activation_frequency"] if a.endswith(":fou")]
    assert reads_fou and all(summary["activation_frequency"][a] == 0.0 for a in reads_fou)
    assert "modalities missing (drop fou)" in (tmp_path / "ex" / "report.html").read_text()
