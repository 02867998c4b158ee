"""Missing modalities on purpose: remove named modalities, or each one at random, from a split or a batch.

A removed modality reaches a model exactly as a modality the data never had: its column of the modality mask is
False, its values are zero (the data contract's fill; models must not read them) and, for sequences, no step is
observed. Two uses:

* at test time (``dain test --drop`` / ``--missing-rate``, ``dain compare --robustness``): :func:`with_missing`
  returns a copy of the dataset with the removal applied to one split; the random draw is keyed on the seed and the
  dataset row, so every model of a comparison loses the same modalities of the same samples, whatever the batching;
* in training (``train.modality_dropout``): :func:`dropout_batch` removes each present modality of each sample with
  probability p, drawn anew every step.

Neither ever removes a sample's last present modality: where every present modality of a sample was drawn, one of
them (chosen at random) is kept. ``--drop`` removes what it names from every sample; a sample that had nothing else
is left empty and counted in the report (models then predict from no input, i.e. from their biases).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dain.data.spec import MultimodalDataset
from dain.errors import ConfigError


@dataclass(frozen=True)
class Missingness:
    """What to remove: the modalities in ``drop`` for every sample, then each remaining present modality of each
    sample with probability ``rate`` (the draw seeded by ``seed``)."""

    drop: tuple[str, ...] = ()
    rate: float = 0.0
    seed: int = 0

    @property
    def active(self) -> bool:
        return bool(self.drop) or self.rate > 0

    def label(self) -> str:
        """Short name of the condition: ``full``, ``drop labs``, ``rate 0.3``, ``drop labs + rate 0.3``."""
        parts = ([f"drop {'+'.join(self.drop)}"] if self.drop else []) + ([f"rate {self.rate:g}"] if self.rate else [])
        return " + ".join(parts) or "full"


def parse_drop(text: str | None) -> tuple[str, ...]:
    """``"labs,summary"`` -> ``("labs", "summary")`` (empty names ignored)."""
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def check_missingness(names: list[str], missing: Missingness, flag: str = "--drop") -> None:
    """Clear errors for unknown modality names, a drop of every modality, or a rate outside [0, 1)."""
    unknown = [n for n in missing.drop if n not in names]
    if unknown:
        raise ConfigError(f"{flag}: unknown modality {unknown[0]!r}; the modalities are {', '.join(names)}")
    if len(set(missing.drop)) == len(names):
        raise ConfigError(f"{flag} removes every modality ({', '.join(names)}); keep at least one")
    if not 0.0 <= float(missing.rate) < 1.0:
        raise ConfigError(f"--missing-rate is a probability in [0, 1), got {missing.rate}")


def keep_one(remove: torch.Tensor, present: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
    """``remove`` (Bool ``[B, M]``) with, in each row where it would remove every present modality, one present
    modality kept: the one with the highest ``pick`` score (uniform random scores -> a uniform choice). Pure tensor
    ops on the inputs' device (no host synchronisation in the training step)."""
    remove = remove & present
    emptied = present.any(1) & ~(present & ~remove).any(1)
    score = torch.where(present, pick, torch.full_like(pick, -torch.inf))
    chosen = torch.nn.functional.one_hot(score.argmax(1), present.shape[1]).bool()
    return remove & ~(chosen & emptied[:, None])


def removal(data: MultimodalDataset, rows: np.ndarray, missing: Missingness) -> np.ndarray:
    """Bool ``[len(rows), M]``: which (sample, modality) pairs ``missing`` removes among those present.

    The random part draws two uniforms per (dataset row, modality) from ``seed``, so a row's draw does not depend on
    which other rows are evaluated or in which order."""
    names = data.spec.modality_names
    check_missingness(names, missing)
    rows = np.asarray(rows, dtype=np.int64)
    present = data.mask[rows].copy()
    remove = np.zeros_like(present)
    for n in missing.drop:
        remove[:, names.index(n)] = True
    remove &= present
    if missing.rate > 0:
        u = np.random.default_rng(missing.seed).random((2, data.n_samples, len(names)))
        left = present & ~remove
        drawn = (u[0][rows] < missing.rate) & left
        remove |= keep_one(torch.from_numpy(drawn), torch.from_numpy(left), torch.from_numpy(u[1][rows])).numpy()
    return remove


def with_missing(data: MultimodalDataset, split: str, missing: Missingness) -> tuple[MultimodalDataset, dict]:
    """A copy of ``data`` whose ``split`` rows lost what ``missing`` removes, and a report of what was removed
    (per modality: the fraction of the split's samples that had it and lost it)."""
    rows = np.asarray(data.splits[split], dtype=np.int64)
    remove = removal(data, rows, missing)
    out = copy.copy(data)  # shallow: arrays that change are copied below, the rest is shared
    out.mask = data.mask.copy()
    out.mask[rows] &= ~remove
    out.inputs = dict(data.inputs)
    out.steps = dict(data.steps)
    for j, name in enumerate(data.spec.modality_names):
        gone = rows[remove[:, j]]
        if len(gone) == 0:
            continue
        x = out.inputs[name] = data.inputs[name].copy()
        x[gone] = 0.0
        if name in out.steps:
            st = out.steps[name] = data.steps[name].copy()
            st[gone] = False
    report = {
        "condition": missing.label(),
        "drop": list(missing.drop),
        "missing_rate": float(missing.rate),
        "seed": int(missing.seed) if missing.rate > 0 else None,
        "split": split,
        "removed_fraction": {n: round(float(remove[:, j].mean()), 4) for j, n in enumerate(data.spec.modality_names)},
        "empty_samples": int((~out.mask[rows].any(1)).sum()),
    }
    return out, report


def dropout_batch(
    batch: dict[str, Any], p: float, names: list[str], generator: torch.Generator | None = None
) -> dict[str, Any]:
    """Training-time modality dropout: a copy of ``batch`` in which each present modality of each sample is removed
    with probability ``p`` (never a sample's last one). ``names``: the modalities in mask-column order. ``p`` 0
    returns ``batch`` itself."""
    if p <= 0:
        return batch
    mask = batch["mask"]
    dev = mask.device
    u = torch.rand((2, *mask.shape), generator=generator, device="cpu").to(dev)
    return apply_removal(batch, keep_one(u[0] < p, mask, u[1]), names)


def apply_removal(batch: dict[str, Any], remove: torch.Tensor, names: list[str]) -> dict[str, Any]:
    """A copy of ``batch`` where ``remove`` (Bool ``[B, M]``, columns in the order of ``names``) is missing: mask
    False, values zero, no sequence step observed."""
    out = dict(batch)
    out["mask"] = batch["mask"] & ~remove
    out["inputs"] = dict(batch["inputs"])
    steps = batch.get("steps")
    if steps is not None:
        out["steps"] = dict(steps)
    for j, name in enumerate(names):
        gone = remove[:, j]
        keep = (~gone).view(-1, *([1] * (batch["inputs"][name].dim() - 1)))
        out["inputs"][name] = batch["inputs"][name] * keep.to(batch["inputs"][name].dtype)
        if steps is not None and name in steps:
            out["steps"][name] = steps[name] & (~gone).view(-1, 1)
    return out
