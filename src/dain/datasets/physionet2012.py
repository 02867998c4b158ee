"""PhysioNet/CinC Challenge 2012 (P12): irregular ICU time series + static descriptors, in-hospital death.

Source: PhysioNet/CinC Challenge 2012 v1.0.0 (Silva et al., 2012), sets a/b/c of 4,000 ICU stays each, Open
Data Commons Attribution 1.0. Each stay file is ``Time,Parameter,Value`` rows (``HH:MM`` over the first 48 h);
the first rows are the static descriptors (RecordID, Age, Gender, Height, ICUType, Weight); -1 means missing.

Modalities (36 time-series variables, as in Raindrop; Weight is a static descriptor only):

* ``vitals`` (13 charted bedside variables) and ``labs`` (23 laboratory / blood-gas variables): ``sequence``
  modalities on a regular grid of ``resolution_minutes`` (default 60 -> T = 48). Features per step are
  ``[values (V) | observation mask (V) | hours since last observation / 48 (V)]``, the values/mask/delta
  thirds convention read by the ``time_aware`` encoder. Values are the mean of the observations in a bin,
  z-scored per variable with statistics of the train split's observed bins only, clipped to +-``clip``, and
  forward-filled (``impute="ffill"``; before the first observation: 0 = train mean) or left at 0
  (``impute="mean"``). ``steps`` marks bins with at least one observation of the modality; the modality is
  missing (mask False) for a stay with none of its values.
* ``static``: Age, Gender, Height, Weight (z-scored, train stats; missing -> 0), ICUType one-hot (4), and
  missing indicators for Gender/Height/Weight (11 features). Weight is the descriptor, or the first later
  positive weight when the descriptor is -1.
* ``summary`` (option ``summary=True``): per variable mean/min/max/last/count over the 48 h (180 features),
  z-scored with train stats; unobserved variables -> 0 with count 0. Missing when the stay has no time series.
  ``summary_encoding="ple"`` instead gives each of the 180 features a piecewise-linear encoding over
  ``summary_bins`` quantile bins of the train split (180 x bins features; :mod:`dain.data.transforms`), which lets
  a neural model cut skewed lab values the way gradient-boosted trees do; an unmeasured variable takes the train
  median (its count, 0, marks it).

Every value < 0 is treated as missing. Protocols: ``default`` = seeded stratified 70/15/15 over ``sets``;
``raindrop`` = sets a+b+c without the 12 stays lacking time series (11,988) and the fixed split ``split``
(1..5) of Raindrop (9590/1199/1199), read from ``splits_raindrop.json``. Parsed observations are cached per
set as .npz under :func:`dain.data.paths.cache_dir`, keyed on the input file's name, size and mtime.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dain.data.paths import atomic_write, cache_dir, find_data_dir
from dain.data.registry_api import DatasetInfo, register_dataset
from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, stratified_split
from dain.data.transforms import fit_quantile_edges, piecewise_linear
from dain.errors import ConfigError, DataNotFoundError, DataValidationError

VITALS = (
    "HR",
    "SysABP",
    "DiasABP",
    "MAP",
    "NISysABP",
    "NIDiasABP",
    "NIMAP",
    "Temp",
    "RespRate",
    "GCS",
    "Urine",
    "FiO2",
    "MechVent",
)
LABS = (
    "pH",
    "PaCO2",
    "PaO2",
    "SaO2",
    "HCO3",
    "Lactate",
    "HCT",
    "Platelets",
    "WBC",
    "K",
    "Na",
    "Mg",
    "Glucose",
    "BUN",
    "Creatinine",
    "Bilirubin",
    "AST",
    "ALT",
    "ALP",
    "Albumin",
    "TroponinT",
    "TroponinI",
    "Cholesterol",
)
VARIABLES = VITALS + LABS  # the 36 time-series variables
STATIC = ("RecordID", "Age", "Gender", "Height", "ICUType", "Weight")
SUMMARY_STATS = ("mean", "min", "max", "last", "count")
HOURS = 48
SOURCE = "PhysioNet/CinC Challenge 2012 v1.0.0 (Silva et al.), Open Data Commons Attribution 1.0 (ODC-BY)"
HINT = (
    "Download set-a.tar.gz, set-b.tar.gz, set-c.tar.gz and Outcomes-a/b/c.txt from "
    "https://physionet.org/content/challenge-2012/1.0.0/ "
    "(or run `python -m dain.datasets.download physionet2012 DIR`)."
)
_CACHE_VERSION = 1


@dataclass
class ParsedSet:
    """Observations of one challenge set before gridding/normalisation (what is cached)."""

    ids: np.ndarray  # [N] int64 RecordIDs
    static: np.ndarray  # [N, 5] float32: Age, Gender, Height, ICUType, Weight (NaN = missing)
    obs_stay: np.ndarray  # [K] int32 row into ids
    obs_minute: np.ndarray  # [K] int16 minutes since admission
    obs_var: np.ndarray  # [K] int8 index into VARIABLES
    obs_value: np.ndarray  # [K] float32 (>= 0)

    def save(self, path: Path) -> None:
        atomic_write(path, lambda tmp: np.savez(tmp, **self.__dict__))

    @classmethod
    def load(cls, path: Path) -> ParsedSet:
        with np.load(path) as z:
            return cls(**{k: z[k] for k in z.files})


def _set_source(d: Path, s: str) -> Path:
    for cand in (d / f"set-{s}.tar.gz", d / f"set-{s}.tgz", d / f"set-{s}.tar", d / f"set-{s}"):
        if cand.exists():
            return cand
    raise DataNotFoundError(f"physionet2012: set {s!r} not found in {d} (expected set-{s}.tar.gz or set-{s}/). {HINT}")


def _fingerprint(p: Path) -> str:
    if p.is_dir():
        files = sorted(p.glob("*.txt"))
        st = [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files]
    else:
        s = p.stat()
        st = [(p.name, s.st_size, int(s.st_mtime))]
    return hashlib.sha1(repr(st).encode()).hexdigest()[:16]


def _iter_stay_files(src: Path, max_stays: int | None) -> tuple[list[int], list[bytes]]:
    """Return (RecordIDs from file names, file contents) for one set (tar read in memory, or a folder)."""
    names: list[int] = []
    blobs: list[bytes] = []
    if src.is_dir():
        for f in sorted(src.glob("*.txt")):
            if max_stays is not None and len(names) >= max_stays:
                break
            names.append(int(f.stem))
            blobs.append(f.read_bytes())
        return names, blobs
    with tarfile.open(src, "r:*") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".txt"):
                continue
            if max_stays is not None and len(names) >= max_stays:
                break
            stem = Path(member.name).stem
            if not stem.isdigit():
                continue
            fh = tar.extractfile(member)
            if fh is None:
                continue
            names.append(int(stem))
            blobs.append(fh.read())
    return names, blobs


def parse_set(src: Path, max_stays: int | None = None) -> ParsedSet:
    """Parse one set (tarball or folder of ``<RecordID>.txt``) into observation arrays (one pandas call)."""
    ids, blobs = _iter_stay_files(src, max_stays)
    if not ids:
        raise DataValidationError(f"physionet2012: no <RecordID>.txt stay files found in {src}")
    chunks: list[bytes] = []
    counts = np.zeros(len(ids), dtype=np.int64)
    for i, b in enumerate(blobs):
        nl = b.find(b"\n")
        body = b[nl + 1 :] if b.startswith(b"Time") else b
        if body and not body.endswith(b"\n"):
            body += b"\n"
        counts[i] = body.count(b"\n")
        chunks.append(body)
    buf = b"".join(chunks).replace(b"\r", b"").replace(b":", b",")  # "HH:MM,Param,Value" -> "HH,MM,Param,Value"
    df = pd.read_csv(
        io.BytesIO(buf),
        header=None,
        names=["h", "m", "param", "value"],
        dtype={"param": "category"},
        skip_blank_lines=False,
    )
    if len(df) != counts.sum():
        raise DataValidationError(
            f"physionet2012: {src}: line count mismatch while parsing ({len(df)} vs {counts.sum()})"
        )
    stay = np.repeat(np.arange(len(ids), dtype=np.int32), counts)
    df["stay"] = stay
    df = df[df["param"].notna() & df["value"].notna()]  # set-c has rows with an empty Parameter name
    minute = (df["h"].to_numpy(np.float64) * 60 + df["m"].to_numpy(np.float64)).astype(np.int64)
    param = df["param"].astype(str).to_numpy()
    value = df["value"].to_numpy(np.float64)
    stay = df["stay"].to_numpy(np.int32)

    static = np.full((len(ids), 5), np.nan, dtype=np.float32)
    for j, name in enumerate(("Age", "Gender", "Height", "ICUType")):
        sel = param == name
        # first occurrence per stay: assign in reverse so the first row wins
        s, v = stay[sel][::-1], value[sel][::-1]
        static[s, j] = v
    wsel = (param == "Weight") & (value > 0)
    s, v = stay[wsel][::-1], value[wsel][::-1]
    static[s, 4] = v  # descriptor weight, or the first positive later weight if the descriptor is -1
    static[:, 1] = np.where(np.isin(static[:, 1], (0.0, 1.0)), static[:, 1], np.nan)
    static[:, 2] = np.where(static[:, 2] > 0, static[:, 2], np.nan)
    static[:, 0] = np.where(static[:, 0] >= 0, static[:, 0], np.nan)

    var_index = {v: i for i, v in enumerate(VARIABLES)}
    vidx = pd.Series(param).map(var_index).to_numpy()
    keep = ~np.isnan(vidx.astype(np.float64)) & (value >= 0) & (minute <= HOURS * 60)
    return ParsedSet(
        ids=np.asarray(ids, dtype=np.int64),
        static=static,
        obs_stay=stay[keep].astype(np.int32),
        obs_minute=minute[keep].astype(np.int16),
        obs_var=vidx[keep].astype(np.int8),
        obs_value=value[keep].astype(np.float32),
    )


def load_set(src: Path, max_stays: int | None = None, use_cache: bool = True) -> ParsedSet:
    """Parse a set, through the .npz cache keyed on the file's name, size, mtime and ``max_stays``."""
    key = f"v{_CACHE_VERSION}-{_fingerprint(src)}-{max_stays}"
    path = cache_dir() / "physionet2012" / f"{src.name.split('.')[0]}-{key}.npz"
    if use_cache and path.exists():
        try:
            return ParsedSet.load(path)
        except (OSError, ValueError, KeyError):
            pass
    parsed = parse_set(src, max_stays)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed.save(path)
    return parsed


