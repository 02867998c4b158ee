"""The data contract: named modalities with kinds and shapes, a task, fixed splits and a per-sample modality mask.

Every dataset in the registry returns a :class:`MultimodalDataset`; every model is built from its :class:`DatasetSpec`
and consumes batches made by :func:`collate`::

    {"inputs": {modality: Float[B, *shape]}, "mask": Bool[B, M], "target": Long[B] | Float[B, C],
     "steps": {modality: Bool[B, T]} (sequences only), "index": Long[B]}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from dain.errors import DataValidationError

MODALITY_KINDS = ("vector", "sequence", "image")
TASKS = ("binary", "multiclass", "multilabel", "regression")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ModalitySpec:
    """One input source. ``shape`` is per sample: (D,) vector, (T, D) sequence, (C, H, W) image."""

    name: str
    kind: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.kind not in MODALITY_KINDS:
            raise ValueError(f"modality {self.name!r}: kind must be one of {MODALITY_KINDS}, got {self.kind!r}")
        expected = {"vector": 1, "sequence": 2, "image": 3}[self.kind]
        if len(self.shape) != expected:
            raise ValueError(f"modality {self.name!r} of kind {self.kind} needs a {expected}-d shape, got {self.shape}")

    @property
    def feature_dim(self) -> int:
        """Features per token: D for vectors and sequences, C for images."""
        return self.shape[-1] if self.kind != "image" else self.shape[0]


@dataclass(frozen=True)
class DatasetSpec:
    """What a model needs to know about a dataset to be built for it."""

    name: str
    task: str
    num_outputs: int  # logits per sample: classes (multiclass), 1 (binary/regression), labels (multilabel)
    modalities: tuple[ModalitySpec, ...]
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")

    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]

    @property
    def num_modalities(self) -> int:
        return len(self.modalities)

    def modality(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["modalities"] = [{"name": m.name, "kind": m.kind, "shape": list(m.shape)} for m in self.modalities]
        d["class_names"] = list(self.class_names)
        return d


@dataclass
class MultimodalDataset:
    """In-memory multimodal data with fixed splits.

    ``inputs[m]`` is float32 ``[N, *shape]``; rows whose ``mask[:, m]`` is False hold no information (loaders fill
    them with 0 and models must use the mask, never the values). ``steps[m]`` (optional, sequences) marks observed
    time steps. ``splits`` maps train/val/test to index arrays.
    """

    spec: DatasetSpec
    inputs: dict[str, np.ndarray]
    mask: np.ndarray
    target: np.ndarray
    splits: dict[str, np.ndarray]
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    ids: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)  # source, licence, protocol, split seed, notes

    def __post_init__(self) -> None:
        self.validate()

    @property
    def n_samples(self) -> int:
        return int(self.mask.shape[0])

    def validate(self) -> None:
        """Check shapes, mask, labels and finiteness; raise DataValidationError naming the culprit."""
        n = self.mask.shape[0]
        if self.mask.dtype != np.bool_ or self.mask.shape != (n, self.spec.num_modalities):
            raise DataValidationError(
                f"{self.spec.name}: mask must be bool [N, {self.spec.num_modalities}], got "
                f"{self.mask.dtype} {tuple(self.mask.shape)}"
            )
        for m in self.spec.modalities:
            if m.name not in self.inputs:
                raise DataValidationError(f"{self.spec.name}: modality {m.name!r} has no array")
            x = self.inputs[m.name]
            if tuple(x.shape[1:]) != tuple(m.shape) or x.shape[0] != n:
                raise DataValidationError(
                    f"{self.spec.name}: modality {m.name!r} has shape {tuple(x.shape)}, expected {(n, *m.shape)}"
                )
            bad = ~np.isfinite(x)
            if bad.any():
                raise DataValidationError(
                    f"{self.spec.name}: modality {m.name!r} contains {int(bad.sum())} NaN/inf values "
                    f"(in {int(bad.reshape(n, -1).any(1).sum())} samples); impute them or mark the modality missing"
                )
        if len(self.target) != n:
            raise DataValidationError(f"{self.spec.name}: {len(self.target)} targets for {n} samples")
        for s in SPLITS:
            if s not in self.splits:
                raise DataValidationError(f"{self.spec.name}: split {s!r} is missing")
        problem = split_problem({s: np.asarray(self.splits[s]) for s in SPLITS}, n)
        if problem:
            raise DataValidationError(f"{self.spec.name}: {problem}")

    def split_sizes(self) -> dict[str, int]:
        return {s: int(len(self.splits[s])) for s in SPLITS}

    def torch_split(self, split: str) -> SplitView:
        return SplitView(self, np.asarray(self.splits[split], dtype=np.int64))


class SplitView(torch.utils.data.Dataset):
    """A torch Dataset over one split; items are dicts collated by :func:`collate`."""

    def __init__(self, data: MultimodalDataset, index: np.ndarray) -> None:
        self.data = data
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> int:
        return int(self.index[i])

    def make_batch(self, rows: list[int]) -> dict[str, Any]:
        return make_batch(self.data, np.asarray(rows, dtype=np.int64))


def make_batch(data: MultimodalDataset, rows: np.ndarray) -> dict[str, Any]:
    """Gather rows of ``data`` into a model batch (vectorised: one numpy take per modality)."""
    rows = np.asarray(rows, dtype=np.int64)
    inputs = {m: torch.from_numpy(np.ascontiguousarray(x[rows])) for m, x in data.inputs.items()}
    target = data.target[rows]
    if data.spec.task in ("multiclass",):
        t = torch.from_numpy(np.asarray(target, dtype=np.int64))
    else:
        t = torch.from_numpy(np.asarray(target, dtype=np.float32))
    batch: dict[str, Any] = {
        "inputs": inputs,
        "mask": torch.from_numpy(data.mask[rows]),
        "target": t,
        "index": torch.from_numpy(rows),
    }
    if data.steps:
        batch["steps"] = {m: torch.from_numpy(s[rows]) for m, s in data.steps.items()}
    return batch


class BatchCollator:
    """Picklable collate_fn for DataLoader: indices -> batch dict."""

    def __init__(self, data: MultimodalDataset) -> None:
        self.data = data

    def __call__(self, rows: list[int]) -> dict[str, Any]:
        return make_batch(self.data, np.asarray(rows, dtype=np.int64))


def split_problem(splits: dict[str, np.ndarray], n: int) -> str | None:
    """What is wrong with train/val/test row indices for ``n`` rows (out of range, repeated within a split, shared
    by two splits), in words naming the split and rows; None when nothing is."""
    for s in SPLITS:
        idx = np.asarray(splits[s])
        out = idx[(idx < 0) | (idx >= n)]
        if len(out):
            return f"split {s!r} has {len(out)} row index(es) out of range [0, {n}): {out[:5].tolist()}"
        uniq, count = np.unique(idx, return_counts=True)
        if (count > 1).any():
            return f"split {s!r} lists row(s) {uniq[count > 1][:5].tolist()} more than once"
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            both = np.intersect1d(splits[a], splits[b])
            if len(both):
                return f"splits {a!r} and {b!r} share {len(both)} row(s): {both[:5].tolist()}"
    return None


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Share ``total`` items in proportion to integer ``weights`` by largest remainder (exact; ties: earlier first)."""
    w = np.asarray(weights, dtype=np.int64)
    num, den = total * w, max(int(w.sum()), 1)
    out = num // den
    out[np.argsort(-(num % den), kind="stable")[: total - int(out.sum())]] += 1
    return out


