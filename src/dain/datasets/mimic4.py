"""MIMIC-IV (``mimic4``): the I2MoE/Flex-MoE tensors ``mimic4/{lab,note,code}_x.pt`` + ``labels.csv`` +
``PTID_splits_mimic.json``.

Safe loading: ``.pt`` files are read with ``torch.load(weights_only=True)`` (tensors only); one that holds other
objects is refused, with the command that converts it to ``<name>.npy`` (``python -m dain.datasets.benchmark_formats
pt-to-npy``), which is then read instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import MultimodalDataset
from dain.datasets.common import (
    find_benchmark_dir,
    finish_vector_dataset,
    observed_rows,
    read_split_ids,
    rows_for_ids,
    select_modalities,
)
from dain.errors import DataNotFoundError, DataValidationError


def _present_modalities(d: Path) -> list[str]:
    present = [m for m in ("lab", "note", "code") if (d / f"{m}_x.pt").exists() or (d / f"{m}_x.npy").exists()]
    if not present:
        raise DataNotFoundError(f"mimic4: none of lab_x.pt, note_x.pt, code_x.pt (or .npy) found in {d}")
    return present


def locate_mimic4(root: str | Path | None = None) -> Path:
    """The folder (``mimic4/``, ``mimic4 Dataset/`` or ``mimic/``) with labels.csv, PTID_splits_mimic.json and at
    least one of {lab,note,code}_x.pt (or .npy); else DataNotFoundError."""
    d = find_benchmark_dir(
        ("mimic4", "mimic4 Dataset", "mimic"),
        root,
        ("labels.csv", "PTID_splits_mimic.json"),
        "MIMIC-IV as preprocessed by I2MoE / Flex-MoE (lab_x.pt, note_x.pt, code_x.pt, labels.csv indexed by "
        "subject_id, PTID_splits_mimic.json); needs PhysioNet credentialed access to MIMIC-IV.",
    )
    _present_modalities(d)
    return d


@register_dataset(
    DatasetInfo(
        name="mimic4",
        task="binary",
        modalities={"lab": [], "note": [], "code": []},
        description="MIMIC-IV (I2MoE/Flex-MoE tensors): lab / note / code features, one-year mortality",
        source="MIMIC-IV (PhysioNet credentialed), user-supplied",
        subdir="mimic4",
        required=("labels.csv", "PTID_splits_mimic.json"),
        locate=locate_mimic4,
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

    d = locate_mimic4(root)
    labels = pd.read_csv(d / "labels.csv")
    if "subject_id" in labels.columns:
        labels = labels.set_index("subject_id")
    else:
        labels = labels.set_index(labels.columns[0])
    if label not in labels.columns:
        raise DataValidationError(f"{d / 'labels.csv'}: no column {label!r} (has {list(labels.columns)})")
    ids = labels.index.astype(str).to_numpy()
    y = labels[label].to_numpy(np.float32)
    present = _present_modalities(d)
    keep = select_modalities(present, modalities, "mimic4")
    arrays, masks = {}, []
    for m in keep:
        path = d / f"{m}_x.npy" if (d / f"{m}_x.npy").exists() else d / f"{m}_x.pt"
        x = load_array(path) if path.suffix == ".npy" else _load_tensor(path)
        x = np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)
        x = x.reshape(len(x), -1)
        if len(x) != len(ids):
            raise DataValidationError(f"{path}: {len(x)} rows but labels.csv has {len(ids)}")
        arrays[m] = x
        masks.append(observed_rows(x))
    splits = rows_for_ids(ids, read_split_ids(d / "PTID_splits_mimic.json", 0), d / "PTID_splits_mimic.json")
    return finish_vector_dataset(
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
