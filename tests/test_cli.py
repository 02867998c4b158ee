"""End-to-end CLI tests on real data (mfeat ships with dain; basicmotions from ../shared/data)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dain.cli import main
from tests.conftest import fit_mfeat


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def mfeat_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "lf"
    fit_mfeat(out, "late_fusion", "--seed", "0", epochs=4, hidden=32)
    return out


def test_fit_json_schema_and_run_dir(mfeat_run: Path) -> None:
    m = json.loads((mfeat_run / "metrics.json").read_text())
    for key in ("dataset", "model", "seed", "task", "val", "test", "efficiency", "time", "run_dir"):
        assert key in m
    assert m["dataset"] == "mfeat" and m["model"] == "late_fusion" and m["task"] == "multiclass"
    assert {"acc", "macro_f1", "auroc"} <= set(m["test"])
    assert m["efficiency"]["params"] > 0 and m["efficiency"]["flops_per_sample"] > 0
    assert m["time"]["fit_seconds"] > 0 and m["time"]["prepare_seconds"] >= 0
    assert m["test"]["acc"] > 0.8  # 4 epochs only; the full target is in benchmarks
    for f in ("config.yaml", "model.safetensors", "routing.npz", "checkpoints/best.ckpt", "logs/metrics.csv"):
        assert (mfeat_run / f).exists(), f
    assert not (mfeat_run / "RUNNING").exists()
    cfg = yaml.safe_load((mfeat_run / "config.yaml").read_text())
    assert cfg["model"]["params"]["hidden"] == 32 and "dropout" in cfg["model"]["params"]  # expanded config


def test_fit_json_stdout_is_pure_json(tmp_path, capsys) -> None:
    code, out, err = run_cli(
        [
            "fit",
            "--data",
            "mfeat",
            "--model",
            "early_fusion",
            "--out",
            str(tmp_path / "r"),
            "--json",
            "--max-epochs",
            "2",
            "--set",
            "hidden=16",
        ],
        capsys,
    )
    assert code == 0
    doc = json.loads(out)  # the whole stdout parses: nothing else was printed there
    assert doc["model"] == "early_fusion"
    assert "epoch 1/2  train loss" in err  # progress went to stderr (one line per epoch: not a terminal)


def test_test_reproduces_fit_metrics(mfeat_run: Path, capsys) -> None:
    code, out, _ = run_cli(["test", "--run", str(mfeat_run), "--json"], capsys)
    assert code == 0
    fit = json.loads((mfeat_run / "metrics.json").read_text())["test"]
    got = json.loads(out)["test"]
    for k, v in fit.items():
        assert got[k] == pytest.approx(v, abs=1e-6)


def test_config_yaml_reproduces_run(mfeat_run: Path, tmp_path, capsys) -> None:
    code, out, _ = run_cli(
        [
            "fit",
            "--config",
            str(mfeat_run / "config.yaml"),
            "--out",
            str(tmp_path / "again"),
            "--json",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0
    again = json.loads(out)["test"]
    first = json.loads((mfeat_run / "metrics.json").read_text())["test"]
    assert again["acc"] == pytest.approx(first["acc"], abs=1e-6)


def test_resume_continues_from_last_checkpoint(tmp_path, capsys) -> None:
    out = tmp_path / "r"
    fit_mfeat(out, "early_fusion", epochs=2)
    capsys.readouterr()
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["train"]["max_epochs"] = 3
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    (out / "metrics.json").unlink()
    code, stdout, _ = run_cli(
        ["fit", "--data", "mfeat", "--out", str(out), "--resume", "--json", "--no-progress"], capsys
    )
    assert code == 0
    assert json.loads(stdout)["time"]["epochs"] == 3


def test_compare_mean_std(tmp_path, capsys) -> None:
    code, out, _ = run_cli(
        [
            "compare",
            "--data",
            "mfeat",
            "--models",
            "early_fusion,late_fusion",
            "--seeds",
            "2",
            "--out",
            str(tmp_path / "cmp"),
            "--json",
            "--max-epochs",
            "2",
            "--set",
            "hidden=16",
        ],
        capsys,
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["seeds"] == [0, 1]
    for m in ("early_fusion", "late_fusion"):
        acc = doc["results"][m]["test"]["acc"]
        assert len(acc["values"]) == 2 and acc["mean"] == pytest.approx(np.mean(acc["values"]))
        assert acc["std"] == pytest.approx(np.std(acc["values"]))
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "early_fusion" in md and "±" in md


def test_compare_failing_model_fails_only_its_row(tmp_path, capsys) -> None:
    # the config's model (early_fusion) keeps its params, an encoder that cannot read vectors: only its row fails
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {name: mfeat}\nmodel: {name: early_fusion, params: {encoders: {fou: gru}}}\n")
    code, out, err = run_cli(
        [
            "compare",
            "--config",
            str(cfg),
            "--models",
            "early_fusion,late_fusion",
            "--seeds",
            "1",
            "--out",
            str(tmp_path / "cmp"),
            "--json",
            "--max-epochs",
            "1",
            "--set",
            "hidden=16",
            "--no-frontier",
        ],
        capsys,
    )
    assert code == 0
    doc = json.loads(out)
    assert "error" in doc["results"]["early_fusion"] and "gru" in doc["results"]["early_fusion"]["error"]
    assert "test" in doc["results"]["late_fusion"]
    assert "warning: some runs failed: early_fusion" in err


def test_compare_seed_ensemble_row(tmp_path, capsys) -> None:
    from dain.training.compare import seed_ensemble

    args = ["compare", "--data", "mfeat", "--protocol", "tmc", "--models", "late_fusion", "--seeds", "2", "--ensemble"]
    args += ["--json"]
    code, out, _ = run_cli(args + ["--out", str(tmp_path / "cmp"), "--max-epochs", "1", "--set", "hidden=16"], capsys)
    assert code == 0
    res = json.loads(out)["results"]
    ens = res["late_fusion×2"]
    assert ens["ensemble_of"] == "late_fusion" and ens["runs"] == res["late_fusion"]["runs"]
    members = [json.loads((Path(r) / "metrics.json").read_text()) for r in ens["runs"]]
    assert ens["test"]["acc"]["values"] == [pytest.approx(seed_ensemble(members)["acc"])]
    # the ensemble is the mean of the members' probabilities, scored on the same test rows
    recs = [np.load(Path(r) / "routing.npz") for r in ens["runs"]]
    p = np.mean([np.exp(z["logits"]) / np.exp(z["logits"]).sum(1, keepdims=True) for z in recs], 0)
    assert ens["test"]["acc"]["mean"] == pytest.approx(float((p.argmax(1) == recs[0]["target"]).mean()), abs=1e-6)
    assert ens["efficiency"]["params"]["mean"] == 2 * res["late_fusion"]["efficiency"]["params"]["mean"]
    assert "late_fusion×2" in (tmp_path / "cmp" / "compare.md").read_text()
    # seeds that drew their own splits cannot be ensembled: the row says so, the comparison still succeeds
    args = ["compare", "--data", "mfeat", "--models", "late_fusion", "--seeds", "2", "--ensemble", "--json"]
    code, out, _ = run_cli(args + ["--out", str(tmp_path / "c2"), "--max-epochs", "1", "--set", "hidden=16"], capsys)
    assert code == 0 and "fixed test split" in json.loads(out)["results"]["late_fusion×2"]["error"]


def test_compare_keeps_the_config_models_params(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"data": {"name": "mfeat"}, "model": {"name": "late_fusion", "params": {"hidden": 24}}, "train": {}}
        )
    )
    args = ["compare", "--config", str(cfg), "--models", "early_fusion,late_fusion", "--seeds", "1"]
    code, out, _ = run_cli(args + ["--out", str(tmp_path / "cmp"), "--json", "--max-epochs", "1"], capsys)
    assert code == 0
    runs = {m: json.loads(out)["results"][m]["runs"][0] for m in ("early_fusion", "late_fusion")}
    hidden = {
        m: yaml.safe_load((Path(r) / "config.yaml").read_text())["model"]["params"]["hidden"] for m, r in runs.items()
    }
    assert hidden["late_fusion"] == 24 and hidden["early_fusion"] != 24


def test_datasets_json_lists_known(capsys) -> None:
    code, out, _ = run_cli(["datasets", "--json"], capsys)
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["datasets"]}
    assert rows["mfeat"]["found"] and rows["mfeat"]["modalities"]["fou"] == [76]
    assert rows["mfeat"]["n_samples"] == 2000
    for r in rows.values():
        assert {"name", "found", "where", "task", "modalities", "n_samples"} <= set(r)


def test_datasets_table_fits_80_columns_and_names_the_folder_format(capsys) -> None:
    code, out, _ = run_cli(["datasets"], capsys)  # capsys: not a terminal, as when piped
    assert code == 0
    lines = out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert any(line.startswith("mfeat ") and "fou[76]" in line for line in lines)
    assert "own data: --data DIR holding modalities/<m>.npy, labels.npy (docs/datasets.md)" in lines


def test_compare_table_no_epochs_for_gbm() -> None:
    from dain.training.compare import markdown_table, stats

    def row(spe: float, fit: float, epochs: int) -> dict:
        t = {"seconds_per_epoch": stats([spe]), "fit_seconds": stats([fit]), "epochs": stats([epochs])}
        return {"test": {"acc": stats([0.9])}, "efficiency": {}, "time": t}

    summary = {"dataset": "d", "seeds": [0], "results": {"gbm": row(3.5, 3.5, 0), "late_fusion": row(0.25, 5.0, 20)}}
    table = markdown_table(summary).splitlines()
    head = next(line for line in table if line.startswith("| model"))
    assert head.endswith("| s/epoch | fit s |")
    gbm = next(line for line in table if line.startswith("| gbm"))
    lf = next(line for line in table if line.startswith("| late_fusion"))
    assert gbm.endswith("| – | 3.5 |") and lf.endswith("| 0.250 | 5.0 |")


def test_compare_fit_seconds_count_the_set_up_before_training() -> None:
    """``fit s`` is what a fit cost: the training loop plus the set-up before it (DAIN's tree cross-fit); rows saved
    before the set-up was recorded show their training alone."""
    from dain.training.compare import markdown_table, stats

    def row(fit: float, prepare: float | None) -> dict:
        t = {"seconds_per_epoch": stats([1.0]), "fit_seconds": stats([fit]), "epochs": stats([5])}
        if prepare is not None:
            t["prepare_seconds"] = stats([prepare])
        return {"test": {"acc": stats([0.9])}, "efficiency": {}, "time": t}

    summary = {"dataset": "d", "seeds": [0], "results": {"dain": row(5.0, 70.0), "late_fusion": row(5.0, None)}}
    table = markdown_table(summary).splitlines()
    assert next(line for line in table if line.startswith("| dain")).endswith("| 1.000 | 75.0 |")
    assert next(line for line in table if line.startswith("| late_fusion")).endswith("| 1.000 | 5.0 |")


def test_fit_records_the_tree_agents_cross_fit_as_set_up_time(tmp_path, capsys) -> None:  # noqa: ANN001
    """A DAIN fit with its tree agent: ``prepare_seconds`` in metrics.json holds the cross-fit, which the training
    loop's ``fit_seconds`` does not, and `dain fit` reports the cross-fit's own time on stderr."""
    pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    folder = tmp_path / "data"
    (folder / "modalities").mkdir(parents=True)
    a, b = rng.normal(size=(200, 6)), rng.normal(size=(200, 3))
    np.save(folder / "modalities" / "a.npy", a.astype(np.float32))
    np.save(folder / "modalities" / "b.npy", b.astype(np.float32))
    np.save(folder / "labels.npy", (a[:, 0] + b[:, 0] > 0).astype(np.int64))
    out = tmp_path / "run"
    args = ["fit", "--data", str(folder), "--model", "dain", "--max-epochs", "1", "--set", "hidden=16"]
    code, _, err = run_cli([*args, "--no-progress", "--out", str(out)], capsys)
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["params"]["tree_agent"] == "always"
    cross_fit = float(re.search(r"tree agent fitted in ([0-9.]+) s", err).group(1))
    assert cross_fit > 0 and m["time"]["prepare_seconds"] >= cross_fit


def test_merge_splits_pools_every_split_and_seed(tmp_path) -> None:  # noqa: ANN001
    from dain.training.compare import merge_splits, stats

    def split(accs: list[float], run: str) -> dict:
        row = {
            "test": {"acc": stats(accs)},
            "val": {"acc": stats(accs)},
            "efficiency": {"params": stats([100.0] * len(accs))},
            "time": {"seconds_per_epoch": stats([1.0] * len(accs)), "fit_seconds": stats([2.0] * len(accs))},
            "runs": [f"{run}-s{i}" for i in range(len(accs))],
        }
        return {"dataset": "d", "seeds": [0, 1], "results": {"lf": row, "bad": {"error": f"boom {run}"}}}

    merged = merge_splits([split([0.8, 0.9], "a"), split([0.7, 0.6], "b")], tmp_path)
    lf = merged["results"]["lf"]
    assert merged["splits"] == [1, 2]
    assert lf["test"]["acc"]["values"] == [0.8, 0.9, 0.7, 0.6]
    assert lf["test"]["acc"]["mean"] == pytest.approx(0.75) and lf["test"]["acc"]["std"] == pytest.approx(0.1118034)
    assert lf["runs"] == ["a-s0", "a-s1", "b-s0", "b-s1"]
    assert merged["results"]["bad"] == {"error": "boom a"}
    assert json.loads((tmp_path / "compare.json").read_text())["splits"] == [1, 2]
    table = (tmp_path / "compare.md").read_text()
    assert "splits 1..2 x seeds [0, 1]" in table and "over splits x seeds" in table


def test_basicmotions_transformer_trains(tmp_path, capsys, data_root) -> None:
    code, out, _ = run_cli(
        [
            "fit",
            "--data",
            "basicmotions",
            "--data-root",
            str(data_root),
            "--model",
            "transformer",
            "--out",
            str(tmp_path / "bm"),
            "--json",
            "--max-epochs",
            "3",
            "--set",
            "hidden=32",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["data"]["splits"]["test"] == 40 and 0.0 <= doc["test"]["acc"] <= 1.0


# --------------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "args, pattern",
    [
        (
            ["fit", "--data", "nosuchdata", "--model", "late_fusion"],
            "unknown dataset 'nosuchdata'; known datasets: .*mfeat",
        ),
        (
            ["fit", "--data", "mfeat", "--model", "nosuch"],
            "unknown model 'nosuch'; known models: .*late_fusion",
        ),
        (["fit", "--data", "mfeat", "--model", "late_fusion", "--set", "hiden=3"], "no option.*hiden"),
        (
            ["fit", "--data", "basicmotions", "--data-root", "/nonexistent/x", "--model", "transformer"],
            "data folder 'basicmotions' not found .*looked in /nonexistent/x",
        ),
        (["test", "--run", "/nonexistent/run"], "not a run directory"),
        (
            ["fit", "--data", "mfeat", "--model", "late_fusion", "--option", "protocol=zzz"],
            "no protocol 'zzz'",
        ),
        # a mistyped folder is not "an unknown dataset": say the folder is missing and where the format is described
        (["fit", "--data", "./my_dta"], "no dataset folder './my_dta': .*my_dta does not exist.*docs/datasets.md"),
        (["fit", "--data", "~/no/such/dir"], "no dataset folder '~/no/such/dir': .*does not exist.*modalities/"),
        (["fit", "--data", "mfet"], "unknown dataset 'mfet'; known datasets: .*mfeat"),
    ],
)
def test_bad_inputs_one_line_error(args, pattern, capsys) -> None:
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert out == ""
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert re.search(pattern, lines[0]), lines[0]


def test_bad_config_key(tmp_path, capsys) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("data: {name: mfeat}\ntrain: {max_epoch: 3}\n")
    code, _, err = run_cli(["fit", "--config", str(p)], capsys)
    assert code == 2 and "unknown key(s) ['max_epoch']" in err and "max_epochs" in err


def test_shape_and_nan_errors_name_the_modality() -> None:
    from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset
    from dain.errors import DataValidationError

    spec = DatasetSpec("t", "multiclass", 2, (ModalitySpec("audio", "vector", (4,)),))
    split = {"train": np.arange(2), "val": np.arange(2, 3), "test": np.arange(3, 4)}
    with pytest.raises(DataValidationError, match="modality 'audio' has shape \\(4, 5\\), expected \\(4, 4\\)"):
        MultimodalDataset(spec, {"audio": np.zeros((4, 5), np.float32)}, np.ones((4, 1), bool), np.zeros(4), split)
    x = np.zeros((4, 4), np.float32)
    x[1, 2] = np.nan
    x[3, 0] = np.inf
    with pytest.raises(DataValidationError, match="modality 'audio' contains 2 NaN/inf"):
        MultimodalDataset(spec, {"audio": x}, np.ones((4, 1), bool), np.zeros(4), split)


def test_console_script_entry_point() -> None:
    proc = subprocess.run([sys.executable, "-m", "dain.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "compare" in proc.stdout


def test_interactions_cli_json(capsys) -> None:
    code, out, _ = run_cli(["interactions", "--data", "synthetic-synergy", "--estimator", "exact", "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["unit"] == "bits" and doc["dataset"] == "synthetic-synergy"
    assert doc["split"] == "val"  # by default read on rows the estimator was not fitted on
    (row,) = doc["results"]
    assert row["unique"] == {"x1": row["U1"], "x2": row["U2"]} and row["read_on"].startswith("val (plug-in")
    assert row["modalities"] == ["x1", "x2"] and row["lag"] is None
    assert row["S"] == pytest.approx(1.0, abs=0.01) and row["R"] == pytest.approx(0.0, abs=0.01)
    assert row["R"] + row["U1"] + row["U2"] + row["S"] == pytest.approx(row["total"], abs=1e-6)


def test_interactions_unknown_modality(capsys) -> None:
    code, _, err = run_cli(["interactions", "--data", "mfeat", "--modalities", "fou,zzz"], capsys)
    assert code == 2 and "no modality ['zzz']" in err and "fou" in err


def test_fit_on_bring_your_own_folder(tmp_path, capsys) -> None:
    from dain.datasets.mfeat import _read

    z = _read()
    (tmp_path / "f" / "modalities").mkdir(parents=True)
    for v in ("fou", "mor"):
        np.save(tmp_path / "f" / "modalities" / f"{v}.npy", z[v].astype(np.float32))
    np.save(tmp_path / "f" / "labels.npy", z["y"].astype(np.int64))
    code, out, _ = run_cli(
        [
            "fit",
            "--data",
            str(tmp_path / "f"),
            "--model",
            "late_fusion",
            "--max-epochs",
            "2",
            "--set",
            "hidden=16",
            "--out",
            str(tmp_path / "r"),
            "--json",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["task"] == "multiclass" and doc["data"]["n_samples"] == 2000
    assert doc["test"]["acc"] > 0.5


def test_relative_folder_is_saved_absolute_and_found_from_elsewhere(tmp_path, capsys, monkeypatch) -> None:
    """``--data ./f`` is saved as an absolute path: ``dain test --run`` finds the folder from another directory."""
    from dain.datasets.mfeat import _read

    z = _read()
    (tmp_path / "f" / "modalities").mkdir(parents=True)
    np.save(tmp_path / "f" / "modalities" / "mor.npy", z["mor"].astype(np.float32))
    np.save(tmp_path / "f" / "labels.npy", z["y"].astype(np.int64))
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--data", "./f", "--model", "late_fusion", "--max-epochs", "1", "--out", "r", "--no-progress"]
    assert run_cli([*args, "--quiet"], capsys)[0] == 0
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["data"]["name"] == str(tmp_path / "f")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert run_cli(["test", "--run", str(tmp_path / "r"), "--json"], capsys)[0] == 0


def test_ddp_two_cpu_processes(tmp_path) -> None:
    """--devices 2 --strategy ddp (gloo on CPU): rank 0 alone writes the run and prints the JSON."""
    out = tmp_path / "ddp"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dain.cli",
            "fit",
            "--data",
            "mfeat",
            "--model",
            "late_fusion",
            "--max-epochs",
            "1",
            "--set",
            "hidden=16",
            "--accelerator",
            "cpu",
            "--devices",
            "2",
            "--strategy",
            "ddp",
            "--out",
            str(out),
            "--json",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["test"]["acc"] > 0.3 and (out / "metrics.json").exists() and not (out / "RUNNING").exists()


def test_latency_is_timed_for_every_run_of_a_model(mfeat_run: Path, tmp_path) -> None:
    """measure_latency takes one folder or a list of a model's runs; a run that cannot be loaded is left out."""
    from dain.training.frontier import measure_latency

    calls: list[int] = []
    import dain.training.runner as runner

    real = runner.load_run

    def counting(run):  # noqa: ANN001, ANN202
        calls.append(1)
        return real(run)

    runner.load_run = counting
    try:
        ms = measure_latency(
            {"one": str(mfeat_run), "two": [str(mfeat_run), str(mfeat_run)], "gone": str(tmp_path / "nope")},
            batch_size=8,
            rounds=2,
            repeats=1,
        )
    finally:
        runner.load_run = real
    assert set(ms) == {"one", "two"} and all(v > 0 for v in ms.values())
    assert len(calls) == 4  # every run loaded once, the missing one tried


# ------------------------------------------------------------------------------ flags checked before anything runs
def _one_error_line(code: int, out: str, err: str) -> str:
    assert code == 2 and out == "" and "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def config_only_run(tmp_path) -> Path:
    """A run directory of an mfeat late_fusion run holding only its config.yaml: enough for the checks made before
    any weights are read (those then fail on the missing weights)."""
    from dain.config import RunConfig

    cfg = RunConfig()
    cfg.data.name, cfg.model.name = "mfeat", "late_fusion"
    run = tmp_path / "run"
    run.mkdir()
    cfg.to_yaml(run / "config.yaml")
    return run


@pytest.mark.parametrize(
    "flag, pattern",
    [
        ("--precision", r"--precision \(train.precision\) must be one of .*16-mixed, bf16-true, bf16-mixed, 32-true"),
        ("--accelerator", r"--accelerator \(train.accelerator\) must be one of auto, gpu, cpu, cuda, mps"),
        ("--strategy", r"--strategy \(train.strategy\) must be one of auto, ddp, ddp_spawn"),
    ],
)
def test_lightning_flags_checked_up_front(flag, pattern, capsys) -> None:
    code, out, err = run_cli(["fit", "--data", "mfeat", "--model", "late_fusion", flag, "garbage"], capsys)
    line = _one_error_line(code, out, err)
    assert re.search(pattern, line) and "'garbage'" in line, line


def test_lightning_flags_accept_what_lightning_accepts() -> None:
    import dataclasses

    import torch

    from dain.config import TrainConfig
    from dain.errors import ConfigError
    from dain.validation import check_train_config

    for kw in (
        *({"precision": p} for p in ("16-mixed", "bf16-mixed", "32-true", "64-true", "32", "bf16", 32)),
        *({"strategy": s} for s in ("auto", "ddp", "ddp_spawn", "DDP", "fsdp")),
        {"accelerator": "auto"},
        {"accelerator": "cpu"},
    ):
        check_train_config(dataclasses.replace(TrainConfig(), **kw))
    if not torch.cuda.is_available():  # a known name, but no such device here: said before anything is loaded
        for acc in ("cuda", "gpu"):
            with pytest.raises(ConfigError, match=f"--accelerator {acc}: no {acc} device is available here"):
                check_train_config(dataclasses.replace(TrainConfig(), accelerator=acc))


def test_test_on_other_data_names_the_differences(config_only_run: Path, capsys) -> None:
    code, out, err = run_cli(["test", "--run", str(config_only_run), "--data", "synthetic-synergy"], capsys)
    line = _one_error_line(code, out, err)
    assert "trained on mfeat" in line and "task multiclass vs binary" in line and "outputs 10 vs 1" in line
    assert "modalities fou,fac,kar,pix,zer,mor vs x1,x2" in line
    # the same data passes the check: what fails next is the missing weights, not a size mismatch
    code, out, err = run_cli(["test", "--run", str(config_only_run), "--data", "mfeat"], capsys)
    assert "no trained weights" in _one_error_line(code, out, err)


def test_spec_differences_names_kinds_and_shapes() -> None:
    from dain.data.spec import DatasetSpec, ModalitySpec
    from dain.validation import spec_differences

    a = DatasetSpec("a", "multiclass", 3, (ModalitySpec("x", "vector", (4,)), ModalitySpec("y", "vector", (2,))))
    b = DatasetSpec("b", "multiclass", 3, (ModalitySpec("x", "vector", (5,)), ModalitySpec("y", "vector", (2,))))
    assert spec_differences(a, a) == [] and spec_differences(a, b) == ["x vector [4] vs vector [5]"]


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--model", "early_fusion"], "--model early_fusion conflicts with --run .*, whose model is late_fusion"),
        (["--data", "synthetic-synergy"], "--data synthetic-synergy conflicts with --run .*, whose data is mfeat"),
        (["--set", "hidden=8"], "--set does not apply with --run"),
        (["--model", "late_fusion", "--data", "mfeat"], "no trained weights"),  # agreeing flags are accepted
        ([], "no trained weights"),  # --model / --data are not required with --run
    ],
)
def test_bench_run_flags(config_only_run: Path, extra, pattern, capsys) -> None:
    code, out, err = run_cli(["bench", "--run", str(config_only_run), *extra], capsys)
    line = _one_error_line(code, out, err)
    assert re.search(pattern, line), line


