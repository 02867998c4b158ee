"""MIMIC-IV Clinical Database Demo (100 patients) in MEDS format: a loader demonstration for event streams.

Source: PhysioNet "MIMIC-IV demo data in MEDS" v0.0.1 (Open Database License 1.0), one parquet of events
(``subject_id, time, code, table, value``). Per patient, three ``vector`` modalities built from the most
frequent codes *of the train split*: ``labs`` = for each of ``n_labs`` LAB codes ``[log1p(count), mean]``
(mean z-scored with train stats; 0 when absent), ``medications`` = multi-hot of ``n_meds`` drug names
(``MEDICATION//START//X`` and ``MEDICATION//X//action`` -> X), ``diagnoses`` = multi-hot of ``n_dx`` ICD
codes truncated to ``icd_chars`` characters (per ICD version). A patient with no events of a modality has mask
False. Label: binary, MEDS_DEATH present (31/100). No time cut-off is applied (events up to death are used),
so this is a demonstration of the format, not a prediction benchmark. Split: seeded stratified 70/15/15.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dain.data.paths import find_data_dir
from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, stratified_split
from dain.errors import ConfigError, DataValidationError

SOURCE = "MIMIC-IV Clinical Database Demo in MEDS v0.0.1 (PhysioNet), Open Database License (ODbL) 1.0"
FILE = "mimic_iv_demo_meds_events.parquet"


def _med_name(code: pd.Series) -> pd.Series:
    """The drug of a ``MEDICATION//START//X``, ``MEDICATION//STOP//X`` or ``MEDICATION//X//action`` code; ``""`` for
    an unknown one (``UNK``), which is no feature."""
    parts = code.str.split("//")
    second = parts.str[1]
    third = parts.str[2]
    name = second.where(~second.isin(["START", "STOP"]), third).fillna("")
    return name.where(name != "UNK", "")


def _dx_name(code: pd.Series, chars: int) -> pd.Series:
    parts = code.str.split("//")
    return "ICD" + parts.str[2].fillna("") + "//" + parts.str[3].fillna("").str[:chars]


def read_events(path: Path) -> pd.DataFrame:
    """Read a MEDS events parquet (needs columns subject_id, code; value optional)."""
    df = pd.read_parquet(path)
    missing = {"subject_id", "code"} - set(df.columns)
    if missing:
        raise DataValidationError(f"{path}: missing MEDS column(s) {sorted(missing)}")
    if "value" not in df:
        df["value"] = np.nan
    return df[["subject_id", "code", "value"]]


def _top(items: pd.DataFrame, train_subjects: set, k: int) -> list[str]:
    tr = items[items["subject_id"].isin(train_subjects)]
    # vocabulary = the k codes seen in the most train patients (ties broken by name)
    n = tr.drop_duplicates(["subject_id", "item"])["item"].value_counts()
    n = n.sort_index().sort_values(ascending=False, kind="stable")
    return list(n.index[:k])


def _multi_hot(items: pd.DataFrame, subjects: np.ndarray, vocab: list[str]) -> np.ndarray:
    out = np.zeros((len(subjects), len(vocab)), dtype=np.float32)
    row = {s: i for i, s in enumerate(subjects)}
    col = {c: j for j, c in enumerate(vocab)}
    sel = items[items["item"].isin(col)]
    out[sel["subject_id"].map(row).to_numpy(), sel["item"].map(col).to_numpy()] = 1.0
    return out


def locate_mimic4_demo(root: str | Path | None = None) -> Path:
    """The ``mimic_iv_demo_meds/`` folder with the MEDS events parquet; else DataNotFoundError."""
    return find_data_dir(
        "mimic_iv_demo_meds",
        root,
        (FILE,),
        hint="Get the MIMIC-IV demo in MEDS from PhysioNet (mimic-iv-demo-meds) or standardmodelbio/quickstart.",
    )


@register_dataset(
    DatasetInfo(
        name="mimic4-demo",
        task="binary",
        modalities={"labs": [64], "medications": [64], "diagnoses": [64]},
        description="MIMIC-IV demo (100 patients, MEDS events): labs / medications / diagnoses; death",
        source=SOURCE,
        subdir="mimic_iv_demo_meds",
        required=(FILE,),
        n_samples=100,
        locate=locate_mimic4_demo,
    )
)
def load_mimic4_demo(
    root: str | None = None,
    seed: int = 0,
    n_labs: int = 32,
    n_meds: int = 64,
    n_dx: int = 64,
    icd_chars: int = 3,
    modalities: list[str] | None = None,
) -> MultimodalDataset:
    """Load the MEDS demo as three per-patient vector modalities (vocabularies from the train split)."""
    d = locate_mimic4_demo(root)
    ev = read_events(d / FILE)
    subjects = np.sort(ev["subject_id"].unique())
    dead = set(ev.loc[ev["code"] == "MEDS_DEATH", "subject_id"])
    y = np.asarray([s in dead for s in subjects], dtype=np.int64)
    splits = stratified_split(y, (0.7, 0.15, 0.15), seed=seed)
    train_subj = set(subjects[splits["train"]])
    code = ev["code"].astype(str)

    lab = ev[code.str.startswith("LAB//")].assign(item=code[code.str.startswith("LAB//")])
    med_rows = code.str.startswith("MEDICATION//")
    med = ev[med_rows].assign(item=_med_name(code[med_rows]))
    med = med[med["item"] != ""]
    dx_rows = code.str.startswith("DIAGNOSIS//ICD//")
    dx = ev[dx_rows].assign(item=_dx_name(code[dx_rows], icd_chars))

    lab_vocab = _top(lab, train_subj, n_labs)
    row = {s: i for i, s in enumerate(subjects)}
    col = {c: j for j, c in enumerate(lab_vocab)}
    sel = lab[lab["item"].isin(col)]
    g = sel.groupby(["subject_id", "item"])["value"].agg(["size", "mean"]).reset_index()
    counts = np.zeros((len(subjects), len(lab_vocab)), dtype=np.float32)
    means = np.full((len(subjects), len(lab_vocab)), np.nan, dtype=np.float32)
    r, c = g["subject_id"].map(row).to_numpy(), g["item"].map(col).to_numpy()
    counts[r, c] = np.log1p(g["size"].to_numpy())
    means[r, c] = g["mean"].to_numpy(np.float32)
    tr = splits["train"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nan_to_num(np.nanmean(means[tr], 0))
        sd = np.nanstd(means[tr], 0)
    sd = np.where(~np.isfinite(sd) | (sd < 1e-6), 1.0, sd)
    zmeans = np.where(np.isfinite(means), np.clip((means - mu) / sd, -10, 10), 0.0)
    labs = np.concatenate([counts, zmeans], 1).astype(np.float32)

    arrays = {
        "labs": labs,
        "medications": _multi_hot(med, subjects, _top(med, train_subj, n_meds)),
        "diagnoses": _multi_hot(dx, subjects, _top(dx, train_subj, n_dx)),
    }
    present = {
        "labs": np.isin(subjects, lab["subject_id"].unique()),
        "medications": np.isin(subjects, med["subject_id"].unique()),
        "diagnoses": np.isin(subjects, dx["subject_id"].unique()),
    }
    names = ["labs", "medications", "diagnoses"]
    bad = [m for m in (modalities or []) if m not in names]
    keep = [m for m in names if not modalities or m in modalities]
    if bad or not keep:
        raise ConfigError(f"mimic4-demo has no modality {bad}; modalities: {names}")
    for m in keep:
        arrays[m][~present[m]] = 0.0
    spec = DatasetSpec(
        name="mimic4-demo",
        task="binary",
        num_outputs=1,
        modalities=tuple(ModalitySpec(m, "vector", (arrays[m].shape[1],)) for m in keep),
        class_names=("alive", "died"),
    )
    return MultimodalDataset(
        spec=spec,
        inputs={m: arrays[m] for m in keep},
        mask=np.stack([present[m] for m in keep], 1),
        target=y.astype(np.float32),
        splits=splits,
        ids=subjects,
        info={
            "source": SOURCE,
            "where": str(d),
            "split_seed": seed,
            "vocabulary": "most frequent codes (by patients) of the train split",
            "caveat": "no time cut-off: a format demonstration, not a benchmark",
        },
    )
