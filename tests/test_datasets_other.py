"""avdigits, nutrimouse, mimic4-demo (real data when present), benchmark-format loaders (generated)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dain.data.paths import find_data_dir
from dain.data.registry_api import load_dataset
from dain.datasets import download
from dain.datasets.enrico import enrico_split
from dain.errors import DainError, DataNotFoundError


def _has(sub: str, req: tuple[str, ...]) -> bool:
    try:
        find_data_dir(sub, None, req)
        return True
    except DainError:
        return False


@pytest.mark.skipif(not _has("fsdd", ("recordings",)), reason="fsdd not available")
def test_avdigits_real() -> None:
    d = load_dataset("avdigits", n_frames=24, n_mels=20)
    assert d.n_samples == 3000 and d.spec.modality("audio").shape == (24, 20)
    assert d.spec.modality("image").shape == (1, 8, 8)
    assert d.split_sizes()["test"] == 300
    assert d.steps["audio"].any(1).all()
    assert "synthetic" in d.info["pairing"]
    # pairing is class-consistent and image pools are disjoint across splits
    from dain.datasets.avdigits import read_digits_images

    _, img_y = read_digits_images(find_data_dir("sklearn_digits", None, ("digits.csv.gz",)))
    pick = d.info["image_index"]
    np.testing.assert_array_equal(img_y[pick], d.target)
    tr, te = set(pick[d.splits["train"]]), set(pick[d.splits["test"]])
    assert not tr & te
    one = load_dataset("avdigits", modalities=["image"], n_frames=8)
    assert one.spec.modality_names == ["image"]


@pytest.mark.skipif(not _has("nutrimouse", ("gene.csv",)), reason="nutrimouse not available")
def test_nutrimouse_real() -> None:
    d = load_dataset("nutrimouse")
    assert d.spec.task == "multiclass" and d.spec.num_outputs == 5
    assert d.inputs["gene"].shape == (40, 120) and d.inputs["lipid"].shape == (40, 21)
    g = load_dataset("nutrimouse", target="genotype")
    assert g.spec.task == "binary" and g.target.sum() == 20


def _meds(path: Path) -> None:
    rows = []
    for s in range(1, 21):
        rows.append((s, "MEDS_BIRTH", np.nan))
        if s != 3:
            rows += [
                (s, "LAB//50912//mg/dL", 1.0 + s / 10),
                (s, "LAB//50912//mg/dL", 1.2),
                (s, "LAB//51221//%", np.nan),
            ]
        if s != 4:
            rows += [
                (s, "MEDICATION//START//Heparin", np.nan),
                (s, "MEDICATION//Insulin//Administered", np.nan),
            ]
        if s != 5:
            rows.append((s, f"DIAGNOSIS//ICD//10//I{10 + s % 3}9", np.nan))
        if s % 3 == 0:
            rows.append((s, "MEDS_DEATH", np.nan))
    df = pd.DataFrame(rows, columns=["subject_id", "code", "value"])
    df["time"] = pd.Timestamp("2100-01-01")
    df["table"] = "condition"
    df.to_parquet(path)


def test_mimic4_demo_generated(tmp_path: Path) -> None:
    d = tmp_path / "mimic_iv_demo_meds"
    d.mkdir()
    _meds(d / "mimic_iv_demo_meds_events.parquet")
    data = load_dataset("mimic4-demo", root=str(d), n_labs=4, n_meds=4, n_dx=4)
    row = {int(s): i for i, s in enumerate(data.ids)}
    assert not data.mask[row[3], 0] and not data.mask[row[4], 1] and not data.mask[row[5], 2]
    assert data.mask[row[1]].all()
    assert data.inputs["labs"].shape == (20, 4) and (data.inputs["labs"][row[3]] == 0).all()
    assert data.target.sum() == 6
    meds = data.inputs["medications"]
    assert set(np.unique(meds)) <= {0.0, 1.0} and meds[row[1]].sum() == 2


@pytest.mark.skipif(not _has("mimic_iv_demo_meds", ("mimic_iv_demo_meds_events.parquet",)), reason="no MEDS demo")
def test_mimic4_demo_real() -> None:
    d = load_dataset("mimic4-demo")
    assert d.n_samples == 100 and d.target.sum() == 31
    assert d.spec.modality_names == ["labs", "medications", "diagnoses"]


@pytest.mark.filterwarnings("ignore:.*is a Python pickle")
def test_mosi_generated(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    obj = {}
    for s, n in (("train", 12), ("valid", 4), ("test", 6)):
        text = rng.normal(size=(n, 50, 300)).astype(np.float32)
        text[0] = 0  # dropped (all-zero text)
        audio = rng.normal(size=(n, 50, 5)).astype(np.float32)
        audio[1, 0, 0] = -np.inf
        obj[s] = {
            "text": text,
            "audio": audio,
            "vision": rng.normal(size=(n, 50, 20)).astype(np.float32),
            "labels": rng.uniform(-3, 3, size=(n, 1, 1)).astype(np.float32),
            "id": np.array([list(f"{s}{i}") for i in range(n)], dtype=object),
        }
    (tmp_path / "cmu-mosi").mkdir()
    with open(tmp_path / "cmu-mosi" / "mosi_data.pkl", "wb") as f:
        pickle.dump(obj, f)
    d = load_dataset("mosi", root=str(tmp_path))
    assert d.split_sizes() == {"train": 11, "val": 3, "test": 5}
    assert d.spec.modality("text").shape == (50, 300) and d.spec.modality("vision").shape == (50, 20)
    assert set(np.unique(d.target)) <= {0.0, 1.0}
    r = load_dataset("mosi-regression", root=str(tmp_path), modalities=["audio"])
    assert r.spec.task == "regression" and r.spec.modality_names == ["audio"]
    assert np.abs(r.target).max() <= 3


def test_mmimdb_generated(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    d = tmp_path / "mm-imdb"
    d.mkdir()
    n = 100
    with h5py.File(d / "multimodal_imdb.hdf5", "w") as f:
        f["features"] = np.random.rand(n, 300).astype(np.float32)
        f["vgg_features"] = np.random.rand(n, 4096).astype(np.float32)
        g = (np.random.rand(n, 23) > 0.8).astype(np.int32)
        f["genres"] = g
    data = load_dataset("mmimdb", root=str(tmp_path))
    assert data.spec.task == "multilabel" and data.spec.num_outputs == 23
    assert data.split_sizes() == {"train": 59, "val": 10, "test": 31}


def test_mmimdb_missing_message(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="multimodal_imdb.hdf5"):
        load_dataset("mmimdb", root=str(tmp_path))


def test_enrico_split_matches_multibench() -> None:
    try:
        d = find_data_dir("enrico_labels", None, ("design_topics.csv", "enrico_split_seed42_multibench.json"))
    except DainError:
        pytest.skip("enrico_labels not available")
    df = pd.read_csv(d / "design_topics.csv", dtype=str)
    sp, ids, _ = enrico_split(df["screen_id"].tolist(), df["topic"].tolist())
    ref = json.loads((d / "enrico_split_seed42_multibench.json").read_text())
    ids_a = np.asarray(ids)
    for ours, theirs in (("train", "train"), ("val", "valid"), ("test", "test")):
        assert ids_a[sp[ours]].tolist() == ref[theirs]


def test_enrico_generated(tmp_path: Path) -> None:
    Image = pytest.importorskip("PIL.Image")
    d = tmp_path / "enrico"
    (d / "screenshots").mkdir(parents=True)
    (d / "wireframes").mkdir()
    topics = ["bare", "chat", "login", "maps"]
    rows = []
    for i in range(24):
        sid = str(100 + i)
        rows.append((sid, topics[i % 4]))
        Image.fromarray(np.full((96, 54, 3), i * 10, np.uint8)).save(d / "screenshots" / f"{sid}.jpg")
        if i != 5:
            Image.fromarray(np.full((96, 54, 3), 255 - i, np.uint8)).save(d / "wireframes" / f"{sid}.png")
    pd.DataFrame(rows, columns=["screen_id", "topic"]).to_csv(d / "design_topics.csv", index=False)
    data = load_dataset("enrico", root=str(tmp_path), height=16, width=8)
    assert data.spec.modality("screenshot").shape == (3, 16, 8)
    assert data.spec.num_outputs == 4 and data.split_sizes() == {"train": 15, "val": 4, "test": 5}
    row = {s: i for i, s in enumerate(data.ids)}
    assert not data.mask[row["105"], 1] and data.mask[row["105"], 0]


def test_mimic4_generated(tmp_path: Path) -> None:
    d = tmp_path / "mimic4"
    d.mkdir()
    n = 30
    subj = np.arange(1000, 1000 + n)
    pd.DataFrame({"subject_id": subj, "one_year_mortality": np.arange(n) % 2}).to_csv(d / "labels.csv", index=False)
    lab = torch.randn(n, 7)
    lab[2] = -2
    note = torch.randn(n, 5)
    note[2] = -2
    note[3] = -2
    torch.save(lab, d / "lab_x.pt")
    torch.save(note, d / "note_x.pt")
    splits = {
        "training": [str(s) for s in subj[:20]],
        "validation": [str(s) for s in subj[20:25]],
        "testing": [str(s) for s in subj[25:]],
    }
    (d / "PTID_splits_mimic.json").write_text(json.dumps(splits))
    data = load_dataset("mimic4", root=str(tmp_path))
    assert data.spec.modality_names == ["lab", "note"]
    assert data.n_samples == n - 1  # subject 1002 has every modality missing
    row = {s: i for i, s in enumerate(data.ids)}
    assert data.mask[row["1003"]].tolist() == [True, False]
    assert data.split_sizes() == {"train": 19, "val": 5, "test": 5}


def test_mimic4_demo_medication_names() -> None:
    """START and STOP name the drug in third place; UNK is no drug (empty: no feature)."""
    from dain.datasets.mimic4_demo import _med_name

    codes = pd.Series(
        ["MEDICATION//START//Senna", "MEDICATION//STOP//Senna", "MEDICATION//Senna//Administered"]
        + ["MEDICATION//STOP//UNK", "MEDICATION//UNK//Confirmed"]
    )
    assert _med_name(codes).tolist() == ["Senna", "Senna", "Senna", "", ""]


def test_adni_generated(tmp_path: Path) -> None:
    d = tmp_path / "adni"
    (d / "clinical").mkdir(parents=True)
    (d / "image").mkdir()
    n = 24
    ptid = [f"002_S_{i:04d}" for i in range(n)]
    pd.DataFrame({"PTID": ptid, "DIAGNOSIS": np.arange(n) % 3 + 1}).to_csv(d / "label.csv", index=False)
    clin = pd.DataFrame(np.random.rand(n - 2, 6), columns=[f"c{i}" for i in range(6)])
    for leak in ("PTCOGBEG", "PTADDX_2", "PTADBEG"):  # the diagnosis's dates: left out as in Flex-MoE / I2MoE
        clin[leak] = 2000.0
    clin.insert(0, "PTID", ptid[2:])
    clin.loc[0, "c0":] = -2  # subject 2: -2 filled row -> missing
    clin.to_csv(d / "clinical" / "clinical_merged.csv", index=False)
    g = np.random.rand(n + 1, 50).astype(np.float32)
    np.save(d / "image" / "ADNI_G.npy", g[: n + 1])
    lines = [f"{p}_2010-01-01" for p in ptid[1:]] + [f"{ptid[5]}_2012-05-01", f"{ptid[6]}_2001-01-01"]
    np.save(d / "image" / "ADNI_G.npy", np.random.rand(len(lines), 50).astype(np.float32))
    (d / "image" / "ADNI_subj.txt").write_text("\n".join(lines) + "\n")
    (d / "PTID_splits.json").write_text(
        json.dumps({"training": ptid[:16], "validation": ptid[16:20], "testing": ptid[20:]})
    )
    data = load_dataset("adni", root=str(tmp_path))
    assert data.spec.modality_names == ["image", "clinical"]
    assert data.spec.num_outputs == 3 and set(np.unique(data.target)) == {0, 1, 2}
    row = {s: i for i, s in enumerate(data.ids)}
    assert data.mask[row[ptid[1]]].tolist() == [True, False]
    assert data.mask[row[ptid[2]]].tolist() == [True, False]
    assert data.mask[row[ptid[3]]].tolist() == [True, True]
    assert ptid[0] not in row  # no modality at all -> dropped
    assert data.spec.modality("clinical").shape == (6,) and data.info["dropped_all_missing"] == 1


def test_download_plan_only(tmp_path: Path) -> None:
    p = download.plan("physionet2012", tmp_path)
    assert [u.rsplit("/", 1)[1] for u, _ in p] == list(download.PHYSIONET_FILES)
    assert all(path.parent == tmp_path / "physionet2012" for _, path in p)
    assert all(u.startswith("https://physionet.org/files/challenge-2012/1.0.0/") for u, _ in p)
    ((url, path),) = download.plan("fsdd", tmp_path)
    assert "free-spoken-digit-dataset" in url and path.parent == tmp_path / "fsdd"
    with pytest.raises(DainError):
        download.plan("nope", tmp_path)


def test_enrico_screen_without_any_image_is_an_error(tmp_path: Path) -> None:
    """Every ENRICO screen has both images: one with neither means the archives were not fully extracted, which
    is an error naming a screen (not an all-zero, fully masked row scored as data)."""
    pytest.importorskip("PIL")
    from PIL import Image

    from dain.errors import DataValidationError

    d = tmp_path / "enrico"
    (d / "screenshots").mkdir(parents=True)
    (d / "wireframes").mkdir()
    ids = [str(100 + i) for i in range(20)]
    pd.DataFrame({"screen_id": ids, "topic": ["a", "b"] * 10}).to_csv(d / "design_topics.csv", index=False)
    for sid in ids:
        Image.new("RGB", (8, 16)).save(d / "wireframes" / f"{sid}.png")
        Image.new("RGB", (8, 16)).save(d / "screenshots" / f"{sid}.jpg")
    assert load_dataset("enrico", root=str(tmp_path), height=8, width=4).mask.all()
    (d / "screenshots" / "105.jpg").unlink()
    (d / "wireframes" / "105.png").unlink()
    with pytest.raises(DataValidationError, match=r"1 of 20 screens have no screenshot and no wireframe image"):
        load_dataset("enrico", root=str(tmp_path), height=8, width=4)


def test_download_refuses_a_truncated_file_and_a_bad_archive(tmp_path: Path, monkeypatch) -> None:
    """A server that closes early leaves no file that a later call would skip as done; a bad FSDD archive leaves
    no recordings/ folder (nothing that would pass for a finished download)."""
    import io
    import urllib.request

    from dain.datasets import download as D

    class Short(io.BytesIO):
        headers = {"Content-Length": "1000"}

        def __enter__(self):  # noqa: ANN204
            return self

        def __exit__(self, *a) -> None:  # noqa: ANN002
            return None

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=60: Short(b"0123456789"))
    target = tmp_path / "physionet2012" / "Outcomes-a.txt"
    with pytest.raises(DainError, match="stopped at 10 of 1000 bytes"):
        D._fetch("https://example.org/Outcomes-a.txt", target)
    assert not target.exists() and not target.with_name(target.name + ".part").exists()
    (tmp_path / "fsdd").mkdir()
    bad = tmp_path / "fsdd" / "fsdd-master.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DainError, match="cannot be unpacked"):
        D._unpack_fsdd(bad)
    assert not (tmp_path / "fsdd" / "recordings").exists() and not bad.exists()
