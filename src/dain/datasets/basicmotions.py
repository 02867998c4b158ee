"""UEA BasicMotions: smartwatch accelerometer + gyroscope (3 x 100 steps each), 4 activities.

Source: UEA & UCR Time Series Classification archive (Bagnall et al.), as shipped in aeon 1.6.0 / sktime. The
official split is 40 train / 40 test; validation is carved (stratified, seeded) from train.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dain.data.paths import find_data_dir
from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, standardize_, stratified_split
from dain.errors import DataValidationError

CLASSES = ("Standing", "Running", "Walking", "Badminton")
SOURCE = "UEA/UCR time series archive (Bagnall et al.), BasicMotions, via aeon 1.6.0"


def read_ts(path: Path) -> tuple[np.ndarray, list[str]]:
    """Read an equal-length multivariate sktime .ts file -> (X [N, C, T], labels)."""
    xs, ys = [], []
    in_data = False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("@data"):
            in_data = True
            continue
        if not in_data or line.startswith("@"):
            continue
        *dims, label = line.split(":")
        try:
            xs.append([[float(v) for v in d.split(",")] for d in dims])
        except ValueError as e:
            raise DataValidationError(f"{path}: malformed series line ({e})") from e
        ys.append(label)
    return np.asarray(xs, dtype=np.float32), ys


def locate_basicmotions(root: str | Path | None = None) -> Path:
    """The ``basicmotions/`` folder with BasicMotions_TRAIN.ts and _TEST.ts; else DataNotFoundError."""
    return find_data_dir(
        "basicmotions",
        root,
        ("BasicMotions_TRAIN.ts", "BasicMotions_TEST.ts"),
        hint="It is the UEA archive's BasicMotions (.ts files), e.g. from aeon or timeseriesclassification.com.",
    )


@register_dataset(
    DatasetInfo(
        name="basicmotions",
        task="multiclass",
        modalities={"accel": [100, 3], "gyro": [100, 3]},
        description="UEA BasicMotions smartwatch IMU, accelerometer + gyroscope sequences",
        source=SOURCE,
        subdir="basicmotions",
        required=("BasicMotions_TRAIN.ts", "BasicMotions_TEST.ts"),
        n_samples=80,
        locate=locate_basicmotions,
    )
)
def load_basicmotions(root: str | None = None, seed: int = 0, val_fraction: float = 0.25) -> MultimodalDataset:
    d = locate_basicmotions(root)
    xtr, ytr = read_ts(d / "BasicMotions_TRAIN.ts")
    xte, yte = read_ts(d / "BasicMotions_TEST.ts")
    x = np.concatenate([xtr, xte]).transpose(0, 2, 1)  # [N, T, 6]
    y = np.asarray([CLASSES.index(v) for v in ytr + yte], dtype=np.int64)
    n_tr = len(ytr)
    inner = stratified_split(y[:n_tr], (1 - val_fraction, val_fraction, 0.0), seed=seed)
    splits = {
        "train": inner["train"],
        "val": np.sort(np.concatenate([inner["val"], inner["test"]])),
        "test": np.arange(n_tr, len(y)),
    }
    spec = DatasetSpec(
        name="basicmotions",
        task="multiclass",
        num_outputs=4,
        modalities=(ModalitySpec("accel", "sequence", (100, 3)), ModalitySpec("gyro", "sequence", (100, 3))),
        class_names=CLASSES,
    )
    data = MultimodalDataset(
        spec=spec,
        inputs={"accel": x[:, :, :3].copy(), "gyro": x[:, :, 3:].copy()},
        mask=np.ones((len(y), 2), dtype=bool),
        target=y,
        splits=splits,
        info={
            "source": SOURCE,
            "where": str(d),
            "protocol": "official 40/40, val from train",
            "split_seed": seed,
        },
    )
    standardize_(data)
    return data
