"""MM-IMDB (``mmimdb``): the Fuel hdf5 ``mm-imdb/multimodal_imdb.hdf5`` (needs h5py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, standardize_
from dain.datasets.common import (
    find_benchmark_dir,
    select_modalities,
)
from dain.errors import DainError, DataValidationError

MMIMDB_BOUNDS = (15552, 18160, 25959)


def locate_mmimdb(root: str | Path | None = None) -> Path:
    """The folder (``mm-imdb/`` or ``mmimdb/``) holding ``multimodal_imdb.hdf5``; else DataNotFoundError."""
    return find_benchmark_dir(
        ("mm-imdb", "mmimdb"),
        root,
        ("multimodal_imdb.hdf5",),
        "MM-IMDB: multimodal_imdb.hdf5 built by johnarevalo/gmu-mmimdb (make_dataset.py); see MultiBench.",
    )


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
        locate=locate_mmimdb,
    )
)
def load_mmimdb(root: str | None = None, seed: int = 0, modalities: list[str] | None = None) -> MultimodalDataset:
    """MM-IMDB from the Fuel hdf5 (features, vgg_features, genres); contiguous standard split."""
    d = locate_mmimdb(root)
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
    keep = select_modalities(["text", "image"], modalities, "mmimdb")
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