def read_outcomes(path: Path) -> dict[int, int]:
    df = pd.read_csv(path)
    if "RecordID" not in df or "In-hospital_death" not in df:
        raise DataValidationError(f"{path}: expected columns RecordID and In-hospital_death")
    return dict(zip(df["RecordID"].astype(int), df["In-hospital_death"].astype(int)))


def grid(parsed: ParsedSet, resolution_minutes: int) -> np.ndarray:
    """Bin observations on a regular grid -> [N, T, 36] float32 mean per bin, NaN where unobserved."""
    T = int(np.ceil(HOURS * 60 / resolution_minutes))
    V = len(VARIABLES)
    n = len(parsed.ids)
    b = np.minimum(parsed.obs_minute.astype(np.int64) // resolution_minutes, T - 1)
    flat = (parsed.obs_stay.astype(np.int64) * T + b) * V + parsed.obs_var.astype(np.int64)
    uniq, inv = np.unique(flat, return_inverse=True)
    tot = np.bincount(inv, weights=parsed.obs_value.astype(np.float64))
    cnt = np.bincount(inv)
    g = np.full(n * T * V, np.nan, dtype=np.float32)
    g[uniq] = tot / cnt
    return g.reshape(n, T, V)


def summarize(parsed: ParsedSet) -> np.ndarray:
    """Per stay and variable: mean, min, max, last, count over the stay -> [N, 36, 5] (NaN where no value)."""
    n, V = len(parsed.ids), len(VARIABLES)
    key = (parsed.obs_stay.astype(np.int64) * V + parsed.obs_var) * 4096 + parsed.obs_minute
    order = np.argsort(key, kind="stable")
    cell = (key[order] // 4096).astype(np.int64)
    v = parsed.obs_value[order].astype(np.float64)
    out = np.full((n * V, 5), np.nan, dtype=np.float32)
    if len(cell):
        start = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
        end = np.r_[start[1:], len(cell)]
        c = cell[start]
        cnt = end - start
        out[c, 0] = np.add.reduceat(v, start) / cnt
        out[c, 1] = np.minimum.reduceat(v, start)
        out[c, 2] = np.maximum.reduceat(v, start)
        out[c, 3] = v[end - 1]
        out[c, 4] = cnt
    out = out.reshape(n, V, 5)
    out[:, :, 4] = np.nan_to_num(out[:, :, 4], nan=0.0)
    return out


def _zstats(x: np.ndarray, axis: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    mu = np.nanmean(x, axis=axis) if np.isfinite(x).any() else np.zeros(x.shape[-1])
    sd = np.nanstd(x, axis=axis)
    mu = np.nan_to_num(mu, nan=0.0)
    sd = np.where(~np.isfinite(sd) | (sd < 1e-6), 1.0, sd)
    return mu.astype(np.float32), sd.astype(np.float32)


def fit_normalization(
    grid_values: np.ndarray, static: np.ndarray, summary: np.ndarray | None, train: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Mean/std per variable from the rows in ``train`` only (observed bins / non-missing values; the summary's from
    train stays that have one)."""
    train = np.asarray(train, dtype=np.int64)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stats = {
            "series": _zstats(grid_values[train], (0, 1)),
            "static": _zstats(static[train][:, [0, 2, 4]], (0,)),
        }
        if summary is not None:
            # a stay with no time series has no summary (masked out; its counts are 0, not measurements): leave it out
            rows = train[np.isfinite(grid_values[train]).any(axis=(1, 2))]
            stats["summary"] = _zstats(summary[rows].reshape(len(rows), -1), (0,))
    return stats


def _time_since_last(observed: np.ndarray, resolution_minutes: int) -> np.ndarray:
    """Hours since the last observed bin (0 when observed; since admission before the first) / 48."""
    n, T, V = observed.shape
    t = np.arange(T, dtype=np.int16).reshape(1, T, 1)
    last = np.where(observed, t, np.int16(-1))
    last = np.maximum.accumulate(last, axis=1)
    steps = np.where(last >= 0, t - last, t + 1)
    return (steps * (resolution_minutes / 60.0) / HOURS).astype(np.float32)


def _ffill(x: np.ndarray, observed: np.ndarray) -> np.ndarray:
    n, T, V = x.shape
    idx = np.where(observed, np.arange(T, dtype=np.int16).reshape(1, T, 1), np.int16(0))
    idx = np.maximum.accumulate(idx, axis=1)
    out = np.take_along_axis(x, idx, axis=1)
    first = np.maximum.accumulate(observed, axis=1)
    return np.where(first, out, 0.0).astype(np.float32)


def build_sequence_features(
    values: np.ndarray, mu: np.ndarray, sd: np.ndarray, resolution_minutes: int, impute: str, clip: float
) -> np.ndarray:
    """[N, T, V] raw grid (NaN = unobserved) -> [N, T, 3V] = [z-scored values | mask | scaled delta]."""
    observed = np.isfinite(values)
    z = np.where(observed, (values - mu) / sd, 0.0).astype(np.float32)
    if clip:
        np.clip(z, -clip, clip, out=z)
    if impute == "ffill":
        z = _ffill(z, observed)
    delta = _time_since_last(observed, resolution_minutes)
    return np.concatenate([z, observed.astype(np.float32), delta], axis=-1)


def _raindrop_splits_file(d: Path) -> Path:
    path = d / "splits_raindrop.json"
    if not path.exists():
        raise DataNotFoundError(
            f"physionet2012: protocol 'raindrop' needs {path} (the five Raindrop splits as RecordIDs: "
            '{"splits": [{"train": [...], "val": [...], "test": [...]}, ...]}).'
        )
    return path


def _splits_raindrop(d: Path, ids: np.ndarray, split: int) -> dict[str, np.ndarray]:
    path = _raindrop_splits_file(d)
    obj = json.loads(path.read_text())
    all_splits = obj["splits"] if isinstance(obj, dict) else obj
    if not 1 <= split <= len(all_splits):
        raise ConfigError(f"physionet2012: split must be in 1..{len(all_splits)}, got {split}")
    row = {int(r): i for i, r in enumerate(ids)}
    out = {}
    for s in ("train", "val", "test"):
        rec = all_splits[split - 1][s]
        missing = [r for r in rec if int(r) not in row]
        if missing:
            raise DataValidationError(
                f"physionet2012: {len(missing)} RecordIDs of {path.name} split {split}/{s} are not in the "
                "data "
                f"(e.g. {missing[:3]}); the raindrop protocol needs sets a, b and c complete"
            )
        out[s] = np.asarray([row[int(r)] for r in rec], dtype=np.int64)
    return out


DEFAULT_SETS = ("a", "b")


def locate_physionet2012(
    root: str | Path | None = None, sets: tuple[str, ...] = DEFAULT_SETS, protocol: str = "default"
) -> Path:
    """The folder holding what a load of ``sets`` reads (the defaults are the load's): ``Outcomes-<set>.txt`` and
    each set's archive or folder, plus ``splits_raindrop.json`` for the raindrop protocol; else DataNotFoundError."""
    d = find_data_dir("physionet2012", root, tuple(f"Outcomes-{s}.txt" for s in sets), hint=HINT)
    for s in sets:
        _set_source(d, s)
    if protocol == "raindrop":
        _raindrop_splits_file(d)
    return d


@register_dataset(
    DatasetInfo(
        name="physionet2012",
        task="binary",
        modalities={"vitals": [HOURS, 3 * len(VITALS)], "labs": [HOURS, 3 * len(LABS)], "static": [11]},
        description="PhysioNet 2012 ICU stays: vitals + labs (48 h grid) + static; in-hospital death",
        source=SOURCE,
        subdir="physionet2012",
        required=("Outcomes-a.txt",),
        n_samples=8000,
        extras={
            "protocols": ["default", "raindrop"],
            "optional_modalities": {"summary": [len(VARIABLES) * 5]},
        },
        locate=locate_physionet2012,
    )
)
def load_physionet2012(
    root: str | None = None,
    seed: int = 0,
    sets: tuple[str, ...] | list[str] | str = DEFAULT_SETS,
    protocol: str = "default",
    split: int = 1,
    resolution_minutes: int = 60,
    summary: bool = False,
    summary_encoding: str = "zscore",
    summary_bins: int = 16,
    impute: str = "ffill",
    clip: float = 10.0,
    max_stays: int | None = None,
    modalities: list[str] | None = None,
    cache: bool = True,
) -> MultimodalDataset:
    """Load P12. ``max_stays`` keeps the first k stays of each set (tests); ``modalities`` keeps a subset."""
    if protocol not in ("default", "raindrop"):
        raise ConfigError(f"physionet2012 has no protocol {protocol!r}; protocols: default, raindrop")
    if summary_encoding not in ("zscore", "ple"):
        raise ConfigError(f"physionet2012: summary_encoding must be 'zscore' or 'ple', got {summary_encoding!r}")
    if summary_bins < 1:
        raise ConfigError(f"physionet2012: summary_bins must be >= 1, got {summary_bins}")
    if impute not in ("ffill", "mean"):
        raise ConfigError(f"physionet2012: impute must be 'ffill' or 'mean', got {impute!r}")
    if resolution_minutes <= 0 or resolution_minutes > HOURS * 60:
        raise ConfigError(f"physionet2012: resolution_minutes must be in 1..{HOURS * 60}")
    if isinstance(sets, str):
        sets = tuple(s.strip() for s in sets.replace("+", ",").split(",") if s.strip())
    sets = tuple(sets)
    if protocol == "raindrop":
        sets = ("a", "b", "c")
    bad = [s for s in sets if s not in ("a", "b", "c")]
    if bad or not sets:
        raise ConfigError(f"physionet2012: sets must be a subset of a, b, c; got {sets}")
    d = locate_physionet2012(root, sets, protocol)

    parts = [load_set(_set_source(d, s), max_stays, use_cache=cache) for s in sets]
    outcomes: dict[int, int] = {}
    for s in sets:
        outcomes.update(read_outcomes(d / f"Outcomes-{s}.txt"))
    offsets = np.cumsum([0] + [len(p.ids) for p in parts])
    merged = ParsedSet(
        ids=np.concatenate([p.ids for p in parts]),
        static=np.concatenate([p.static for p in parts]),
        obs_stay=np.concatenate([p.obs_stay + o for p, o in zip(parts, offsets)]).astype(np.int32),
        obs_minute=np.concatenate([p.obs_minute for p in parts]),
        obs_var=np.concatenate([p.obs_var for p in parts]),
        obs_value=np.concatenate([p.obs_value for p in parts]),
    )
    set_of = np.concatenate([np.full(len(p.ids), s) for p, s in zip(parts, sets)])
    if protocol == "raindrop":
        has_ts = np.bincount(merged.obs_stay, minlength=len(merged.ids)) > 0
        keep = np.flatnonzero(has_ts)
        remap = -np.ones(len(merged.ids), dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        sel = has_ts[merged.obs_stay]
        merged = ParsedSet(
            ids=merged.ids[keep],
            static=merged.static[keep],
            obs_stay=remap[merged.obs_stay[sel]].astype(np.int32),
            obs_minute=merged.obs_minute[sel],
            obs_var=merged.obs_var[sel],
            obs_value=merged.obs_value[sel],
        )
        set_of = set_of[keep]
    missing_y = [int(r) for r in merged.ids if int(r) not in outcomes]
    if missing_y:
        raise DataValidationError(f"physionet2012: {len(missing_y)} stays have no outcome (e.g. {missing_y[:3]})")
    y = np.asarray([outcomes[int(r)] for r in merged.ids], dtype=np.float32)
    if protocol == "raindrop":
        splits = _splits_raindrop(d, merged.ids, split)
    else:
        splits = stratified_split(y.astype(np.int64), (0.7, 0.15, 0.15), seed=seed)

    values = grid(merged, resolution_minutes)
    summ = summarize(merged) if summary else None
    bins = summary_bins if summary_encoding == "ple" else 0
    data = assemble(values, merged.static, summ, splits, resolution_minutes, impute, clip, bins)
    names = [m for m in ("vitals", "labs", "static", "summary") if m in data["inputs"]]
    if modalities:
        unknown = [m for m in modalities if m not in names]
        if unknown:
            raise ConfigError(f"physionet2012 has no modality {unknown}; modalities: {names}")
        names = [m for m in names if m in modalities]
    full = ["vitals", "labs", "static", "summary"]
    cols = [full.index(m) for m in names]
    T = values.shape[1]
    shapes = {
        "vitals": (T, 3 * len(VITALS)),
        "labs": (T, 3 * len(LABS)),
        "static": (11,),
        "summary": (len(VARIABLES) * 5 * (bins or 1),),
    }
    spec = DatasetSpec(
        name="physionet2012",
        task="binary",
        num_outputs=1,
        modalities=tuple(
            ModalitySpec(m, "sequence" if m in ("vitals", "labs") else "vector", shapes[m]) for m in names
        ),
        class_names=("survived", "died"),
    )
    info: dict[str, Any] = {
        "source": SOURCE,
        "where": str(d),
        "protocol": protocol,
        "sets": list(sets),
        "split": split if protocol == "raindrop" else None,
        "split_seed": seed if protocol == "default" else None,
        "resolution_minutes": resolution_minutes,
        "variables": {"vitals": list(VITALS), "labs": list(LABS)},
        "features": "sequence channels = [z-scored values | observed mask | hours since last obs / 48]",
        "normalisation": "z-score per variable, train split only",
        "summary_encoding": summary_encoding if summary else None,
        "norm_stats": {
            k: (v.tolist() if isinstance(v, np.ndarray) else [a.tolist() for a in v]) for k, v in data["stats"].items()
        },
        "rows_per_set": {s: int((set_of == s).sum()) for s in sets},
        "max_stays": max_stays,
    }
    return MultimodalDataset(
        spec=spec,
        inputs={m: data["inputs"][m] for m in names},
        mask=data["mask"][:, cols].copy(),
        target=y,
        splits=splits,
        steps={m: data["steps"][m] for m in names if m in data["steps"]},
        ids=merged.ids.copy(),
        info=info,
    )


def assemble(
    values: np.ndarray,
    static: np.ndarray,
    summ: np.ndarray | None,
    splits: dict[str, np.ndarray],
    resolution_minutes: int,
    impute: str = "ffill",
    clip: float = 10.0,
    summary_bins: int = 0,
) -> dict[str, Any]:
    """Normalise with train-only stats and build inputs/mask/steps for vitals, labs, static (+ summary).

    ``summary_bins > 0`` encodes the summary piecewise-linearly over that many train-quantile bins instead of
    z-scoring it; the bin edges are returned as ``stats["summary_edges"]``."""
    stats = fit_normalization(values, static, summ, splits["train"])
    mu, sd = stats["series"]
    nv = len(VITALS)
    inputs: dict[str, np.ndarray] = {}
    steps: dict[str, np.ndarray] = {}
    masks = []
    for name, sl in (("vitals", slice(0, nv)), ("labs", slice(nv, len(VARIABLES)))):
        v = values[:, :, sl]
        obs = np.isfinite(v)
        inputs[name] = build_sequence_features(v, mu[sl], sd[sl], resolution_minutes, impute, clip)
        steps[name] = obs.any(-1)
        present = steps[name].any(-1)
        inputs[name][~present] = 0.0
        masks.append(present)

    smu, ssd = stats["static"]
    cont = static[:, [0, 2, 4]]
    zc = np.where(np.isfinite(cont), (cont - smu) / ssd, 0.0)
    if clip:
        zc = np.clip(zc, -clip, clip)
    gender = np.nan_to_num(static[:, 1], nan=0.5)[:, None]
    icu = np.zeros((len(static), 4), dtype=np.float32)
    t = static[:, 3]
    ok = np.isin(t, (1.0, 2.0, 3.0, 4.0))
    icu[np.flatnonzero(ok), t[ok].astype(int) - 1] = 1.0
    miss = np.stack([~np.isfinite(static[:, 1]), ~np.isfinite(static[:, 2]), ~np.isfinite(static[:, 4])], 1)
    inputs["static"] = np.concatenate([zc[:, :1], gender, zc[:, 1:], icu, miss], 1).astype(np.float32)
    # order: Age, Gender, Height, Weight, ICUType x4, Gender/Height/Weight missing
    masks.append(np.isfinite(static).any(1))
    inputs["static"][~masks[-1]] = 0.0

    if summ is not None:
        n = len(summ)
        flat = summ.reshape(n, -1)
        if summary_bins:
            # a variable never measured in a stay most often means 'not worth measuring' (a normal value): fill
            # with the train median, the middle of the encoding, and let the count feature (0) flag it; fitted on
            # the train stays that have a summary (one with no time series has none: its counts are not data)
            train = np.asarray(splits["train"])
            train = train[(masks[0] | masks[1])[train]]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nan_to_num(np.nanmedian(flat[train], axis=0), nan=0.0)
            edges = fit_quantile_edges(flat, train, summary_bins)
            stats["summary_edges"] = edges
            stats["summary_median"] = median.astype(np.float32)
            z = piecewise_linear(np.where(np.isfinite(flat), flat, median), edges)
        else:
            qmu, qsd = stats["summary"]
            z = np.where(np.isfinite(flat), (flat - qmu) / qsd, 0.0)
            if clip:
                z = np.clip(z, -clip, clip)
        inputs["summary"] = z.astype(np.float32)
        masks.append(masks[0] | masks[1])
        inputs["summary"][~masks[-1]] = 0.0
    else:
        masks.append(np.zeros(len(static), dtype=bool))
    return {"inputs": inputs, "steps": steps, "mask": np.stack(masks, 1), "stats": stats}
