"""Bring-your-own data: load a folder of per-modality arrays without writing code.

Layout::

    <dir>/modalities/<name>.npy | .npz | .parquet   one file per modality, rows = samples
         (N, D) vector, (N, T, D) sequence, (N, C, H, W) image; .npz: first array (or key "x"),
         optional key "steps" (N, T) bool for sequences; .parquet: vectors only (all columns numeric)
    <dir>/labels.npy | labels.csv                    (N,) or (N, L); csv: column "label" (or all columns)
    <dir>/split.json        optional {"train": [...], "val": [...], "test": [...]} row indices
                            (default: seeded stratified 70/15/15)
    <dir>/mask.npy          optional (N, M) bool modality mask (True = observed), columns in modality order
    <dir>/dataset.yaml      optional: name, task, modalities (order), class_names, standardize (default true)

Modality order: ``modalities`` of dataset.yaml, else sorted file names. Task (unless given): 1-D integers with
2 values -> binary, more -> multiclass; floats -> regression; 2-D 0/1 -> multilabel. Rows whose modality is
masked out may hold anything finite (NaN rows are allowed only there; they are zeroed). Inputs are z-scored
with train statistics (``standardize: false`` to keep them).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dain.data.spec import TASKS, DatasetSpec, ModalitySpec, MultimodalDataset, standardize_, stratified_split
from dain.errors import ConfigError, DataNotFoundError, DataValidationError
from dain.validation import yaml_problem

EXTS = (".npy", ".npz", ".parquet")
KIND_BY_NDIM = {2: "vector", 3: "sequence", 4: "image"}


def _read_yaml(path: Path) -> dict[str, Any]:
    text = path.read_text()
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        obj = _mini_yaml(text, path)
    else:
        try:
            obj = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise DataValidationError(f"{path}: not valid YAML ({yaml_problem(e)})") from e
    if not isinstance(obj, dict):
        raise DataValidationError(f"{path}: expected a mapping at top level")
    return obj


def _mini_yaml(text: str, path: Path) -> dict[str, Any]:
    """Tiny YAML subset (``key: value``, ``key: [a, b]`` and ``- item`` lists) for when PyYAML is absent."""
    out: dict[str, Any] = {}
    key = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if line.lstrip().startswith("- ") and key is not None:
            out.setdefault(key, [])
            out[key].append(_scalar(line.lstrip()[2:]))
            continue
        if ":" not in line:
            raise DataValidationError(f"{path}: cannot parse line {raw!r}")
        k, v = line.split(":", 1)
        key, v = k.strip(), v.strip()
        if not v:
            out[key] = []
        elif v.startswith("[") and v.endswith("]"):
            out[key] = [_scalar(x) for x in v[1:-1].split(",") if x.strip()]
        else:
            out[key] = _scalar(v)
    return out


def _scalar(v: str) -> Any:
    v = v.strip().strip("'\"")
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def load_array(path: Path) -> Any:
    """``np.load`` without pickles: an unreadable, empty or object-dtype file is a DataValidationError naming it."""
    if path.stat().st_size == 0:
        raise DataValidationError(f"{path}: the file is empty (0 bytes); write it again with np.save")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        raise DataValidationError(f"{path}: {_pickle_refused(e, path)}") from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataValidationError(f"{path}: not a readable {path.suffix} array ({e})") from e


def _pickle_refused(e: ValueError, path: Path) -> str:
    """Why numpy refused a file with ``allow_pickle=False``, in words."""
    if "Object arrays" in str(e):
        return (
            "holds an object-dtype array (pickled Python objects), which dain does not load (unpickling can run "
            "code); save a numeric array, e.g. np.save(path, x.astype(np.float32))"
        )
    if "pickle" in str(e):
        return (
            f"is not a {path.suffix} array file (numpy would read it as a pickle, which dain does not load: "
            "unpickling can run code); write it with np.save / np.savez"
        )
    return f"not a readable {path.suffix} array ({e})"


def read_modality(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one modality file -> (array float32, optional steps mask)."""
    ext = path.suffix.lower()
    steps = None
    if ext == ".npy":
        x = load_array(path)
    elif ext == ".npz":
        try:
            with load_array(path) as z:
                if not z.files:
                    raise DataValidationError(f"{path}: empty .npz")
                key = "x" if "x" in z.files else [k for k in z.files if k != "steps"][0]
                x = z[key]
                steps = z["steps"].astype(bool) if "steps" in z.files else None
        except ValueError as e:  # arrays inside an .npz are read lazily
            raise DataValidationError(f"{path}: {_pickle_refused(e, path)}") from e
        except (OSError, EOFError, zipfile.BadZipFile) as e:
            raise DataValidationError(f"{path}: not a readable .npz ({e})") from e
    elif ext == ".parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as e:  # pyarrow raises its own error types for a damaged file
            raise DataValidationError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from e
        bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
        if bad:
            raise DataValidationError(f"{path}: non-numeric column(s) {bad[:5]}")
        x = df.to_numpy(np.float32)
    else:
        raise DataValidationError(f"{path}: unknown extension {ext!r}; use one of {', '.join(EXTS)}")
    if x.dtype.kind not in "biuf":
        raise DataValidationError(f"{path}: array dtype {x.dtype} is not numeric")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim not in KIND_BY_NDIM:
        raise DataValidationError(f"{path}: {x.ndim}-d array; expected (N,D), (N,T,D) or (N,C,H,W)")
    return x.astype(np.float32), steps


