"""What a Lightning checkpoint lacks for ``dain fit --resume`` to continue a run exactly as if it had never stopped.

Lightning restores weights, optimizer, LR scheduler, early stopping and the loops. It does not restore the random
number generators (dropout, router noise), the training loader's shuffle generator (a resumed run would replay the
first epoch's order), the CSV log rows (Lightning's CSV writer starts a fresh ``metrics.csv``) nor the training time
spent before the interruption (for ``fit_seconds``). :class:`ResumeState` stores those in every checkpoint and puts
them back on resume; everything it stores is a tensor or a plain Python value, so checkpoints stay loadable with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch


def rng_state(generators: list[torch.Generator]) -> dict[str, Any]:
    """Every random state a training epoch draws from: torch (CPU, CUDA), numpy, python, and ``generators``."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
        "generators": [g.get_state() for g in generators],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generators: list[torch.Generator]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached"]))
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    saved = state.get("generators", [])
    if len(saved) != len(generators):
        raise ValueError(f"checkpoint holds {len(saved)} loader generator state(s), the run has {len(generators)}")
    for g, s in zip(generators, saved):
        g.set_state(s)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def loader_generators(loader: torch.utils.data.DataLoader) -> list[torch.Generator]:
    """The distinct generators a loader shuffles or samples with (its own and its sampler's)."""
    out: list[torch.Generator] = []
    for g in (getattr(loader, "generator", None), getattr(loader.sampler, "generator", None)):
        if isinstance(g, torch.Generator) and all(g is not h for h in out):
            out.append(g)
    return out


class ResumeState(L.Callback):
    """Saves RNG and loader-generator states, log rows and fit time in each checkpoint; restores them on resume.

    A checkpoint is written at the end of a training epoch (after validation): the states captured then are the
    ones the next epoch starts from, so restoring them at the start of the first resumed epoch makes it draw exactly
    what the uninterrupted run drew. The rows logged so far are kept, the pending row of the checkpoint's epoch
    included, so ``metrics.csv`` of a resumed run equals the uninterrupted one. :attr:`seconds_before` is the fit
    time of the checkpoint's epochs, spent before this process (0 for a fresh run): the runner adds it, so a resumed
    run's ``fit_seconds`` covers all its epochs (time after the checkpoint, in an epoch trained again, is not counted).
    """

    def __init__(self, train_loader: torch.utils.data.DataLoader, log_file: Path | None = None) -> None:
        self.generators = loader_generators(train_loader)
        self.log_file = log_file
        self._pending_rows: list[dict[str, Any]] | None = None
        self.seconds_before = 0.0
        self._started = time.perf_counter()

    # ------------------------------------------------------------------ checkpoint contents
    def state_dict(self) -> dict[str, Any]:
        seconds = self.seconds_before + time.perf_counter() - self._started
        return {"rng": rng_state(self.generators), "log_rows": self._rows(), "fit_seconds": seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # at once: Lightning creates the first resumed epoch's loader iterator (which draws from the shuffle
        # generator) before any epoch hook runs
        if state_dict.get("rng") is not None:
            set_rng_state(state_dict["rng"], self.generators)
        self._pending_rows = state_dict.get("log_rows")
        self.seconds_before = float(state_dict.get("fit_seconds", 0.0))  # 0: a checkpoint saved before it was kept

    def _rows(self) -> list[dict[str, Any]]:
        """Rows written to ``metrics.csv`` plus those the CSV writer still buffers (rank 0; other ranks log none)."""
        pending = self._pending_epoch_row()  # on every rank: computing it may synchronise the processes
        writer = self._writer()
        if writer is None:
            return []
        rows: list[dict[str, Any]] = []
        if self.log_file is not None and self.log_file.exists():
            with open(self.log_file, newline="") as f:
                rows = [dict(r) for r in csv.DictReader(f)]
        rows += [{k: _plain(v) for k, v in r.items()} for r in writer.metrics]
        if pending is not None:
            rows.append(pending)
        return rows

    def _pending_epoch_row(self) -> dict[str, Any] | None:
        """The training-epoch row Lightning logs right *after* the end-of-epoch checkpoint is written (a resumed
        run does not log it again). Read from Lightning's logger connector; None when there is none (or when
        Lightning's internals moved: the run is still reproduced, only that row would be missing)."""
        trainer = getattr(self, "_trainer", None)
        try:
            lc = trainer._logger_connector
            epoch = trainer.fit_loop.epoch_progress.current
            if not (trainer.training and lc._first_loop_iter is None and epoch.processed == epoch.completed + 1):
                return None  # not between "epoch processed" and "epoch row logged"
            row = {k: _plain(v) for k, v in lc.metrics["log"].items()}
            if not row:
                return None
            row["epoch"] = trainer.current_epoch
            row["step"] = trainer.fit_loop.epoch_loop._batches_that_stepped - 1
            return row
        except AttributeError:
            return None

    def _writer(self) -> Any:
        """Lightning's CSV writer on rank 0 (None elsewhere: other ranks get a dummy experiment)."""
        trainer = getattr(self, "_trainer", None)
        if trainer is None or trainer.logger is None or not trainer.is_global_zero:
            return None
        writer = trainer.logger.experiment
        return writer if isinstance(getattr(writer, "metrics", None), list) else None

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer
        self._started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending_rows is not None:
            writer = self._writer()
            if writer is not None:  # the writer removed the old file when it was created: re-log the saved rows
                writer.metrics[:0] = self._pending_rows
            self._pending_rows = None


def _plain(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.item()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v