def split_counts(n: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)) -> np.ndarray:
    """Train/val/test sizes of ``n`` rows by largest remainder; every split with a fraction above 0 gets a row at least
    when there are rows enough (taken from the largest split), so small data never leaves val or test empty."""
    w = np.round(np.asarray(fractions, dtype=float) * 1e6).astype(np.int64)
    sizes = _apportion(n, w)
    if n >= int((w > 0).sum()):
        for s in np.flatnonzero((w > 0) & (sizes == 0)):
            sizes[np.argmax(sizes)] -= 1
            sizes[s] += 1
    return sizes


def stratified_split(
    y: np.ndarray, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0, stratify: bool = True
) -> dict[str, np.ndarray]:
    """Fixed, seeded train/val/test split, stratified by class: each class's rows are shuffled and cut by rounding its
    own share of each fraction (the registered datasets' recorded protocols rest on this cut). Where that leaves a
    split with a fraction above 0 empty (small data), the sizes are fixed for all rows first (:func:`split_counts`)
    and shared among the classes by largest remainder instead. ``stratify=False`` (regression, multilabel), or ``y``
    that is not 1-D whole numbers with 1000 values at most: a plain seeded shuffle."""
    y = np.asarray(y)
    n = len(y)
    whole = y.ndim == 1 and (y.dtype.kind in "iub" or bool(np.all(np.equal(np.mod(y, 1), 0))))
    if stratify and whole and len(np.unique(y)) <= 1000:
        groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    else:
        groups = [np.arange(n)]
    out = _split_groups(groups, fractions, seed, None)
    if n >= sum(f > 0 for f in fractions) and any(f > 0 and not len(out[s]) for s, f in zip(SPLITS, fractions)):
        out = _split_groups(groups, fractions, seed, split_counts(n, fractions))
    return out