def read_labels(d: Path) -> tuple[np.ndarray, Path]:
    for name in ("labels.npy", "labels.csv"):
        p = d / name
        if p.exists():
            if p.suffix == ".npy":
                return load_array(p), p
            try:
                df = pd.read_csv(p)
            except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
                raise DataValidationError(f"{p}: not a readable CSV ({e}); expected a column 'label'") from e
            if "label" in df.columns:
                return df["label"].to_numpy(), p
            return df.to_numpy().squeeze(), p
    raise DataNotFoundError(f"{d}: no labels.npy or labels.csv (column 'label')")


def read_split(path: Path) -> dict[str, np.ndarray]:
    """``split.json``: ``{"train": [...], "val": [...], "test": [...]}`` lists of row indices (integers)."""
    try:
        sp = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataValidationError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from e
    except UnicodeDecodeError as e:
        raise DataValidationError(f"{path}: not a text file ({e})") from e
    if not isinstance(sp, dict):
        raise DataValidationError(f"{path}: expected a mapping {{'train': [...], 'val': [...], 'test': [...]}}")
    missing = [s for s in ("train", "val", "test") if s not in sp]
    if missing:
        raise DataValidationError(f"{path}: missing key(s) {missing}")
    out = {}
    for s in ("train", "val", "test"):
        v = sp[s]
        bad = [x for x in v if isinstance(x, bool) or not isinstance(x, int)] if isinstance(v, list) else [v]
        if bad:
            raise DataValidationError(f"{path}: {s!r} must be a list of row indices (integers), got {bad[0]!r}")
        out[s] = np.asarray(v, dtype=np.int64)
    return out


def infer_task(y: np.ndarray) -> str:
    """binary / multiclass / regression / multilabel from the label array's shape and values."""
    if y.ndim == 2 and y.shape[1] > 1:
        if np.isin(y, (0, 1)).all():
            return "multilabel"
        return "regression"
    y = y.reshape(-1)
    if y.dtype.kind in "OUS":
        return "binary" if len(np.unique(y)) == 2 else "multiclass"
    if y.dtype.kind in "biu":
        return "binary" if len(np.unique(y)) <= 2 else "multiclass"
    return "regression"


OPTIONS = ("modalities",)


