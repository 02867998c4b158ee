"""ENRICO (``enrico``): ``enrico/design_topics.csv`` + ``screenshots/{id}.jpg`` + ``wireframes/{id}.png``
(needs PIL)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd

from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, standardize_
from dain.datasets.common import (
    find_benchmark_dir,
    select_modalities,
)
from dain.errors import DainError, DataNotFoundError, DataValidationError

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


IMAGE_FOLDERS = {"screenshot": ("screenshots", ".jpg"), "wireframe": ("wireframes", ".png")}


def locate_enrico(root: str | Path | None = None, modalities: list[str] | None = None) -> Path:
    """The ``enrico/`` folder with design_topics.csv and the image folder of each modality loaded (all by default);
    else DataNotFoundError."""
    d = find_benchmark_dir(
        ("enrico",),
        root,
        ("design_topics.csv",),
        "ENRICO: design_topics.csv plus screenshots/{id}.jpg and wireframes/{id}.png from github "
        "luileito/enrico "
        "(image archives linked from its README).",
    )
    for m, (folder, ext) in IMAGE_FOLDERS.items():
        if (not modalities or m in modalities) and not (d / folder).is_dir():
            raise DataNotFoundError(f"enrico: folder {d / folder} not found (expected {folder}/<id>{ext})")
    return d


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
        locate=locate_enrico,
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
    d = locate_enrico(root, modalities)
    df = pd.read_csv(d / "design_topics.csv", dtype=str)
    if not {"screen_id", "topic"} <= set(df.columns):
        raise DataValidationError(f"{d / 'design_topics.csv'}: expected columns screen_id,topic")
    splits, ids, topics = enrico_split(df["screen_id"].tolist(), df["topic"].tolist())
    classes = sorted(set(df["topic"]))
    y = np.asarray([classes.index(t) for t in topics], dtype=np.int64)
    keep = select_modalities(["screenshot", "wireframe"], modalities, "enrico")
    where = IMAGE_FOLDERS
    arrays = {m: np.zeros((len(ids), 3, height, width), dtype=np.float32) for m in keep}
    mask = np.zeros((len(ids), len(keep)), dtype=bool)
    for j, m in enumerate(keep):
        folder, ext = where[m]
        for i, sid in enumerate(ids):
            p = d / folder / f"{sid}{ext}"
            if p.exists():
                arrays[m][i] = _read_image(p, (height, width))
                mask[i, j] = True
    none = np.flatnonzero(~mask.any(1))
    if len(none):  # every ENRICO screen has both images: these are archives not (fully) extracted
        raise DataValidationError(
            f"enrico: {len(none)} of {len(ids)} screens have no {' and no '.join(keep)} image (e.g. id "
            f"{ids[none[0]]}: {d / where[keep[0]][0]}/{ids[none[0]]}{where[keep[0]][1]}); extract the image archives "
            "completely (the benchmark's split keeps every screen)"
        )
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
