"""``dain datasets`` (dataset_rows) says found exactly when the loader finds its files: it asks the loader's own
``DatasetInfo.locate``. Fake folder trees under tmp_path; the real data root when present."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

from dain.data.listing import dataset_rows
from dain.data.registry_api import dataset_info, load_dataset
from dain.errors import DataNotFoundError
from dain.registry import DATASETS

FILE_DATASETS = [n for n in DATASETS.names() if dataset_info(n).subdir is not None]


def _rows(root: Path) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in dataset_rows(root)}


def _touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _missing(root: Path, name: str, why: str) -> None:
    """The listing says ``name`` is missing, giving ``why``, and its loader refuses for the same reason."""
    row = _rows(root)[name]
    assert not row["found"] and why in row["where"]
    with pytest.raises(DataNotFoundError, match=why):
        load_dataset(name, root=str(root))


def test_physionet2012_is_found_only_with_what_the_default_load_reads(tmp_path: Path) -> None:
    d = tmp_path / "physionet2012"
    _touch(d / "Outcomes-a.txt")
    row = _rows(tmp_path)["physionet2012"]
    assert not row["found"]  # the default load reads sets a and b: Outcomes-b.txt is absent
    with pytest.raises(DataNotFoundError):
        load_dataset("physionet2012", root=str(tmp_path))
    _touch(d / "Outcomes-b.txt")
    row = _rows(tmp_path)["physionet2012"]
    assert not row["found"] and "set 'a' not found" in row["where"]  # outcomes without the stays
    (d / "set-a").mkdir()
    row = _rows(tmp_path)["physionet2012"]
    assert not row["found"] and "set 'b' not found" in row["where"]
    _touch(d / "set-b.tar.gz")
    row = _rows(tmp_path)["physionet2012"]
    assert row["found"] and row["where"] == str(d)


def test_physionet2012_raindrop_locate_needs_set_c_and_the_splits(tmp_path: Path) -> None:
    from dain.datasets.physionet2012 import locate_physionet2012

    d = tmp_path / "physionet2012"
    for s in "abc":
        _touch(d / f"Outcomes-{s}.txt")
        (d / f"set-{s}").mkdir()
    with pytest.raises(DataNotFoundError, match="splits_raindrop.json"):
        locate_physionet2012(tmp_path, ("a", "b", "c"), "raindrop")
    with pytest.raises(DataNotFoundError, match="splits_raindrop.json"):  # before any stay is parsed
        load_dataset("physionet2012", root=str(tmp_path), protocol="raindrop")
    _touch(d / "splits_raindrop.json", '{"splits": []}')
    assert locate_physionet2012(tmp_path, ("a", "b", "c"), "raindrop") == d


def test_avdigits_without_sklearn_digits_is_missing(tmp_path: Path) -> None:
    _touch(tmp_path / "fsdd" / "recordings" / "0_george_0.wav")
    _missing(tmp_path, "avdigits", "sklearn_digits")
    _touch(tmp_path / "sklearn_digits" / "digits.csv.gz")
    row = _rows(tmp_path)["avdigits"]
    assert row["found"] and row["where"] == str(tmp_path / "fsdd")


def test_avdigits_without_wav_clips_is_missing(tmp_path: Path) -> None:
    (tmp_path / "fsdd" / "recordings").mkdir(parents=True)
    _touch(tmp_path / "sklearn_digits" / "digits.csv.gz")
    row = _rows(tmp_path)["avdigits"]
    assert not row["found"] and "no .wav files" in row["where"]


def test_mmimdb_found_in_the_alternative_folder_the_loader_accepts(tmp_path: Path) -> None:
    _touch(tmp_path / "mmimdb" / "multimodal_imdb.hdf5")  # the loader takes mm-imdb/ or mmimdb/
    row = _rows(tmp_path)["mmimdb"]
    assert row["found"] and row["where"] == str(tmp_path / "mmimdb")


@pytest.mark.parametrize(("folder", "file"), [("mosi", "mosi_data.pkl"), ("cmu-mosi", "mosi_data.npz")])
def test_mosi_found_in_an_accepted_folder_or_as_the_converted_npz(tmp_path: Path, folder: str, file: str) -> None:
    _touch(tmp_path / folder / file)
    rows = _rows(tmp_path)
    for name in ("mosi", "mosi-regression"):
        assert rows[name]["found"] and rows[name]["where"] == str(tmp_path / folder)


def test_mimic4_found_in_an_alternative_folder_only_with_a_modality_file(tmp_path: Path) -> None:
    d = tmp_path / "mimic4 Dataset"
    _touch(d / "labels.csv", "subject_id,one_year_mortality\n1,0\n")
    _touch(d / "PTID_splits_mimic.json", "{}")
    _missing(tmp_path, "mimic4", "none of lab_x.pt")
    _touch(d / "lab_x.npy")
    row = _rows(tmp_path)["mimic4"]
    assert row["found"] and row["where"] == str(d)


def test_enrico_without_image_folders_is_missing(tmp_path: Path) -> None:
    d = tmp_path / "enrico"
    _touch(d / "design_topics.csv", "screen_id,topic\n1,bare\n")
    (d / "screenshots").mkdir()
    _missing(tmp_path, "enrico", "wireframes")
    (d / "wireframes").mkdir()
    assert _rows(tmp_path)["enrico"]["found"]


def test_adni_without_modality_files_is_missing(tmp_path: Path) -> None:
    d = tmp_path / "adni"
    _touch(d / "label.csv", "PTID,DIAGNOSIS\ns1,1\n")
    _touch(d / "PTID_splits.json", "{}")
    _missing(tmp_path, "adni", "no modality files")
    _touch(d / "clinical" / "clinical_merged.csv", "PTID,x\ns1,1\n")
    assert _rows(tmp_path)["adni"]["found"]


class _Located(Exception):
    pass


@pytest.mark.parametrize("name", FILE_DATASETS)
def test_every_file_dataset_loader_finds_its_files_with_its_info_locate(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loader calls the very function the listing calls (patched here to raise), and the two agree on the
    default options they share."""
    info = dataset_info(name)
    assert info.locate is not None, f"{name} reads files but has no DatasetInfo.locate"

    def located(*args: Any, **kwargs: Any) -> Path:
        raise _Located(name)

    monkeypatch.setattr(sys.modules[info.locate.__module__], info.locate.__name__, located)
    with pytest.raises(_Located):
        load_dataset(name, root=str(tmp_path))
    loader = inspect.signature(DATASETS.get(name)).parameters
    for p in list(inspect.signature(info.locate).parameters.values())[1:]:
        assert p.name in loader and loader[p.name].default == p.default, (name, p.name)


@pytest.mark.parametrize("name", FILE_DATASETS)
def test_listing_agrees_with_locate_on_the_real_data_root(name: str, data_root: Path) -> None:
    info = dataset_info(name)
    assert info.locate is not None
    row = _rows(data_root)[name]
    try:
        where, ok = str(info.locate(data_root)), True
    except DataNotFoundError as e:
        where, ok = str(e), False
    assert row["found"] == ok and row["where"] == where
