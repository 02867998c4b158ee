"""Bring-your-own folder format: round trip of mfeat, task inference and validation errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dain.data.registry_api import load_dataset
from dain.datasets.folder import infer_task, load_folder
from dain.datasets.mfeat import VIEWS, _read
from dain.errors import DataValidationError


def _mfeat_folder(d: Path) -> dict[str, np.ndarray]:
    z = _read()
    (d / "modalities").mkdir(parents=True)
    for v in VIEWS:
        np.save(d / "modalities" / f"{v}.npy", z[v].astype(np.float32))
    pd.DataFrame({"label": z["y"].astype(int)}).to_csv(d / "labels.csv", index=False)
    return z


def test_mfeat_round_trip(tmp_path: Path) -> None:
    _mfeat_folder(tmp_path)
    ref = load_dataset("mfeat", seed=3)
    (tmp_path / "split.json").write_text(json.dumps({s: ref.splits[s].tolist() for s in ("train", "val", "test")}))
    (tmp_path / "dataset.yaml").write_text("name: mfeat-folder\nmodalities: [" + ", ".join(VIEWS) + "]\n")
    data = load_dataset(str(tmp_path))
    assert data.spec.name == "mfeat-folder" and data.spec.task == "multiclass" and data.spec.num_outputs == 10
    assert data.spec.modality_names == list(VIEWS)
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(data.splits[s], ref.splits[s])
    np.testing.assert_array_equal(data.target, ref.target)
    for v in VIEWS:
        np.testing.assert_allclose(data.inputs[v], ref.inputs[v], atol=1e-4)


def test_infer_task() -> None:
    assert infer_task(np.array([0, 1, 1])) == "binary"
    assert infer_task(np.array([0, 1, 2])) == "multiclass"
    assert infer_task(np.array([0.5, 1.0])) == "regression"
    assert infer_task(np.array([[0, 1], [1, 1]])) == "multilabel"


def test_mask_sequences_and_images(tmp_path: Path) -> None:
    n = 20
    (tmp_path / "modalities").mkdir()
    seq = np.random.rand(n, 5, 3).astype(np.float32)
    seq[0] = np.nan  # allowed: masked out below
    np.savez(tmp_path / "modalities" / "seq.npz", x=seq, steps=np.ones((n, 5), bool))
    np.save(tmp_path / "modalities" / "img.npy", np.random.rand(n, 1, 4, 4))
    pd.DataFrame(np.random.rand(n, 3), columns=list("abc")).to_parquet(tmp_path / "modalities" / "vec.parquet")
    np.save(tmp_path / "labels.npy", np.random.rand(n))
    mask = np.ones((n, 3), bool)
    mask[0, 1] = False  # sorted order: img, seq, vec
    np.save(tmp_path / "mask.npy", mask)
    d = load_folder(tmp_path)
    assert d.spec.task == "regression"
    assert [(m.name, m.kind) for m in d.spec.modalities] == [
        ("img", "image"),
        ("seq", "sequence"),
        ("vec", "vector"),
    ]
    assert (d.inputs["seq"][0] == 0).all() and "seq" in d.steps
    np.save(tmp_path / "mask.npy", np.ones((n, 3), bool))
    with pytest.raises(DataValidationError, match="seq.npz.*NaN"):
        load_folder(tmp_path)


def test_validation_errors(tmp_path: Path) -> None:
    (tmp_path / "modalities").mkdir()
    np.save(tmp_path / "modalities" / "a.npy", np.zeros((5, 2)))
    np.save(tmp_path / "labels.npy", np.array([0, 1, 0, 1]))
    with pytest.raises(DataValidationError, match="a.npy: 5 rows"):
        load_folder(tmp_path)
    np.save(tmp_path / "labels.npy", np.array([0, 1, 0, 1, 1]))
    (tmp_path / "modalities" / "b.txt").write_text("x")
    with pytest.raises(DataValidationError, match="b.txt: unknown extension"):
        load_folder(tmp_path)
