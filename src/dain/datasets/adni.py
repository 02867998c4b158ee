"""ADNI (``adni``): the Flex-MoE layout ``adni/label.csv`` + ``PTID_splits.json`` + whichever modality files
exist."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import MultimodalDataset
from dain.datasets.common import (
    MISSING_FILL,
    find_benchmark_dir,
    finish_vector_dataset,
    observed_rows,
    read_split_ids,
    rows_for_ids,
    select_modalities,
)
from dain.errors import ConfigError, DataNotFoundError, DataValidationError

# PTDEMOG's onset and diagnosis dates (when cognitive or AD symptoms began, when AD was diagnosed): they record the
# label, so Flex-MoE's and I2MoE's loaders drop every clinical column whose name starts with one of them
LABEL_COLUMNS = ("PTCOGBEG", "PTADDX", "PTADBEG")


def _read_table(path: Path, id_col: str = "PTID", drop_prefixes: tuple[str, ...] = ()) -> pd.DataFrame:
    df = pd.read_csv(path)
    df = df.set_index(id_col) if id_col in df.columns else df.set_index(df.columns[0])
    df.index = df.index.astype(str)
    df = df[~df.index.duplicated(keep="last")]
    df = df[[c for c in df.columns if not str(c).startswith(drop_prefixes)]] if drop_prefixes else df
    return df.select_dtypes(include=[np.number])


GENOMIC_SKIPPED = "genomic_merged.h5ad needs the anndata package; genomic modality skipped"


def _no_modality_message(d: Path, suffix: str, skipped: dict[str, str]) -> str:
    return (
        f"adni: no modality files in {d} (expected image/ADNI_G.npy + image/ADNI_subj.txt, "
        f"clinical/clinical_merged{suffix}.csv, biospecimen/biospecimen_merged{suffix}.csv or "
        "genomic/genomic_merged.h5ad)" + (f"; {skipped['genomic']}" if skipped else "")
    )


def locate_adni(root: str | Path | None = None, initial_filling: str = "none") -> Path:
    """The ``adni/`` folder with label.csv, PTID_splits.json and at least one modality file the loader can read
    (the genomic .h5ad only with anndata installed); else DataNotFoundError."""
    d = find_benchmark_dir(
        ("adni",),
        root,
        ("label.csv", "PTID_splits.json"),
        "ADNI in the Flex-MoE layout (label.csv with PTID,DIAGNOSIS; PTID_splits.json; image/ADNI_G.npy + "
        "ADNI_subj.txt; genomic/genomic_merged.h5ad; clinical/clinical_merged.csv; biospecimen/"
        "biospecimen_merged.csv); needs an ADNI data use agreement.",
    )
    suffix = "_mean" if initial_filling == "mean" else ""
    skipped: dict[str, str] = {}
    readable = [(d / "image" / "ADNI_G.npy").exists() and (d / "image" / "ADNI_subj.txt").exists()]
    if (d / "genomic" / "genomic_merged.h5ad").exists():
        if importlib.util.find_spec("anndata") is not None:
            readable.append(True)
        else:
            skipped["genomic"] = GENOMIC_SKIPPED
    readable += [(d / n / f"{n}_merged{suffix}.csv").exists() for n in ("clinical", "biospecimen")]
    if not any(readable):
        raise DataNotFoundError(_no_modality_message(d, suffix, skipped))
    return d


@register_dataset(
    DatasetInfo(
        name="adni",
        task="multiclass",
        modalities={"image": [], "genomic": [], "clinical": [], "biospecimen": []},
        description="ADNI (Flex-MoE layout): image / genomic / clinical / biospecimen, diagnosis CN/MCI/AD",
        source="ADNI (ida.loni.usc.edu, data use agreement), user-supplied",
        subdir="adni",
        required=("label.csv", "PTID_splits.json"),
        locate=locate_adni,
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
    if initial_filling not in ("none", "mean"):
        raise ConfigError("adni: initial_filling must be 'none' or 'mean'")
    d = locate_adni(root, initial_filling)
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
        masks[name] = observed_rows(x)

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
            skipped["genomic"] = GENOMIC_SKIPPED
    suffix = "_mean" if initial_filling == "mean" else ""
    for name in ("clinical", "biospecimen"):
        p = d / name / f"{name}_merged{suffix}.csv"
        if p.exists():
            t = _read_table(p, drop_prefixes=LABEL_COLUMNS if name == "clinical" else ())
            put(name, list(t.index), t.to_numpy(np.float32))
    present = [m for m in ("image", "genomic", "clinical", "biospecimen") if m in arrays]
    if not present:  # locate_adni saw none either; kept as a guard
        raise DataNotFoundError(_no_modality_message(d, suffix, skipped))
    keep = select_modalities(present, modalities, "adni")
    splits = rows_for_ids(ids, read_split_ids(d / "PTID_splits.json", fold), d / "PTID_splits.json")
    return finish_vector_dataset(
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