def _split_groups(
    groups: list[np.ndarray], fractions: tuple[float, float, float], seed: int, sizes: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Shuffle each group and cut it: by rounding its own share of each fraction (``sizes`` None), or by largest
    remainder of the overall ``sizes`` still to fill."""
    rng = np.random.default_rng(seed)
    left = None if sizes is None else sizes.copy()
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for g in groups:
        g = rng.permutation(g)
        if left is None:
            n_tr, n_va = int(round(fractions[0] * len(g))), int(round(fractions[1] * len(g)))
        else:
            k = _apportion(len(g), left)
            left -= k
            n_tr, n_va = int(k[0]), int(k[1])
        out["train"].extend(g[:n_tr])
        out["val"].extend(g[n_tr : n_tr + n_va])
        out["test"].extend(g[n_tr + n_va :])
    return {s: np.sort(np.asarray(v, dtype=np.int64)) for s, v in out.items()}


def standardize_(data: MultimodalDataset, eps: float = 1e-6) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Z-score every modality in place with statistics of the *train split's observed rows only*.

    Returns the (mean, std) per modality so they can be stored with a run. Sequences are normalised per feature over
    observed steps.
    """
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    train = np.asarray(data.splits["train"])
    for j, m in enumerate(data.spec.modalities):
        x = data.inputs[m.name]
        rows = train[data.mask[train, j]]
        xt = x[rows]
        if m.kind == "sequence":
            if m.name in data.steps:
                st = data.steps[m.name][rows]
                flat = xt[st]
            else:
                flat = xt.reshape(-1, xt.shape[-1])
            mu = flat.mean(0) if len(flat) else np.zeros(x.shape[-1], np.float32)
            sd = flat.std(0) if len(flat) else np.ones(x.shape[-1], np.float32)
        elif m.kind == "image":
            mu = xt.mean(axis=(0, 2, 3), keepdims=True)[0] if len(xt) else np.zeros((x.shape[1], 1, 1), np.float32)
            sd = xt.std(axis=(0, 2, 3), keepdims=True)[0] if len(xt) else np.ones((x.shape[1], 1, 1), np.float32)
        else:
            mu = xt.mean(0) if len(xt) else np.zeros(x.shape[1:], np.float32)
            sd = xt.std(0) if len(xt) else np.ones(x.shape[1:], np.float32)
        sd = np.where(sd < eps, 1.0, sd)
        xn = ((x - mu) / sd).astype(np.float32)
        xn[~data.mask[:, j]] = 0.0
        if m.kind == "sequence" and m.name in data.steps:
            xn[~data.steps[m.name]] = 0.0
        data.inputs[m.name] = xn
        stats[m.name] = (np.asarray(mu, np.float32), np.asarray(sd, np.float32))
    return stats