@pytest.mark.parametrize(
    "args, pattern",
    [
        (
            ["bench", "--model", "late_fusion", "--data", "mfeat", "--batch-size", "0"],
            "--batch-size must be at least 1",
        ),
        (["bench", "--model", "late_fusion", "--data", "mfeat", "--batch-size", "-5"], "at least 1, got -5"),
        (["bench", "--model", "late_fusion"], "needs --model and --data, or --run"),
        (
            ["compare", "--data", "mfeat", "--models", "late_fusion", "--robustness", "--robustness-rates", "0.1,1.5"],
            r"--robustness-rates: each rate is a probability in \[0, 1\), got 1.5",
        ),
        (
            ["compare", "--data", "mfeat", "--models", "late_fusion", "--robustness", "--robustness-rates", "abc"],
            "--robustness-rates must be comma-separated numbers",
        ),
        (
            ["compare", "--data", "mfeat", "--models", "late_fusion", "--robustness", "--robustness-drop", "nosuch"],
            "--robustness-drop: unknown modality 'nosuch'; the modalities are fou, fac",
        ),
        (
            ["compare", "--data", "mfeat", "--models", "late_fusion", "--robustness-drop", "fou"],
            "without --robustness, --robustness-drop would be ignored",
        ),
        (
            ["compare", "--data", "mfeat", "--models", "late_fusion", "--robustness-rates", "0.2"],
            "without --robustness, --robustness-rates would be ignored",
        ),
        (["datasets", "list", "nosuch"], "unknown dataset 'nosuch'; known datasets: .*mfeat"),
    ],
)
def test_bench_compare_datasets_flags_checked_up_front(args, pattern, tmp_path, capsys) -> None:
    if args[0] == "compare":
        args = [*args, "--out", str(tmp_path / "cmp"), "--seeds", "1", "--max-epochs", "1"]
    code, out, err = run_cli(args, capsys)
    line = _one_error_line(code, out, err)
    assert re.search(pattern, line), line
    assert not (tmp_path / "cmp").exists()  # nothing was trained


def test_datasets_list_one_name(capsys) -> None:
    code, out, _ = run_cli(["datasets", "list", "mfeat", "--json"], capsys)
    assert code == 0 and [r["name"] for r in json.loads(out)["datasets"]] == ["mfeat"]


def test_weights_that_do_not_fit_the_rebuilt_model_are_a_clear_error(tmp_path: Path) -> None:
    """A run whose config.yaml no longer matches its weights (edited, or data of other shapes) is a DainError naming
    the run, not a state-dict size-mismatch traceback."""
    from dain.errors import DainError
    from dain.training.runner import load_run

    run = tmp_path / "lf"
    fit_mfeat(run, "late_fusion", "--threads", "1", epochs=1, hidden=16)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["model"]["params"]["hidden"] = 8
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(DainError, match=r"do not fit a late_fusion built for mfeat"):
        load_run(run)