def load_folder(path: str | Path, seed: int = 0, **options: Any) -> MultimodalDataset:
    """Load a bring-your-own folder (layout in the module docstring). Options: ``modalities`` (subset)."""
    d = Path(path).expanduser()
    unknown_opts = sorted(set(options) - set(OPTIONS))
    if unknown_opts:
        raise ConfigError(f"folder dataset {d} has no option(s) {unknown_opts}; its options: {', '.join(OPTIONS)}")
    mdir = d / "modalities"
    if not mdir.is_dir():
        raise DataNotFoundError(f"{d}: no modalities/ folder (expected modalities/<name>.npy|.npz|.parquet)")
    meta = _read_yaml(d / "dataset.yaml") if (d / "dataset.yaml").exists() else {}
    if not (d / "dataset.yaml").exists() and (d / "dataset.yml").exists():
        meta = _read_yaml(d / "dataset.yml")
    files = {}
    for f in sorted(mdir.iterdir()):
        if f.name.startswith("."):
            continue
        if f.suffix.lower() not in EXTS:
            raise DataValidationError(f"{f}: unknown extension {f.suffix!r}; use one of {', '.join(EXTS)}")
        if f.stem in files:
            raise DataValidationError(f"{mdir}: two files for modality {f.stem!r}")
        files[f.stem] = f
    if not files:
        raise DataNotFoundError(f"{mdir}: no modality files")
    order = [str(m) for m in meta.get("modalities", [])] or sorted(files)
    unknown = [m for m in order if m not in files]
    if unknown:
        raise DataValidationError(f"{d / 'dataset.yaml'}: modalities {unknown} have no file in {mdir}")
    y, ypath = read_labels(d)
    n = len(y)
    arrays, steps = {}, {}
    for m in order:
        x, st = read_modality(files[m])
        if len(x) != n:
            raise DataValidationError(f"{files[m]}: {len(x)} rows but {ypath.name} has {n} labels")
        arrays[m] = x
        if st is not None:
            if st.shape != x.shape[:2]:
                raise DataValidationError(f"{files[m]}: steps shape {st.shape} != {x.shape[:2]}")
            steps[m] = st
    if (d / "mask.npy").exists():
        mask = load_array(d / "mask.npy")
        if mask.shape != (n, len(order)):
            raise DataValidationError(f"{d / 'mask.npy'}: shape {mask.shape}, expected {(n, len(order))}")
        mask = mask.astype(bool)
    else:
        mask = np.ones((n, len(order)), dtype=bool)
    for j, m in enumerate(order):
        x = arrays[m]
        bad = ~np.isfinite(x).reshape(n, -1).all(1)
        if (bad & mask[:, j]).any():
            cnt = int((~np.isfinite(x[bad & mask[:, j]])).sum())
            raise DataValidationError(
                f"{files[m]}: {cnt} NaN/inf values in {int((bad & mask[:, j]).sum())} observed rows; "
                "impute them "
                "or mark those rows missing in mask.npy"
            )
        x[~mask[:, j]] = 0.0
    task = str(meta.get("task") or infer_task(np.asarray(y)))
    if task not in TASKS:
        raise DataValidationError(f"{d / 'dataset.yaml'}: task must be one of {TASKS}, got {task!r}")
    class_names = tuple(str(c) for c in meta.get("class_names", []))
    if task in ("binary", "multiclass"):
        yv = np.asarray(y).reshape(-1)
        if yv.dtype.kind in "OUSb" or not np.all(np.equal(np.mod(yv.astype(float), 1), 0)):
            values = sorted(set(yv.tolist()), key=str)
            class_names = class_names or tuple(str(v) for v in values)
            target_i = np.asarray([values.index(v) for v in yv.tolist()], dtype=np.int64)
        else:
            target_i = yv.astype(np.int64)
            k = int(target_i.max()) + 1 if len(target_i) else 0
            if target_i.min(initial=0) < 0:
                raise DataValidationError(f"{ypath}: class labels must be >= 0")
            class_names = class_names or tuple(str(i) for i in range(max(k, 2)))
        n_cls = max(len(class_names), int(target_i.max(initial=0)) + 1)
        if task == "binary" and n_cls > 2:
            raise DataValidationError(f"{ypath}: task binary but {n_cls} classes")
        target: np.ndarray = target_i if task == "multiclass" else target_i.astype(np.float32)
        num_outputs = n_cls if task == "multiclass" else 1
        strat = target_i
    else:
        target = np.asarray(y, dtype=np.float32)
        if not np.isfinite(target).all():
            raise DataValidationError(f"{ypath}: {int((~np.isfinite(target)).sum())} NaN/inf labels")
        num_outputs = 1 if target.ndim == 1 else target.shape[1]
        strat = np.zeros(n, dtype=np.int64) if target.ndim > 1 else target
    if (d / "split.json").exists():
        splits = read_split(d / "split.json")
        split_info = "split.json"
    else:
        splits = stratified_split(strat, (0.7, 0.15, 0.15), seed=seed)
        split_info = f"stratified 70/15/15, seed {seed}"
    keep = options.get("modalities")
    if isinstance(keep, str):
        keep = [m.strip() for m in keep.split(",") if m.strip()]
    if keep:
        bad_m = [m for m in keep if m not in order]
        if bad_m:
            raise DataValidationError(f"{d}: no modality {bad_m}; modalities: {order}")
        cols = [order.index(m) for m in order if m in keep]
        order = [order[c] for c in cols]
        mask = mask[:, cols]
    specs = tuple(ModalitySpec(m, KIND_BY_NDIM[arrays[m].ndim], tuple(arrays[m].shape[1:])) for m in order)
    spec = DatasetSpec(
        name=str(meta.get("name") or d.name),
        task=task,
        num_outputs=int(num_outputs),
        modalities=specs,
        class_names=class_names if task in ("binary", "multiclass") else tuple(class_names),
    )
    data = MultimodalDataset(
        spec=spec,
        inputs={m: arrays[m] for m in order},
        mask=mask,
        target=target,
        splits=splits,
        steps={m: steps[m] for m in order if m in steps},
        info={"source": f"folder {d}", "protocol": split_info, "split_seed": seed},
    )
    if meta.get("standardize", True):
        standardize_(data)
        data.info["normalisation"] = "z-score, train only"
    return data
