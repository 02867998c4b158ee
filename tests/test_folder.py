"""Bring-your-own folder format: round trip of mfeat, task inference and validation errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dain.data.registry_api import load_dataset
from dain.data.spec import stratified_split
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


def _folder(d: Path, y: np.ndarray | None = None, csv: str | None = None, yaml: str | None = None, n: int = 0) -> Path:
    """A one-modality folder: ``a.npy`` (rows = labels), labels.npy ``y`` or labels.csv text, optional dataset.yaml."""
    rows = n or (len(y) if y is not None and y.ndim else len((csv or "").splitlines()) - 1)
    (d / "modalities").mkdir(exist_ok=True)
    np.save(d / "modalities" / "a.npy", np.random.default_rng(0).normal(size=(rows, 3)).astype(np.float32))
    if y is not None:
        np.save(d / "labels.npy", y)
    if csv is not None:
        (d / "labels.csv").write_text(csv)
    if yaml is not None:
        (d / "dataset.yaml").write_text(yaml)
    return d


def test_regression_with_whole_number_targets_gets_every_split(tmp_path: Path) -> None:
    d = load_folder(_folder(tmp_path, np.arange(40, dtype=np.float32) + 20))
    assert d.spec.task == "regression" and d.split_sizes() == {"train": 28, "val": 6, "test": 6}
    assert d.info["protocol"].startswith("shuffled")
    same = stratified_split(np.arange(40) + 20, seed=0, stratify=False)
    assert all(np.array_equal(d.splits[s], same[s]) for s in same)


def test_class_names_number_the_labels(tmp_path: Path) -> None:
    labels = ["cat", "dog", "dog", "cat", "dog", "cat"] * 4
    _folder(tmp_path, csv="label\n" + "\n".join(labels) + "\n", yaml="class_names: [dog, cat]\n")
    d = load_folder(tmp_path)
    assert d.spec.class_names == ("dog", "cat")
    np.testing.assert_array_equal(d.target, [float(v == "cat") for v in labels])
    (tmp_path / "dataset.yaml").write_text("class_names: [dog, dog]\n")
    with pytest.raises(DataValidationError, match="dataset.yaml: class_names .* more than once"):
        load_folder(tmp_path)
    (tmp_path / "dataset.yaml").write_text("class_names: [dog, bird]\n")
    with pytest.raises(DataValidationError, match=r"labels.csv: label\(s\) \['cat'\] not in class_names"):
        load_folder(tmp_path)
    # integer labels 0..K-1 are indices into class_names
    (tmp_path / "labels.csv").unlink()
    np.save(tmp_path / "labels.npy", np.arange(24) % 3)
    (tmp_path / "dataset.yaml").write_text("class_names: [low, mid, high]\n")
    d = load_folder(tmp_path)
    assert d.spec.task == "multiclass" and d.spec.class_names == ("low", "mid", "high")
    np.testing.assert_array_equal(d.target, np.arange(24) % 3)


def test_blank_text_label_names_its_line(tmp_path: Path) -> None:
    labels = ["cat", "dog"] * 5
    labels[3] = ""
    _folder(tmp_path, csv="id,label\n" + "\n".join(f"{i},{v}" for i, v in enumerate(labels)) + "\n")
    with pytest.raises(DataValidationError, match=r"labels.csv: 1 row\(s\) with an empty label, at line\(s\) \[5\]"):
        load_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("label\n" + "\n".join(labels) + "\n\n")  # a blank line as the empty label
    with pytest.raises(DataValidationError, match=r"at line\(s\) \[5\]"):
        load_folder(tmp_path)


@pytest.mark.parametrize("y", [np.array(3), np.zeros((10, 2, 2), np.int64)])
def test_labels_must_be_1d_or_2d(tmp_path: Path, y: np.ndarray) -> None:
    _folder(tmp_path, y, n=10)
    with pytest.raises(DataValidationError, match=rf"labels.npy: labels of shape \({y.shape[0] if y.ndim else ''}"):
        load_folder(tmp_path)


def test_text_labels_for_regression_are_refused(tmp_path: Path) -> None:
    _folder(tmp_path, csv="label\n" + "cat\ndog\n" * 5, yaml="task: regression\n")
    with pytest.raises(DataValidationError, match="labels.csv: text labels .* cannot be regression targets"):
        load_folder(tmp_path)
    (tmp_path / "dataset.yaml").unlink()
    (tmp_path / "labels.csv").write_text("x,y\n" + "p,q\nr,s\n" * 5)  # two text columns: inferred regression
    with pytest.raises(DataValidationError, match="labels.csv: text labels"):
        load_folder(tmp_path)


def test_npz_with_only_steps(tmp_path: Path) -> None:
    _folder(tmp_path, np.arange(6) % 2)
    np.savez(tmp_path / "modalities" / "s.npz", steps=np.ones((6, 4), bool))
    with pytest.raises(
        DataValidationError, match="s.npz: holds only 'steps', no data array; save the values under key 'x'"
    ):
        load_folder(tmp_path)


@pytest.mark.parametrize(
    ("y", "names", "target"),
    [
        ([1, 2, 2, 1], ("1", "2"), [0, 1, 1, 0]),
        ([-1, 1, 1, -1], ("-1", "1"), [0, 1, 1, 0]),
        ([0, 1, 1, 0], ("0", "1"), [0, 1, 1, 0]),
        ([1, 1, 1, 1], ("0", "1"), [1, 1, 1, 1]),
    ],
)
def test_two_integer_values_are_binary(tmp_path: Path, y: list[int], names: tuple[str, ...], target: list[int]) -> None:
    d = load_folder(_folder(tmp_path, np.array(y * 5)))
    assert d.spec.task == "binary" and d.spec.class_names == names
    np.testing.assert_array_equal(d.target, np.array(target * 5, np.float32))


def test_integer_classes_not_0_to_c_are_renumbered(tmp_path: Path) -> None:
    d = load_folder(_folder(tmp_path, np.array([0, 2, 5, 5, 2, 0] * 4)))
    assert d.spec.task == "multiclass" and d.spec.num_outputs == 3 and d.spec.class_names == ("0", "2", "5")
    np.testing.assert_array_equal(d.target, [0, 1, 2, 2, 1, 0] * 4)
    np.save(tmp_path / "labels.npy", np.array([0, 1, 2, 2, 1, 0] * 4))  # 0..C-1: unchanged
    d = load_folder(tmp_path)
    assert d.spec.class_names == ("0", "1", "2")
    np.testing.assert_array_equal(d.target, [0, 1, 2, 2, 1, 0] * 4)


@pytest.mark.parametrize(
    ("classes", "per_class", "sizes"), [(5, 5, (17, 4, 4)), (10, 3, (21, 5, 4)), (1, 3, (1, 1, 1))]
)
def test_stratified_split_small_data_fills_every_split(classes: int, per_class: int, sizes: tuple[int, ...]) -> None:
    y = np.repeat(np.arange(classes), per_class)
    sp = stratified_split(y, seed=4)
    assert tuple(len(sp[s]) for s in ("train", "val", "test")) == sizes
    assert np.array_equal(np.sort(np.concatenate(list(sp.values()))), np.arange(len(y)))
    for c in range(classes):  # each class spread as evenly as the sizes allow
        got = [int((y[sp[s]] == c).sum()) for s in ("train", "val", "test")]
        ideal = per_class * np.array(sizes) / len(y)
        assert (np.abs(np.array(got) - ideal) < 1.5).all()
    again = stratified_split(y, seed=4)
    assert all(np.array_equal(sp[s], again[s]) for s in sp)


def test_stratified_split_keeps_each_class_cut_where_no_split_is_empty() -> None:
    """Where every split gets rows, each class is cut by rounding its own share (the recorded protocols rest on this
    cut: BasicMotions' 32 / 8 inner split); a fraction of 0 stays empty."""
    y = np.repeat(np.arange(4), 10)
    sp = stratified_split(y, (0.75, 0.25, 0.0), seed=0)
    assert [len(sp[s]) for s in ("train", "val", "test")] == [32, 8, 0]
    assert [int((y[sp["val"]] == c).sum()) for c in range(4)] == [2, 2, 2, 2]


@pytest.mark.parametrize(
    ("split", "message"),
    [
        (
            {"train": [0, 1, 2, 3], "val": [4], "test": [5, 6]},
            r"split 'test' has 1 row index\(es\) out of range \[0, 6\): \[6\]",
        ),
        ({"train": [0, 1, 2, 0], "val": [3, 4], "test": [5]}, r"split 'train' lists row\(s\) \[0\] more than once"),
        ({"train": [0, 1, 2], "val": [3, 4], "test": [4, 5]}, r"splits 'val' and 'test' share 1 row\(s\): \[4\]"),
    ],
)
def test_split_json_problems_name_the_file(tmp_path: Path, split: dict[str, list[int]], message: str) -> None:
    _folder(tmp_path, np.arange(6) % 2)
    (tmp_path / "split.json").write_text(json.dumps(split))
    with pytest.raises(DataValidationError, match="split.json: " + message):
        load_folder(tmp_path)


def test_yaml_settings_and_empty_modality(tmp_path: Path) -> None:
    _folder(tmp_path, np.arange(10) % 2)
    np.save(tmp_path / "modalities" / "audio.npy", np.ones((10, 2), np.float32))
    (tmp_path / "dataset.yaml").write_text("modalities: audio\n")  # a plain string: a one-item list
    assert load_folder(tmp_path).spec.modality_names == ["audio"]
    (tmp_path / "dataset.yaml").write_text("standardize: 'false'\n")
    with pytest.raises(DataValidationError, match="dataset.yaml: standardize must be true or false"):
        load_folder(tmp_path)
    (tmp_path / "dataset.yaml").unlink()
    np.save(tmp_path / "modalities" / "audio.npy", np.ones((10, 0), np.float32))
    with pytest.raises(DataValidationError, match=r"audio.npy: shape \(10, 0\) holds no features"):
        load_folder(tmp_path)
