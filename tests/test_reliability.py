"""Bad inputs and bad invocations, table-driven: each ends in exit 2 with one ``error:`` line naming the file or flag,
or exit 0 with a ``warning:`` line saying exactly what was done; never a traceback, never a silent exit 0."""

from __future__ import annotations

import json
import re
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from dain.cli import main
from tests.conftest import NO_TREES, fit_mfeat

TINY_FIT = ["--model", "late_fusion", "--max-epochs", "1", "--set", "hidden=8", "--no-progress", "--threads", "1"]


def write_folder(d: Path, n: int = 90, classes: int = 3, seed: int = 0) -> Path:
    """A small, valid bring-your-own folder (two vector modalities, ``classes`` balanced classes)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    (d / "modalities").mkdir(parents=True)
    np.save(d / "modalities" / "a.npy", (rng.normal(size=(n, 4)) + y[:, None]).astype(np.float32))
    np.save(d / "modalities" / "b.npy", (rng.normal(size=(n, 3)) + y[:, None]).astype(np.float32))
    np.save(d / "labels.npy", y.astype(np.int64))
    return d


def _split(d: Path, train: list[int], val: list[int], test: list[int]) -> None:
    (d / "split.json").write_text(json.dumps({"train": train, "val": val, "test": test}))


@dataclass
class Ctx:
    tmp: Path
    request: pytest.FixtureRequest

    def folder(self, defect: Callable[[Path], None] | None = None, **kw) -> str:
        d = write_folder(self.tmp / "data", **kw)
        if defect is not None:
            defect(d)
        return str(d)

    def fit(self, data: str, *extra: str) -> list[str]:
        return ["fit", "--data", data, *TINY_FIT, "--out", str(self.tmp / "run"), *extra]

    def compare(self) -> list[str]:
        return [
            "compare",
            "--data",
            "mfeat",
            "--max-epochs",
            "1",
            "--no-progress",
            "--no-frontier",
            "--out",
            str(self.tmp / "cmp"),
        ]

    def fit_config(self, text: str) -> list[str]:
        return ["fit", "--config", str(_write(self.tmp / "c.yaml", text)), "--out", str(self.tmp / "run")]

    def run(self, corrupt: Callable[[Path], None] | None = None) -> str:
        """A copy of a trained 1-epoch mfeat DAIN run (optionally damaged)."""
        src: Path = self.request.getfixturevalue("dain_run")
        dst = self.tmp / "trained"
        shutil.copytree(src, dst)
        if corrupt is not None:
            corrupt(dst)
        return str(dst)

    def file(self) -> Path:
        p = self.tmp / "afile"
        p.write_text("not a directory")
        return p


def _zero_bytes(rel: str) -> Callable[[Path], None]:
    return lambda d: (d / rel).write_bytes(b"")


def _text(rel: str, text: str) -> Callable[[Path], None]:
    return lambda d: (d / rel).write_text(text)


def _object_npy(d: Path) -> None:
    np.save(d / "modalities" / "a.npy", np.array([{"x": 1}] * 90, dtype=object), allow_pickle=True)


def _object_labels(d: Path) -> None:
    np.save(d / "labels.npy", np.array(["a", 1] * 45, dtype=object), allow_pickle=True)


def _sequences(d: Path) -> None:
    """Two sequence modalities (6 steps) beside the vectors: --lags applies to the sequence pair only."""
    rng = np.random.default_rng(1)
    for m in ("s1", "s2"):
        np.save(d / "modalities" / f"{m}.npy", rng.normal(size=(90, 6, 1)).astype(np.float32))


def _garbage_checkpoint(d: Path) -> None:
    (d.parent / "run" / "checkpoints").mkdir(parents=True)
    (d.parent / "run" / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")


def _one_class(d: Path) -> None:
    np.save(d / "labels.npy", np.zeros(90, np.int64))


def _empty_test(d: Path) -> None:
    _split(d, list(range(60)), list(range(60, 90)), [])


def _binary_single_class_test(d: Path) -> None:
    # labels alternate 0/1: the test split holds even rows (class 0) only, so AUROC/AUPRC are undefined there
    _split(d, list(range(0, 60)), list(range(60, 80)), list(range(80, 90, 2)))


@dataclass
class Case:
    name: str
    argv: Callable[[Ctx], list[str]]
    kind: str  # "error": exit 2 + one error line; "warning": exit 0 + a warning line
    pattern: str  # regex the error/warning line must match (names the file or flag)
    check: Callable[[Ctx, str], None] | None = None


def _strict_metrics(ctx: Ctx, out: str) -> None:
    def no_constants(c: str):
        raise AssertionError(f"metrics.json holds the non-standard JSON constant {c}")

    m = json.loads((ctx.tmp / "run" / "metrics.json").read_text(), parse_constant=no_constants)
    assert m["test"]["auroc"] is None and m["test"]["auprc"] is None


def _no_run_dir(ctx: Ctx, out: str) -> None:
    assert not (ctx.tmp / "run").exists(), "the splits must be validated before a run directory is written"


def _finished(ctx: Ctx, out: str) -> None:
    assert (ctx.tmp / "run" / "metrics.json").exists()


CASES = [
    # ---------------------------------------------------------------- bring-your-own folder: unreadable files
    Case("npy_zero_bytes", lambda c: c.fit(c.folder(_zero_bytes("modalities/a.npy"))), "error", r"a\.npy"),
    Case("npy_object_dtype", lambda c: c.fit(c.folder(_object_npy)), "error", r"a\.npy.*(object|pickle)"),
    Case("npz_corrupt", lambda c: c.fit(c.folder(_text("modalities/c.npz", "junk"))), "error", r"c\.npz"),
    Case("parquet_corrupt", lambda c: c.fit(c.folder(_text("modalities/c.parquet", "junk"))), "error", r"\.parquet"),
    Case("labels_npy_zero_bytes", lambda c: c.fit(c.folder(_zero_bytes("labels.npy"))), "error", r"labels\.npy"),
    Case(
        "labels_csv_empty",
        lambda c: c.fit(c.folder(lambda d: ((d / "labels.npy").unlink(), (d / "labels.csv").write_text("")))),
        "error",
        r"labels\.csv",
    ),
    Case("labels_object_dtype", lambda c: c.fit(c.folder(_object_labels)), "error", r"labels\.npy.*object"),
    Case("mask_npy_zero_bytes", lambda c: c.fit(c.folder(_zero_bytes("mask.npy"))), "error", r"mask\.npy"),
    Case(
        "split_json_malformed", lambda c: c.fit(c.folder(_text("split.json", '{"train": [1,'))), "error", r"split\.json"
    ),
    Case("split_json_not_mapping", lambda c: c.fit(c.folder(_text("split.json", "[1, 2]"))), "error", r"split\.json"),
    Case(
        "split_json_not_integers",
        lambda c: c.fit(c.folder(_text("split.json", '{"train": ["a"], "val": [1], "test": [2]}'))),
        "error",
        r"split\.json",
    ),
    Case(
        "dataset_yaml_malformed",
        lambda c: c.fit(c.folder(_text("dataset.yaml", "name: [unclosed\ntask: {"))),
        "error",
        r"dataset\.yaml",
    ),
    Case("folder_unknown_option", lambda c: c.fit(c.folder(), "--option", "foo=1"), "error", r"foo"),
    # ---------------------------------------------------------------- splits and labels, before any training
    Case("empty_test_split", lambda c: c.fit(c.folder(_empty_test)), "error", r"test split.*empty", _no_run_dir),
    Case("single_class_train", lambda c: c.fit(c.folder(_one_class)), "error", r"one class", _no_run_dir),
    Case(
        "undefined_metric_is_null",
        lambda c: c.fit(c.folder(_binary_single_class_test, classes=2)),
        "warning",
        r"auroc.*undefined",
        _strict_metrics,
    ),
    # ---------------------------------------------------------------- --set / --option / config values
    Case("set_hidden_not_int", lambda c: [*c.fit("mfeat"), "--set", "hidden=abc"], "error", r"hidden.*integer"),
    Case("set_dropout_not_float", lambda c: [*c.fit("mfeat"), "--set", "dropout=abc"], "error", r"dropout.*number"),
    Case(
        "set_active_agents_float",
        lambda c: [*c.fit("mfeat"), "--model", "dain", "--set", "active_agents=2.5"],
        "error",
        r"active_agents.*integer",
    ),
    Case(
        "set_active_agents_negative",
        lambda c: [*c.fit("mfeat"), "--model", "dain", "--set", "active_agents=-1"],
        "error",
        r"active_agents.*>= 0",
    ),
    Case(
        "set_active_agents_above_k",
        lambda c: [*c.fit("mfeat"), "--model", "dain", "--set", "active_agents=20", *NO_TREES],
        "warning",
        r"active_agents 20 is above the 8 routed agents.*trains with 8",
        _finished,
    ),
    Case("set_roles_not_list", lambda c: [*c.fit("mfeat"), "--model", "dain", "--set", "roles=5"], "error", r"roles"),
    Case(
        "set_gating_unknown", lambda c: [*c.fit("mfeat"), "--model", "dain", "--set", "gating=foo"], "error", r"gating"
    ),
    Case("set_empty_value", lambda c: [*c.fit("mfeat"), "--set", "hidden="], "error", r"hidden.*integer"),
    Case(
        "config_section_not_mapping",
        lambda c: c.fit_config("data: {name: mfeat}\ntrain: 5\n"),
        "error",
        r"section 'train' must be a mapping",
    ),
    Case("registered_unknown_option", lambda c: [*c.fit("mfeat"), "--option", "foo=1"], "error", r"foo"),
    Case(
        "config_max_epochs_0",
        lambda c: c.fit_config("data: {name: mfeat}\ntrain: {max_epochs: 0}\n"),
        "error",
        r"max_epochs",
    ),
    Case(
        "config_param_wrong_type",
        lambda c: c.fit_config("data: {name: mfeat}\nmodel: {name: late_fusion, params: {hidden: abc}}\n"),
        "error",
        r"hidden",
    ),
    # ---------------------------------------------------------------- training flags
    Case("max_epochs_0", lambda c: [*c.fit("mfeat"), "--max-epochs", "0"], "error", r"--max-epochs"),
    Case("batch_size_0", lambda c: [*c.fit("mfeat"), "--batch-size", "0"], "error", r"--batch-size"),
    Case("lr_negative", lambda c: [*c.fit("mfeat"), "--lr=-1"], "error", r"--lr"),
    Case("patience_negative", lambda c: [*c.fit("mfeat"), "--patience=-1"], "error", r"--patience"),
    Case("threads_negative", lambda c: [*c.fit("mfeat"), "--threads=-1"], "error", r"--threads"),
    Case("seed_negative", lambda c: [*c.fit("mfeat"), "--seed=-1"], "error", r"--seed"),
    Case("devices_0", lambda c: [*c.fit("mfeat"), "--devices", "0"], "error", r"--devices"),
    Case("out_not_creatable", lambda c: [*c.fit("mfeat"), "--out", str(c.file() / "run")], "error", r"--out"),
    Case(
        "resume_before_checkpoint",
        lambda c: [*c.fit(c.folder()), "--resume"],
        "warning",
        r"--resume.*no checkpoint.*first epoch",
        _finished,
    ),
    Case(
        "resume_unreadable_checkpoint",
        lambda c: [*c.fit(c.folder(_garbage_checkpoint)), "--resume"],
        "error",
        r"--resume.*last\.ckpt cannot be read",
    ),
    # ---------------------------------------------------------------- compare
    Case(
        "compare_seeds_0",
        lambda c: [*c.compare(), "--models", "late_fusion", "--seeds", "0"],
        "error",
        r"--seeds",
    ),
    Case(
        "compare_seed_list_not_int",
        lambda c: [*c.compare(), "--models", "late_fusion", "--seed-list", "a,b"],
        "error",
        r"--seed-list",
    ),
    Case(
        "compare_jobs_0",
        lambda c: [*c.compare(), "--models", "late_fusion", "--seeds", "1", "--jobs", "0"],
        "error",
        r"--jobs",
    ),
    Case(
        "compare_every_run_failed",
        lambda c: [
            "compare",
            "--data",
            c.folder(_empty_test),
            "--models",
            "late_fusion,early_fusion",
            "--seeds",
            "1",
            "--max-epochs",
            "1",
            "--no-progress",
            "--out",
            str(c.tmp / "cmp"),
        ],
        "error",
        r"every run failed",
    ),
    # ---------------------------------------------------------------- test / explain on a trained run
    Case(
        "test_corrupt_weights",
        lambda c: ["test", "--run", c.run(_text("model.safetensors", "garbage"))],
        "error",
        r"model\.safetensors",
    ),
    Case(
        "test_corrupt_config",
        lambda c: ["test", "--run", c.run(_text("config.yaml", "model: [unclosed"))],
        "error",
        r"config\.yaml",
    ),
    Case("test_budget_negative", lambda c: ["test", "--run", c.run(), "--budget=-1"], "error", r"--budget"),
    Case("test_budget_above_k", lambda c: ["test", "--run", c.run(), "--budget", "999"], "error", r"--budget"),
    Case(
        "test_budget_above_trained",
        lambda c: ["test", "--run", c.run(), "--budget", "5"],
        "warning",
        r"--budget 5.*trained.*extrapolation",
    ),
    Case(
        "test_adaptive_out_of_range", lambda c: ["test", "--run", c.run(), "--adaptive", "1.5"], "error", r"--adaptive"
    ),
    Case("test_unknown_option", lambda c: ["test", "--run", c.run(), "--option", "foo=1"], "error", r"foo"),
    Case("explain_budget_above_k", lambda c: ["explain", "--run", c.run(), "--budget", "999"], "error", r"--budget"),
    # ---------------------------------------------------------------- interactions
    Case(
        "lags_not_int", lambda c: ["interactions", "--data", "synthetic-temporal", "--lags", "0..x"], "error", r"--lags"
    ),
    Case("lags_negative", lambda c: ["interactions", "--data", "synthetic-temporal", "--lags=-3"], "error", r"--lags"),
    Case(
        "lags_beyond_sequence",
        lambda c: ["interactions", "--data", "synthetic-temporal", "--lags", "0..50"],
        "error",
        r"--lags.*20 steps",
    ),
    Case(
        "lags_reversed",
        lambda c: ["interactions", "--data", "synthetic-temporal", "--lags", "3..1"],
        "error",
        r"--lags 3\.\.1.*empty",
    ),
    Case(
        "lags_on_vectors",
        lambda c: ["interactions", "--data", "mfeat", "--modalities", "fou,mor", "--lags", "0..2"],
        "error",
        r"--lags.*sequence",
    ),
    Case(
        "lags_some_pairs_not_sequences",
        lambda c: ["interactions", "--data", c.folder(_sequences), "--estimator", "exact", "--lags", "0..2"],
        "warning",
        r"--lags applies to sequence pairs only; pairs with a, b are estimated without lags",
    ),
    Case(
        "plot_not_creatable",
        lambda c: [
            "interactions",
            "--data",
            "synthetic-synergy",
            "--estimator",
            "exact",
            "--plot",
            str(c.file() / "p.png"),
        ],
        "error",
        r"--plot",
    ),
]


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def dain_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reliability") / "dain"
    fit_mfeat(out, "dain", *NO_TREES, "--seed", "0", "--threads", "1", epochs=1, hidden=16)
    return out


def test_budget_zero_is_the_shared_agent_alone(dain_run: Path, capsys) -> None:
    code, out, err = invoke(["test", "--run", str(dain_run), "--budget", "0", "--json"], capsys)
    assert code == 0, err[-800:]
    doc = json.loads(out)
    assert doc["budget"] == 0 and doc["efficiency"]["active_agents_mean"] == 1.0  # the shared agent only


def invoke(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run the CLI in-process; an exception escaping ``main`` is what a user would see as a traceback."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors
        code = int(e.code or 0)
    except Exception:
        code = 1
        out, err = capsys.readouterr()
        return code, out, err + traceback.format_exc()
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path, request, capsys) -> None:
    ctx = Ctx(tmp_path, request)
    argv = case.argv(ctx)
    code, out, err = invoke(argv, capsys)
    assert "Traceback" not in err, err[-3000:]
    lines = err.splitlines()
    if case.kind == "error":
        errors = [ln for ln in lines if ln.startswith("error:")]
        assert code == 2, f"exit {code}, expected 2; stderr tail: {err[-800:]}"
        assert len(errors) == 1, err[-800:]
        assert re.search(case.pattern, errors[0]), errors[0]
    else:
        warns = [ln for ln in lines if ln.startswith("warning:")]
        assert code == 0, f"exit {code}; stderr tail: {err[-800:]}"
        assert any(re.search(case.pattern, w) for w in warns), warns or err[-800:]
    if case.check is not None:
        case.check(ctx, out)
