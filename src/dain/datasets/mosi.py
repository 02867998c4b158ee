"""CMU-MOSI (``mosi`` / ``mosi-regression``): the MulT aligned pickle ``cmu-mosi/mosi_data.pkl`` (I2MoE/MultiBench).

Safe loading: the MOSI file is a Python pickle by convention, and unpickling an untrusted file can run arbitrary code.
dain warns once when it reads one, and reads ``mosi_data.npz`` instead when it exists; convert once (on a file you
trust) with ``python -m dain.datasets.benchmark_formats mosi-to-npz cmu-mosi/mosi_data.pkl``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, standardize_
from dain.datasets.common import (
    find_benchmark_dir,
    select_modalities,
)
from dain.errors import DataNotFoundError, DataValidationError
from dain.validation import warn

MOSI_HINT = (
    "CMU-MOSI: the MulT aligned pickle mosi_data.pkl (keys train/valid/test, each with "
    "vision/audio/text/labels/id), "
    "as used by MultiBench and I2MoE; get it from the MultiBench data links."
)


MOSI_KEYS = ("vision", "audio", "text", "labels", "id")
_PICKLE_WARNED: set[str] = set()


def _load_pickle(path: Path) -> Any:
    """The MulT pickle (the format's convention), with a one-time warning: unpickling runs code from the file."""
    if str(path) not in _PICKLE_WARNED:
        _PICKLE_WARNED.add(str(path))
        warn(
            f"{path} is a Python pickle: loading it runs any code it contains, so load only a file from a source you "
            f"trust; convert it once to a safe .npz with: python -m dain.datasets.benchmark_formats mosi-to-npz {path}"
        )
    with open(path, "rb") as f:
        try:
            return pickle.load(f)
        except UnicodeDecodeError:
            f.seek(0)
            return pickle.load(f, encoding="latin1")


def _load_mosi_npz(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """A MOSI file converted by :func:`mosi_pickle_to_npz` (arrays ``<split>__<key>``; read without pickles)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as z:
        for k in z.files:
            split, _, key = k.partition("__")
            out.setdefault(split, {})[key] = z[k]
    return out


def mosi_pickle_to_npz(pkl: str | Path, out: str | Path | None = None) -> Path:
    """Convert the MulT MOSI pickle (a file you trust) once to ``.npz`` that dain reads without unpickling."""
    pkl = Path(pkl)
    obj = _load_pickle(pkl)
    arrays = {}
    for split, block in obj.items():
        for k in MOSI_KEYS:
            if k in block:
                a = np.asarray(block[k])
                arrays[f"{split}__{k}"] = a.astype(str) if a.dtype.kind == "O" else a
    dest = Path(out) if out else pkl.with_suffix(".npz")
    np.savez(dest, **arrays)
    return dest


MOSI_FILE = "mosi_data.pkl"


def locate_mosi(root: str | Path | None = None, file: str = MOSI_FILE) -> Path:
    """The folder (``cmu-mosi/`` or ``mosi/``) holding ``file`` converted to ``.npz`` when there is one anywhere
    (read first: no pickle), else ``file`` itself; DataNotFoundError when neither is there."""
    npz = Path(file).with_suffix(".npz").name
    try:  # the converted, pickle-free file first
        return find_benchmark_dir(("cmu-mosi", "mosi"), root, (npz,), MOSI_HINT)
    except DataNotFoundError:
        return find_benchmark_dir(("cmu-mosi", "mosi"), root, (file,), MOSI_HINT)


def _mosi(root: str | None, seed: int, regression: bool, file: str, modalities: list[str] | None) -> MultimodalDataset:
    d = locate_mosi(root, file)
    npz = Path(file).with_suffix(".npz").name
    if (d / npz).exists():  # locate_mosi chose this folder for it
        file, obj = npz, _load_mosi_npz(d / npz)
    else:
        obj = _load_pickle(d / file)
    parts = {"train": "train", "val": "valid", "test": "test"}
    for s in parts.values():
        if s not in obj:
            raise DataValidationError(f"{d / file}: missing split {s!r} (keys: {list(obj)})")
    xs: dict[str, list[np.ndarray]] = {"text": [], "audio": [], "vision": []}
    ys, ids, splits = [], [], {}
    start = 0
    for ours, theirs in parts.items():
        block = obj[theirs]
        missing = [k for k in ("vision", "audio", "text", "labels") if k not in block]
        if missing:
            raise DataValidationError(f"{d / file}: split {theirs!r} lacks key(s) {missing}")
        text = np.asarray(block["text"], dtype=np.float32)
        keep = np.abs(text).reshape(len(text), -1).sum(1) > 0  # drop_entry: all-zero text
        for m in xs:
            a = np.asarray(block[m], dtype=np.float32)[keep]
            a[np.isneginf(a)] = 0.0
            xs[m].append(np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0))
        ys.append(np.asarray(block["labels"], dtype=np.float32).reshape(len(text), -1)[keep, 0])
        if "id" in block:
            ids.extend("".join(np.asarray(i).astype(str).ravel()) for i in np.asarray(block["id"])[keep])
        n = int(keep.sum())
        splits[ours] = np.arange(start, start + n)
        start += n
    y = np.concatenate(ys)
    arrays = {m: np.concatenate(v) for m, v in xs.items()}
    keep_m = select_modalities(["text", "audio", "vision"], modalities, "mosi")
    name = "mosi-regression" if regression else "mosi"
    spec = DatasetSpec(
        name=name,
        task="regression" if regression else "binary",
        num_outputs=1,
        modalities=tuple(ModalitySpec(m, "sequence", tuple(arrays[m].shape[1:])) for m in keep_m),
        class_names=() if regression else ("negative", "positive"),
    )
    data = MultimodalDataset(
        spec=spec,
        inputs={m: arrays[m] for m in keep_m},
        mask=np.ones((len(y), len(keep_m)), dtype=bool),
        target=y if regression else (y > 0).astype(np.float32),
        splits=splits,
        ids=np.asarray(ids) if len(ids) == len(y) else None,
        info={
            "source": "CMU-MOSI (Zadeh et al., 2016), MulT aligned features",
            "where": str(d),
            "protocol": "file's train/valid/test",
            "label": "sentiment in [-3,3]" + ("" if regression else " > 0"),
        },
    )
    standardize_(data)
    return data


@register_dataset(
    DatasetInfo(
        name="mosi",
        task="binary",
        modalities={"text": [50, 300], "audio": [50, 5], "vision": [50, 20]},
        description="CMU-MOSI aligned (MulT pickle), sentiment > 0",
        source="CMU-MOSI (user-supplied)",
        subdir="cmu-mosi",
        required=("mosi_data.pkl",),
        n_samples=2199,
        locate=locate_mosi,
    )
)
def load_mosi(
    root: str | None = None, seed: int = 0, file: str = MOSI_FILE, modalities: list[str] | None = None
) -> MultimodalDataset:
    """CMU-MOSI binary sentiment (label > 0), I2MoE preprocessing."""
    return _mosi(root, seed, False, file, modalities)


@register_dataset(
    DatasetInfo(
        name="mosi-regression",
        task="regression",
        modalities={"text": [50, 300], "audio": [50, 5], "vision": [50, 20]},
        description="CMU-MOSI aligned (MulT pickle), sentiment score regression",
        source="CMU-MOSI (user-supplied)",
        subdir="cmu-mosi",
        required=("mosi_data.pkl",),
        n_samples=2199,
        locate=locate_mosi,
    )
)
def load_mosi_regression(
    root: str | None = None, seed: int = 0, file: str = MOSI_FILE, modalities: list[str] | None = None
) -> MultimodalDataset:
    """CMU-MOSI sentiment regression in [-3, 3]."""
    return _mosi(root, seed, True, file, modalities)
