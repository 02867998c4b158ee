"""Bring-your-own data: load a folder of per-modality arrays without writing code.

Layout::

    <dir>/modalities/<name>.npy | .npz | .parquet   one file per modality, rows = samples
         (N, D) vector, (N, T, D) sequence, (N, C, H, W) image; .npz: first array (or key "x"),
         optional key "steps" (N, T) bool for sequences; .parquet: vectors only (all columns numeric)
    <dir>/labels.npy | labels.csv                    (N,) or (N, L); csv: column "label" (or all columns)
    <dir>/split.json        optional {"train": [...], "val": [...], "test": [...]} row indices
                            (default: seeded 70/15/15, stratified by class; regression/multilabel: shuffled)
    <dir>/mask.npy          optional (N, M) bool modality mask (True = observed), columns in modality order
    <dir>/dataset.yaml      optional: name, task, modalities (order), class_names, standardize (default true)

Modality order: ``modalities`` of dataset.yaml, else sorted file names. Task (unless given): 1-D integers with
2 values -> binary, more -> multiclass; floats -> regression; 2-D 0/1 -> multilabel. Class labels other than 0..C-1
(text, {1, 2}, {-1, 1}) are numbered in sorted order, or by ``class_names`` when given. Rows whose modality is
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

from dain.data.spec import (
    TASKS,
    DatasetSpec,
    ModalitySpec,
    MultimodalDataset,
    split_problem,
    standardize_,
    stratified_split,
)
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
                keys = ["x"] if "x" in z.files else [k for k in z.files if k != "steps"]
                if not keys:
                    raise DataValidationError(
                        f"{path}: holds only 'steps', no data array; save the values under key 'x' "
                        "(np.savez(path, x=values, steps=steps))"
                    )
                key = keys[0]
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
    if 0 in x.shape[1:]:
        raise DataValidationError(f"{path}: shape {x.shape} holds no features per sample (an empty array)")
    if steps is not None and x.ndim != 3:
        raise DataValidationError(f"{path}: 'steps' marks time steps of sequences (N,T,D), but the array is {x.shape}")
    return x.astype(np.float32), steps


def read_labels(d: Path) -> tuple[np.ndarray, Path]:
    """``labels.npy`` or ``labels.csv`` (column ``label``, else every column) -> (N,) or (N, L) labels and the file."""
    for name in ("labels.npy", "labels.csv"):
        p = d / name
        if not p.exists():
            continue
        y = load_array(p) if p.suffix == ".npy" else _read_label_csv(p)
        if y.ndim not in (1, 2):
            raise DataValidationError(f"{p}: labels of shape {y.shape}; expected (N,) or (N, L)")
        return y, p
    raise DataNotFoundError(f"{d}: no labels.npy or labels.csv (column 'label')")


def _read_label_csv(p: Path) -> np.ndarray:
    """The label column(s) of a CSV as (N,) or (N, L); a blank cell is an error naming its line (blank lines count
    as rows, so line numbers match the file; trailing blank lines are ignored)."""
    try:
        df = pd.read_csv(p, skip_blank_lines=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataValidationError(f"{p}: not a readable CSV ({e}); expected a column 'label'") from e
    if "label" in df.columns:
        df = df[["label"]]
    while len(df) and df.iloc[-1].isna().all():
        df = df.iloc[:-1]
    blank = np.flatnonzero(df.isna().any(axis=1).to_numpy())
    if len(blank):
        lines = (blank + 2).tolist()
        raise DataValidationError(
            f"{p}: {len(blank)} row(s) with an empty label, at line(s) {lines[:10]}"
            f"{' ...' if len(lines) > 10 else ''} (line 1 is the header); every sample needs a label"
        )
    y = df.to_numpy()
    return y[:, 0] if y.shape[1] == 1 else y


def read_split(path: Path, n: int) -> dict[str, np.ndarray]:
    """``split.json``: ``{"train": [...], "val": [...], "test": [...]}`` lists of row indices (integers) in
    ``[0, n)``, none listed twice."""
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
    problem = split_problem(out, n)
    if problem:
        raise DataValidationError(f"{path}: {problem}")
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


def _name_list(meta: dict[str, Any], key: str, path: Path) -> list[str]:
    """A list setting of dataset.yaml as strings; a plain string is a comma-separated list (``modalities: audio``)."""
    v = meta.get(key)
    if v is None:
        return []
    if isinstance(v, str):
        return [x.strip() for x in v.split(",") if x.strip()]
    if not isinstance(v, list):
        raise DataValidationError(f"{path}: {key} must be a list, e.g. {key}: [a, b], got {v!r}")
    return [str(x) for x in v]


def class_targets(
    y: np.ndarray, ypath: Path, class_names: list[str], mpath: Path
) -> tuple[np.ndarray, tuple[str, ...]]:
    """1-D class labels -> class indices 0..C-1 and the class names.

    With ``class_names`` (dataset.yaml) labels are numbered by that list: integer labels 0..K-1 are indices into it,
    any other label must be one of its names. Without, integer labels 0..C-1 stay as they are, and other labels (text,
    {1, 2}, {-1, 1}, 0.5) are numbered in sorted order and named by their values.
    """
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataValidationError(f"{ypath}: {int((~np.isfinite(y)).sum())} NaN/inf class labels")
    text = y.dtype.kind in "OUSb" or not np.all(np.mod(y, 1) == 0)
    keys = np.asarray([str(v) for v in y.tolist()]) if y.dtype.kind in "OUSb" else y if text else y.astype(np.int64)
    values = np.unique(keys)
    is_index = not text and len(values) > 0 and values[0] >= 0
    if class_names:
        if len(set(class_names)) < len(class_names):
            raise DataValidationError(f"{mpath}: class_names {class_names} lists a name more than once")
        if is_index and values[-1] < len(class_names):
            return keys, tuple(class_names)
        pos = {c: i for i, c in enumerate(class_names)}
        unknown = [str(v) for v in values if str(v) not in pos]
        if unknown:
            raise DataValidationError(
                f"{ypath}: label(s) {unknown[:5]} not in class_names {class_names} of {mpath}"
                + ("" if text else f" (nor indices 0..{len(class_names) - 1} into it)")
            )
        return np.asarray([pos[str(v)] for v in keys.tolist()], dtype=np.int64), tuple(class_names)
    k = max(len(values), 2)
    if is_index and values[-1] < k:
        return keys, tuple(str(i) for i in range(k))
    return np.searchsorted(values, keys).astype(np.int64), tuple(str(v) for v in values.tolist())


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
    mpath = (
        d / "dataset.yaml" if (d / "dataset.yaml").exists() or not (d / "dataset.yml").exists() else d / "dataset.yml"
    )
    meta = _read_yaml(mpath) if mpath.exists() else {}
    standardize = meta.get("standardize", True)
    if not isinstance(standardize, bool):
        raise DataValidationError(f"{mpath}: standardize must be true or false (unquoted), got {standardize!r}")
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
    order = _name_list(meta, "modalities", mpath) or sorted(files)
    unknown = [m for m in order if m not in files]
    if unknown:
        raise DataValidationError(f"{mpath}: modalities {unknown} have no file in {mdir}")
    y, ypath = read_labels(d)
    n = len(y)
    if n == 0:
        raise DataValidationError(f"{ypath}: no labels (0 rows)")
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
    task = str(meta.get("task") or infer_task(y))
    if task not in TASKS:
        raise DataValidationError(f"{mpath}: task must be one of {TASKS}, got {task!r}")
    if task in ("binary", "multiclass"):
        if y.ndim == 2 and y.shape[1] > 1:
            raise DataValidationError(f"{ypath}: task {task} needs one label per sample, got labels of shape {y.shape}")
        target_i, class_names = class_targets(y.reshape(-1), ypath, _name_list(meta, "class_names", mpath), mpath)
        if task == "binary" and len(class_names) > 2:
            if "task" in meta:
                raise DataValidationError(f"{ypath}: task binary but {len(class_names)} classes {class_names[:5]}")
            task = "multiclass"
        target: np.ndarray = target_i if task == "multiclass" else target_i.astype(np.float32)
        num_outputs = len(class_names) if task == "multiclass" else 1
    else:
        if y.dtype.kind in "OUS":
            raise DataValidationError(
                f"{ypath}: text labels (e.g. {y.reshape(-1)[0]!r}) cannot be {task} targets, which are numbers; "
                "for classes give one column 'label' (task binary or multiclass)"
            )
        target = np.asarray(y, dtype=np.float32)
        if not np.isfinite(target).all():
            raise DataValidationError(f"{ypath}: {int((~np.isfinite(target)).sum())} NaN/inf labels")
        num_outputs = 1 if target.ndim == 1 else target.shape[1]
        class_names = tuple(_name_list(meta, "class_names", mpath))  # multilabel: the label names
    if (d / "split.json").exists():
        splits = read_split(d / "split.json", n)
        split_info = "split.json"
    else:
        # classes are stratified; regression and multilabel targets get a plain seeded shuffle
        classes = task in ("binary", "multiclass")
        splits = stratified_split(target, (0.7, 0.15, 0.15), seed=seed, stratify=classes)
        split_info = f"{'stratified' if classes else 'shuffled'} 70/15/15, seed {seed}"
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
        class_names=class_names,
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
    if standardize:
        standardize_(data)
        data.info["normalisation"] = "z-score, train only"
    return data
