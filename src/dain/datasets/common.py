"""Helpers shared by the loaders of user-supplied benchmark files (mosi, mmimdb, enrico, mimic4, adni).

The I2MoE/Flex-MoE missing-modality convention (missing rows filled with -2, ``observed_idx``) maps to our
mask: a row that is entirely -2 (or absent from a modality's file) has mask False and is zeroed. Samples with
every modality missing are dropped, as upstream. See docs/datasets.md for where each dataset is obtained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dain.data.paths import find_data_dir
from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, standardize_
from dain.errors import ConfigError, DainError, DataNotFoundError, DataValidationError

MISSING_FILL = -2.0


def find_benchmark_dir(subdirs: tuple[str, ...], root: str | Path | None, required: tuple[str, ...], hint: str) -> Path:
    """The first of ``subdirs`` under the data root that holds ``required``; else the first error, listing them."""
    err: DainError | None = None
    for s in subdirs:
        try:
            return find_data_dir(s, root, required, hint=hint)
        except DataNotFoundError as e:
            err = err or e
    assert err is not None
    raise DataNotFoundError(f"{err} Expected files: {', '.join(required)}.")


def select_modalities(names: list[str], modalities: list[str] | None, dataset: str) -> list[str]:
    """``names`` restricted to the requested ``modalities`` (all when None), in ``names`` order."""
    bad = [m for m in (modalities or []) if m not in names]
    keep = [m for m in names if not modalities or m in modalities]
    if bad or not keep:
        raise ConfigError(f"{dataset} has no modality {bad}; modalities: {names}")
    return keep


def observed_rows(x: np.ndarray) -> np.ndarray:
    """Rows not entirely filled with the -2 missing value (nor NaN)."""
    flat = x.reshape(len(x), -1)
    return ~(np.all(flat == MISSING_FILL, 1) | np.all(~np.isfinite(flat), 1))


def read_split_ids(path: Path, fold: int) -> dict[str, list[str]]:
    """Train/val/test id lists of fold ``fold`` from an I2MoE/Flex-MoE ``PTID_splits*.json``."""
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


def rows_for_ids(ids: np.ndarray, split_ids: dict[str, list[str]], path: Path) -> dict[str, np.ndarray]:
    """Row indices (sorted) of each split's ids; ids absent from ``ids`` are skipped."""
    row = {str(s): i for i, s in enumerate(ids)}
    out = {}
    for s, lst in split_ids.items():
        out[s] = np.asarray(sorted(row[v] for v in lst if v in row), dtype=np.int64)
    if sum(len(v) for v in out.values()) == 0:
        raise DataValidationError(f"{path}: none of its ids match the label file")
    return out


def finish_vector_dataset(
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
    dropped = int((~mask.any(1) & in_split).sum())
    remap = -np.ones(len(y), dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    new_splits = {s: np.sort(remap[v][remap[v] >= 0]) for s, v in splits.items()}
    names = list(arrays)
    arrays = {m: arrays[m][keep].astype(np.float32) for m in names}
    mask = mask[keep]
    for j, m in enumerate(names):
        arrays[m][~mask[:, j]] = 0.0
        arrays[m] = np.nan_to_num(arrays[m], nan=0.0, posinf=0.0, neginf=0.0)
    info = {**info, "dropped_all_missing": dropped}
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
