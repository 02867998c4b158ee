"""Loading user files never unpickles arbitrary objects silently: MIMIC-IV .pt files are read weights-only, the MOSI
pickle (the format's convention) warns once and has a pickle-free .npz path, checkpoints load weights-only."""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dain.data.registry_api import load_dataset
from dain.datasets.benchmark_formats import _main, mosi_pickle_to_npz
from dain.errors import DainWarning, DataValidationError


class _Exploit:
    """Unpickling this object creates a folder: the stand-in for arbitrary code run by a malicious file."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def _mimic_folder(tmp_path: Path, lab: object) -> Path:
    d = tmp_path / "mimic4"
    d.mkdir()
    n = 12
    subj = np.arange(1000, 1000 + n)
    pd.DataFrame({"subject_id": subj, "one_year_mortality": np.arange(n) % 2}).to_csv(d / "labels.csv", index=False)
    torch.save(lab, d / "lab_x.pt")
    ids = [str(s) for s in subj]
    (d / "PTID_splits_mimic.json").write_text(
        json.dumps({"training": ids[:8], "validation": ids[8:10], "testing": ids[10:]})
    )
    return d


def test_mimic4_pt_is_loaded_weights_only(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    d = _mimic_folder(tmp_path, {"x": torch.randn(12, 3), "evil": _Exploit(str(pwned))})
    with pytest.raises(DataValidationError, match=r"lab_x\.pt: cannot be loaded with torch.load\(weights_only=True\)"):
        load_dataset("mimic4", root=str(tmp_path))
    assert not pwned.exists(), "the file's code ran"
    torch.load(d / "lab_x.pt", weights_only=False)  # what the old loader did: the file's code runs
    assert pwned.exists()


def test_mimic4_trusted_pt_converts_to_npy(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    d = _mimic_folder(tmp_path, x)  # a numpy array: not loadable weights-only
    with pytest.raises(DataValidationError, match="pt-to-npy"):
        load_dataset("mimic4", root=str(tmp_path))
    assert _main(["pt-to-npy", str(d / "lab_x.pt")]) == 0 and (d / "lab_x.npy").exists()
    data = load_dataset("mimic4", root=str(tmp_path))  # the .npy is read in place of the .pt
    assert data.spec.modality("lab").shape == (3,) and data.n_samples == 12


def _mosi_pickle(path: Path) -> None:
    rng = np.random.default_rng(0)
    obj = {}
    for s, n in (("train", 8), ("valid", 3), ("test", 4)):
        obj[s] = {
            "text": rng.normal(size=(n, 50, 300)).astype(np.float32),
            "audio": rng.normal(size=(n, 50, 5)).astype(np.float32),
            "vision": rng.normal(size=(n, 50, 20)).astype(np.float32),
            "labels": rng.uniform(-3, 3, size=(n, 1, 1)).astype(np.float32),
            "id": np.array([list(f"{s}{i}") for i in range(n)], dtype=object),
        }
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def test_mosi_pickle_warns_once_and_npz_loads_without_pickle(tmp_path: Path) -> None:
    pkl = tmp_path / "cmu-mosi" / "mosi_data.pkl"
    _mosi_pickle(pkl)
    with pytest.warns(DainWarning, match=r"mosi_data\.pkl is a Python pickle.*mosi-to-npz"):
        a = load_dataset("mosi-regression", root=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DainWarning)  # once per file
        load_dataset("mosi-regression", root=str(tmp_path))
    mosi_pickle_to_npz(pkl)
    pkl.unlink()  # the converted file alone is enough
    with warnings.catch_warnings():
        warnings.simplefilter("error", DainWarning)
        b = load_dataset("mosi-regression", root=str(tmp_path))
    assert a.split_sizes() == b.split_sizes()
    for m in ("text", "audio", "vision"):
        np.testing.assert_array_equal(a.inputs[m], b.inputs[m])
    np.testing.assert_array_equal(a.target, b.target)
    assert list(a.ids) == list(b.ids)
