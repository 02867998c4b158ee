"""Loaders for the standard preprocessed files of the five DAIN benchmarks (users bring the files).

* ``mosi`` / ``mosi-regression``: CMU-MOSI MulT aligned pickle ``cmu-mosi/mosi_data.pkl`` (I2MoE/MultiBench).
* ``mmimdb``: MM-IMDB Fuel hdf5 ``mm-imdb/multimodal_imdb.hdf5`` (needs h5py).
* ``enrico``: ENRICO ``enrico/design_topics.csv`` + ``screenshots/{id}.jpg`` + ``wireframes/{id}.png``
  (needs PIL).
* ``mimic4``: I2MoE/Flex-MoE MIMIC-IV ``mimic4/{lab,note,code}_x.pt`` + ``labels.csv`` +
  ``PTID_splits_mimic.json``.
* ``adni``: Flex-MoE ADNI ``adni/label.csv`` + ``PTID_splits.json`` + whichever modality files exist.

Safe loading: the MOSI file is a Python pickle by convention, and unpickling an untrusted file can run arbitrary code.
dain warns once when it reads one, and reads ``mosi_data.npz`` instead when it exists; convert once (on a file you
trust) with ``python -m dain.datasets.benchmark_formats mosi-to-npz cmu-mosi/mosi_data.pkl``. MIMIC-IV ``.pt``
files are read with ``torch.load(weights_only=True)`` (tensors only); one that holds other objects is refused, with the
command that converts it to ``<name>.npy`` (``pt-to-npy``), which is then read instead.

The I2MoE/Flex-MoE missing-modality convention (missing rows filled with -2, ``observed_idx``) maps to our
mask: a row that is entirely -2 (or absent from a modality's file) has mask False and is zeroed. Samples with
every modality missing are dropped, as upstream. See docs/datasets.md for where each dataset is obtained.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dain.data.paths import find_data_dir
from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, standardize_
from dain.errors import ConfigError, DainError, DataNotFoundError, DataValidationError
from dain.validation import warn

MISSING_FILL = -2.0


def _find(subdirs: tuple[str, ...], root: str | None, required: tuple[str, ...], hint: str) -> Path:
    err: DainError | None = None
    for s in subdirs:
        try:
            return find_data_dir(s, root, required, hint=hint)
        except DataNotFoundError as e:
            err = err or e
    assert err is not None
    raise DataNotFoundError(f"{err} Expected files: {', '.join(required)}.")


def _select(names: list[str], modalities: list[str] | None, dataset: str) -> list[str]:
    bad = [m for m in (modalities or []) if m not in names]
    keep = [m for m in names if not modalities or m in modalities]
    if bad or not keep:
        raise ConfigError(f"{dataset} has no modality {bad}; modalities: {names}")
    return keep


def _observed(x: np.ndarray) -> np.ndarray:
    """Rows not entirely filled with the -2 missing value (nor NaN)."""
    flat = x.reshape(len(x), -1)
    return ~(np.all(flat == MISSING_FILL, 1) | np.all(~np.isfinite(flat), 1))


# --------------------------------------------------------------------------------------------------- MOSI
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


def _mosi(root: str | None, seed: int, regression: bool, file: str, modalities: list[str] | None) -> MultimodalDataset:
    npz = Path(file).with_suffix(".npz").name
    try:  # the converted, pickle-free file first
        d = _find(("cmu-mosi", "mosi"), root, (npz,), MOSI_HINT)
        file, obj = npz, _load_mosi_npz(d / npz)
    except DataNotFoundError:
        d = _find(("cmu-mosi", "mosi"), root, (file,), MOSI_HINT)
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
    keep_m = _select(["text", "audio", "vision"], modalities, "mosi")
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
    )
)
def load_mosi(
    root: str | None = None, seed: int = 0, file: str = "mosi_data.pkl", modalities: list[str] | None = None
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
    )
)
def load_mosi_regression(
    root: str | None = None, seed: int = 0, file: str = "mosi_data.pkl", modalities: list[str] | None = None
) -> MultimodalDataset:
    """CMU-MOSI sentiment regression in [-3, 3]."""
    return _mosi(root, seed, True, file, modalities)


# ------------------------------------------------------------------------------------------------- MM-IMDB
MMIMDB_BOUNDS = (15552, 18160, 25959)


@register_dataset(
    DatasetInfo(
        name="mmimdb",
        task="multilabel",
        modalities={"text": [300], "image": [4096]},
        description="MM-IMDB: word2vec plot + VGG16 poster features, 23 genres (multi-label)",
        source="MM-IMDB (Arevalo et al., 2017), user-supplied",
        subdir="mm-imdb",
        required=("multimodal_imdb.hdf5",),
        n_samples=25959,
    )
)
def load_mmimdb(root: str | None = None, seed: int = 0, modalities: list[str] | None = None) -> MultimodalDataset:
    """MM-IMDB from the Fuel hdf5 (features, vgg_features, genres); contiguous standard split."""
    d = _find(
        ("mm-imdb", "mmimdb"),
        root,
        ("multimodal_imdb.hdf5",),
        "MM-IMDB: multimodal_imdb.hdf5 built by johnarevalo/gmu-mmimdb (make_dataset.py); see MultiBench.",
    )
    try:
        import h5py
    except ImportError as e:
        raise DainError("mmimdb needs h5py to read multimodal_imdb.hdf5: pip install h5py") from e
    path = d / "multimodal_imdb.hdf5"
    with h5py.File(path, "r") as f:
        for k in ("features", "vgg_features", "genres"):
            if k not in f:
                raise DataValidationError(f"{path}: dataset {k!r} missing (has {list(f.keys())})")
        text = np.asarray(f["features"], dtype=np.float32)
        image = np.asarray(f["vgg_features"], dtype=np.float32)
        y = np.asarray(f["genres"], dtype=np.float32)
        names = [x.decode() if isinstance(x, bytes) else str(x) for x in f["genres"].attrs.get("target_names", [])]
        ids = np.asarray(f["imdb_ids"]).astype(str) if "imdb_ids" in f else None
    n = len(y)
    if n == MMIMDB_BOUNDS[2]:
        a, b = MMIMDB_BOUNDS[:2]
        protocol = "standard contiguous split 15552/2608/7799"
    else:
        a, b = int(n * MMIMDB_BOUNDS[0] / MMIMDB_BOUNDS[2]), int(n * MMIMDB_BOUNDS[1] / MMIMDB_BOUNDS[2])
        protocol = f"contiguous split with the standard proportions (N={n} != 25959)"
    splits = {"train": np.arange(0, a), "val": np.arange(a, b), "test": np.arange(b, n)}
    arrays = {"text": text, "image": image}
    keep = _select(["text", "image"], modalities, "mmimdb")
    spec = DatasetSpec(
        name="mmimdb",
        task="multilabel",
        num_outputs=y.shape[1],
        modalities=tuple(ModalitySpec(m, "vector", (arrays[m].shape[1],)) for m in keep),
        class_names=tuple(names) if len(names) == y.shape[1] else tuple(f"genre{i}" for i in range(y.shape[1])),
    )
    data = MultimodalDataset(
        spec=spec,
        inputs={m: arrays[m] for m in keep},
        mask=np.ones((n, len(keep)), dtype=bool),
        target=y,
        splits=splits,
        ids=ids,
        info={"source": "MM-IMDB (Arevalo et al., 2017)", "where": str(d), "protocol": protocol},
    )
    standardize_(data)
    return data


# --------------------------------------------------------------------------------------------------- ENRICO
ENRICO_DROP = ("50105", "50109")


def enrico_split(screen_ids: list[str], topics: list[str]) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """MultiBench/I2MoE split: drop corrupt screens, shuffle with random.Random(42), cut at 65% / 80%.

    Returns (row-index splits into the kept rows, kept ids, kept topics).
    """
    rows = [(s, t) for s, t in zip(screen_ids, topics) if s not in ENRICO_DROP]
    n = len(rows)
    order = list(range(n))
    random.Random(42).shuffle(order)
    a, b = int(0.65 * n), int(0.80 * n)
    splits = {"train": np.asarray(order[:a]), "val": np.asarray(order[a:b]), "test": np.asarray(order[b:])}
    return splits, [r[0] for r in rows], [r[1] for r in rows]


def _read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError as e:
        raise DainError("enrico needs Pillow to read screenshots/wireframes: pip install pillow") from e
    with Image.open(path) as im:
        im = im.convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
        return np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0


@register_dataset(
    DatasetInfo(
        name="enrico",
        task="multiclass",
        modalities={"screenshot": [3, 64, 32], "wireframe": [3, 64, 32]},
        description="ENRICO Android UIs: screenshot + wireframe images, 20 design topics",
        source="ENRICO (Leiva et al., 2020), MIT, user-supplied images",
        subdir="enrico",
        required=("design_topics.csv",),
        n_samples=1458,
    )
)
def load_enrico(
    root: str | None = None,
    seed: int = 0,
    height: int = 64,
    width: int = 32,
    modalities: list[str] | None = None,
) -> MultimodalDataset:
    """ENRICO with images resized to ``height`` x ``width``; a missing image file masks that modality."""
    d = _find(
        ("enrico",),
        root,
        ("design_topics.csv",),
        "ENRICO: design_topics.csv plus screenshots/{id}.jpg and wireframes/{id}.png from github "
        "luileito/enrico "
        "(image archives linked from its README).",
    )
    df = pd.read_csv(d / "design_topics.csv", dtype=str)
    if not {"screen_id", "topic"} <= set(df.columns):
        raise DataValidationError(f"{d / 'design_topics.csv'}: expected columns screen_id,topic")
    splits, ids, topics = enrico_split(df["screen_id"].tolist(), df["topic"].tolist())
    classes = sorted(set(df["topic"]))
    y = np.asarray([classes.index(t) for t in topics], dtype=np.int64)
    keep = _select(["screenshot", "wireframe"], modalities, "enrico")
    where = {"screenshot": ("screenshots", ".jpg"), "wireframe": ("wireframes", ".png")}
    for m in keep:
        if not (d / where[m][0]).is_dir():
            raise DataNotFoundError(
                f"enrico: folder {d / where[m][0]} not found (expected {where[m][0]}/<id>{where[m][1]})"
            )
    arrays = {m: np.zeros((len(ids), 3, height, width), dtype=np.float32) for m in keep}
    mask = np.zeros((len(ids), len(keep)), dtype=bool)
    for j, m in enumerate(keep):
        folder, ext = where[m]
        for i, sid in enumerate(ids):
            p = d / folder / f"{sid}{ext}"
            if p.exists():
                arrays[m][i] = _read_image(p, (height, width))
                mask[i, j] = True
    spec = DatasetSpec(
        name="enrico",
        task="multiclass",
        num_outputs=len(classes),
        modalities=tuple(ModalitySpec(m, "image", (3, height, width)) for m in keep),
        class_names=tuple(classes),
    )
    data = MultimodalDataset(
        spec=spec,
        inputs=arrays,
        mask=mask,
        target=y,
        splits=splits,
        ids=np.asarray(ids),
        info={
            "source": "ENRICO (Leiva et al., 2020), MIT",
            "where": str(d),
            "protocol": "MultiBench/I2MoE: drop 50105/50109, random.Random(42) shuffle, 65/15/20",
            "missing_images": {m: int((~mask[:, j]).sum()) for j, m in enumerate(keep)},
        },
    )
    standardize_(data)
    return data


# --------------------------------------------------------------------------------------------------- MIMIC-IV
def _split_ids(path: Path, fold: int) -> dict[str, list[str]]:
    obj = json.loads(path.read_text())
    if isinstance(obj, list):
        obj = obj[fold]
    elif isinstance(obj, dict) and not ({"training", "train"} & set(obj)):
        keys = sorted(obj)
        obj = obj[keys[fold]] if keys else {}
    out = {}
    for ours, cands in (
        ("train", ("training", "train")),
        ("val", ("validation", "valid", "val")),
        ("test", ("testing", "test")),
    ):
        k = next((c for c in cands if c in obj), None)
        if k is None:
            raise DataValidationError(f"{path}: no {cands[0]!r} list (keys: {list(obj)})")
        out[ours] = [str(v) for v in obj[k]]
    return out


def _rows_for(ids: np.ndarray, split_ids: dict[str, list[str]], path: Path) -> dict[str, np.ndarray]:
    row = {str(s): i for i, s in enumerate(ids)}
    out = {}
    for s, lst in split_ids.items():
        out[s] = np.asarray(sorted(row[v] for v in lst if v in row), dtype=np.int64)
    if sum(len(v) for v in out.values()) == 0:
        raise DataValidationError(f"{path}: none of its ids match the label file")
    return out


def _finish(
    name: str,
    arrays: dict[str, np.ndarray],
    mask: np.ndarray,
    y: np.ndarray,
    ids: np.ndarray,
    splits: dict[str, np.ndarray],
    task: str,
    classes: tuple[str, ...],
    info: dict[str, Any],
) -> MultimodalDataset:
    """Drop samples with every modality missing and rows outside the splits; zero missing rows; z-score."""
    in_split = np.zeros(len(y), dtype=bool)
    for v in splits.values():
        in_split[v] = True
    keep = np.flatnonzero(mask.any(1) & in_split)
    remap = -np.ones(len(y), dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    new_splits = {s: np.sort(remap[v][remap[v] >= 0]) for s, v in splits.items()}
    names = list(arrays)
    arrays = {m: arrays[m][keep].astype(np.float32) for m in names}
    mask = mask[keep]
    for j, m in enumerate(names):
        arrays[m][~mask[:, j]] = 0.0
        arrays[m] = np.nan_to_num(arrays[m], nan=0.0, posinf=0.0, neginf=0.0)
    info = {**info, "dropped_all_missing": int((~mask.any(1)).sum() if len(mask) else 0)}
    spec = DatasetSpec(
        name=name,
        task=task,
        num_outputs=len(classes) if task == "multiclass" else 1,
        modalities=tuple(ModalitySpec(m, "vector", (arrays[m].shape[1],)) for m in names),
        class_names=classes,
    )
    data = MultimodalDataset(
        spec=spec, inputs=arrays, mask=mask, target=y[keep], splits=new_splits, ids=ids[keep], info=info
    )
    standardize_(data)
    return data


@register_dataset(
    DatasetInfo(
        name="mimic4",
        task="binary",
        modalities={"lab": [], "note": [], "code": []},
        description="MIMIC-IV (I2MoE/Flex-MoE tensors): lab / note / code features, one-year mortality",
        source="MIMIC-IV (PhysioNet credentialed), user-supplied",
        subdir="mimic4",
        required=("labels.csv", "PTID_splits_mimic.json"),
    )
)
def load_mimic4(
    root: str | None = None,
    seed: int = 0,
    label: str = "one_year_mortality",
    modalities: list[str] | None = None,
) -> MultimodalDataset:
    """MIMIC-IV from ``{lab,note,code}_x.pt`` (missing rows = -2), labels.csv, PTID_splits_mimic.json."""
    from dain.datasets.folder import load_array

    d = _find(
        ("mimic4", "mimic4 Dataset", "mimic"),
        root,
        ("labels.csv", "PTID_splits_mimic.json"),
        "MIMIC-IV as preprocessed by I2MoE / Flex-MoE (lab_x.pt, note_x.pt, code_x.pt, labels.csv indexed by "
        "subject_id, PTID_splits_mimic.json); needs PhysioNet credentialed access to MIMIC-IV.",
    )
    labels = pd.read_csv(d / "labels.csv")
    if "subject_id" in labels.columns:
        labels = labels.set_index("subject_id")
    else:
        labels = labels.set_index(labels.columns[0])
    if label not in labels.columns:
        raise DataValidationError(f"{d / 'labels.csv'}: no column {label!r} (has {list(labels.columns)})")
    ids = labels.index.astype(str).to_numpy()
    y = labels[label].to_numpy(np.float32)
    present = [m for m in ("lab", "note", "code") if (d / f"{m}_x.pt").exists() or (d / f"{m}_x.npy").exists()]
    if not present:
        raise DataNotFoundError(f"mimic4: none of lab_x.pt, note_x.pt, code_x.pt (or .npy) found in {d}")
    keep = _select(present, modalities, "mimic4")
    arrays, masks = {}, []
    for m in keep:
        path = d / f"{m}_x.npy" if (d / f"{m}_x.npy").exists() else d / f"{m}_x.pt"
        x = load_array(path) if path.suffix == ".npy" else _load_tensor(path)
        x = np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)
        x = x.reshape(len(x), -1)
        if len(x) != len(ids):
            raise DataValidationError(f"{path}: {len(x)} rows but labels.csv has {len(ids)}")
        arrays[m] = x
        masks.append(_observed(x))
    splits = _rows_for(ids, _split_ids(d / "PTID_splits_mimic.json", 0), d / "PTID_splits_mimic.json")
    return _finish(
        "mimic4",
        arrays,
        np.stack(masks, 1),
        y,
        ids,
        splits,
        "binary",
        ("alive", "died"),
        {
            "source": "MIMIC-IV (Johnson et al.), I2MoE/Flex-MoE preprocessing",
            "where": str(d),
            "label": label,
            "protocol": "PTID_splits_mimic.json",
        },
    )


def _load_tensor(path: Path) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary pickled objects."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError (not weights-only), RuntimeError/EOFError (damaged)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataValidationError(
            f"{path}: cannot be loaded with torch.load(weights_only=True) ({first}); dain reads only tensors from "
            "a .pt file, because unpickling other objects can run code. If the file comes from a source you trust, "
            f"convert it once: python -m dain.datasets.benchmark_formats pt-to-npy {path}"
        ) from e


def pt_to_npy(pt: str | Path, out: str | Path | None = None) -> Path:
    """Convert a ``.pt`` file (one you trust: this unpickles it) once to ``.npy``, which dain reads safely."""
    import torch

    pt = Path(pt)
    x = torch.load(pt, map_location="cpu", weights_only=False)
    dest = Path(out) if out else pt.with_suffix(".npy")
    np.save(dest, np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32))
    return dest


# ------------------------------------------------------------------------------------------------------- ADNI
def _read_table(path: Path, id_col: str = "PTID") -> pd.DataFrame:
    df = pd.read_csv(path)
    df = df.set_index(id_col) if id_col in df.columns else df.set_index(df.columns[0])
    df.index = df.index.astype(str)
    df = df[~df.index.duplicated(keep="last")]
    return df.select_dtypes(include=[np.number])


@register_dataset(
    DatasetInfo(
        name="adni",
        task="multiclass",
        modalities={"image": [], "genomic": [], "clinical": [], "biospecimen": []},
        description="ADNI (Flex-MoE layout): image / genomic / clinical / biospecimen, diagnosis CN/MCI/AD",
        source="ADNI (ida.loni.usc.edu, data use agreement), user-supplied",
        subdir="adni",
        required=("label.csv", "PTID_splits.json"),
    )
)
def load_adni(
    root: str | None = None,
    seed: int = 0,
    initial_filling: str = "none",
    fold: int = 0,
    modalities: list[str] | None = None,
) -> MultimodalDataset:
    """ADNI with whichever of image/genomic/clinical/biospecimen exist (IGCB order); subjects lacking one are
    masked. ``initial_filling="mean"`` reads the ``*_merged_mean.csv`` tables."""
    d = _find(
        ("adni",),
        root,
        ("label.csv", "PTID_splits.json"),
        "ADNI in the Flex-MoE layout (label.csv with PTID,DIAGNOSIS; PTID_splits.json; image/ADNI_G.npy + "
        "ADNI_subj.txt; genomic/genomic_merged.h5ad; clinical/clinical_merged.csv; biospecimen/"
        "biospecimen_merged.csv); needs an ADNI data use agreement.",
    )
    if initial_filling not in ("none", "mean"):
        raise ConfigError("adni: initial_filling must be 'none' or 'mean'")
    lab = pd.read_csv(d / "label.csv")
    lab = lab.set_index("PTID") if "PTID" in lab.columns else lab.set_index(lab.columns[0])
    if "DIAGNOSIS" not in lab.columns:
        raise DataValidationError(f"{d / 'label.csv'}: no DIAGNOSIS column")
    lab.index = lab.index.astype(str)
    ids = lab.index.to_numpy()
    y = lab["DIAGNOSIS"].to_numpy(np.int64) - 1
    if y.min(initial=0) < 0 or y.max(initial=0) > 2:
        raise DataValidationError(f"{d / 'label.csv'}: DIAGNOSIS must be in 1..3")
    row = {s: i for i, s in enumerate(ids)}
    arrays: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}

    def put(name: str, table_ids: list[str], values: np.ndarray) -> None:
        x = np.full((len(ids), values.shape[1]), MISSING_FILL, dtype=np.float32)
        sel = [(row[s], k) for k, s in enumerate(table_ids) if s in row]
        if sel:
            r, k = map(np.asarray, zip(*sel))
            x[r] = values[k]
        arrays[name] = x
        masks[name] = _observed(x)

    img, subj = d / "image" / "ADNI_G.npy", d / "image" / "ADNI_subj.txt"
    if img.exists() and subj.exists():
        g = np.load(img, mmap_mode="r")
        lines = [ln.strip() for ln in subj.read_text().splitlines() if ln.strip()]
        if len(lines) != len(g):
            raise DataValidationError(f"{subj}: {len(lines)} lines but {img.name} has {len(g)} rows")
        latest: dict[str, tuple[str, int]] = {}
        for k, ln in enumerate(lines):
            ptid, _, date = ln.rpartition("_")
            ptid = ptid or ln
            if ptid not in latest or date >= latest[ptid][0]:
                latest[ptid] = (date, k)
        tids = list(latest)
        put(
            "image",
            tids,
            np.asarray(g[[latest[t][1] for t in tids]], dtype=np.float32).reshape(len(tids), -1),
        )
    h5ad = d / "genomic" / "genomic_merged.h5ad"
    if h5ad.exists():
        try:
            import anndata  # type: ignore[import-not-found]

            ad = anndata.read_h5ad(h5ad)
            xg = ad.X.toarray() if hasattr(ad.X, "toarray") else np.asarray(ad.X)
            put("genomic", [str(s) for s in ad.obs_names], np.asarray(xg, dtype=np.float32))
        except ImportError:
            skipped["genomic"] = "genomic_merged.h5ad needs the anndata package; genomic modality skipped"
    suffix = "_mean" if initial_filling == "mean" else ""
    for name in ("clinical", "biospecimen"):
        p = d / name / f"{name}_merged{suffix}.csv"
        if p.exists():
            t = _read_table(p)
            put(name, list(t.index), t.to_numpy(np.float32))
    present = [m for m in ("image", "genomic", "clinical", "biospecimen") if m in arrays]
    if not present:
        raise DataNotFoundError(
            f"adni: no modality files in {d} (expected image/ADNI_G.npy + image/ADNI_subj.txt, "
            f"clinical/clinical_merged{suffix}.csv, biospecimen/biospecimen_merged{suffix}.csv or "
            "genomic/genomic_merged.h5ad)" + (f"; {skipped['genomic']}" if skipped else "")
        )
    keep = _select(present, modalities, "adni")
    splits = _rows_for(ids, _split_ids(d / "PTID_splits.json", fold), d / "PTID_splits.json")
    return _finish(
        "adni",
        {m: arrays[m] for m in keep},
        np.stack([masks[m] for m in keep], 1),
        y,
        ids,
        splits,
        "multiclass",
        ("CN", "MCI", "AD"),
        {
            "source": "ADNI (adni.loni.usc.edu), Flex-MoE preprocessing",
            "where": str(d),
            "protocol": f"PTID_splits.json (fold {fold})",
            "initial_filling": initial_filling,
            "skipped": skipped,
        },
    )


def _main(argv: list[str] | None = None) -> int:
    """One-time conversions of pickle-based benchmark files (of a trusted source) to formats read without pickles."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m dain.datasets.benchmark_formats", description=_main.__doc__)
    p.add_argument("action", choices=["mosi-to-npz", "pt-to-npy"])
    p.add_argument("path", help="the .pkl / .pt file")
    p.add_argument("--out", help="destination (default: beside it, .npz / .npy)")
    args = p.parse_args(argv)
    dest = (mosi_pickle_to_npz if args.action == "mosi-to-npz" else pt_to_npy)(args.path, args.out)
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
