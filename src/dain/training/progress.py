"""What a fit prints on stderr: a live bar on a terminal, one line per epoch elsewhere, nothing with ``quiet``.

A tqdm bar redraws itself with carriage returns: on a terminal that is one live line, but in a file (CI, ``nohup``,
``2> log``) every redraw stays, and a short fit fills the log with thousands of them. So ``auto`` (the default) shows
the bar only when stderr is a terminal and otherwise writes one plain line per epoch::

    epoch 3/60  train loss 0.4127  val acc 0.9650 (best 0.9650)  elapsed 12.4s
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from lightning.pytorch.callbacks import Callback, TQDMProgressBar

PROGRESS_MODES = ("auto", "bar", "lines", "quiet")


def resolve_progress(progress: bool | str, stream: TextIO | None = None) -> str:
    """``True``/``"auto"``: ``bar`` when ``stream`` (default stderr) is a terminal, else ``lines``; ``False``:
    ``quiet``; ``bar``/``lines``/``quiet`` as given."""
    if progress is True or progress == "auto":
        s = sys.stderr if stream is None else stream
        return "bar" if getattr(s, "isatty", lambda: False)() else "lines"
    if progress is False:
        return "quiet"
    if progress not in PROGRESS_MODES:
        raise ValueError(f"progress must be one of {PROGRESS_MODES} or a bool, got {progress!r}")
    return str(progress)


class EpochBar(TQDMProgressBar):
    """Training bar on stderr; no separate validation bar (validation is short)."""

    def init_train_tqdm(self):  # noqa: ANN201 (tqdm type)
        bar = super().init_train_tqdm()
        bar.fp = sys.stderr
        return bar

    def init_validation_tqdm(self):  # noqa: ANN201
        bar = super().init_validation_tqdm()
        bar.disable = True
        return bar


class EpochLines(Callback):
    """One line per finished epoch on ``stream`` (default: stderr at the time of writing): epoch, train loss, the
    monitored validation metric (and its best so far), elapsed time since the fit started."""

    def __init__(self, monitor: str, mode: str = "max", stream: TextIO | None = None) -> None:
        self.monitor = monitor
        self.mode = mode
        self.stream = stream
        self.best: float | None = None
        self._t0 = time.perf_counter()

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        loss = m.get("train/loss")
        if loss is not None:
            parts.append(f"train loss {float(loss):.4f}")
        val = m.get(self.monitor)
        if val is not None:
            v = float(val)
            if self.best is None or (v > self.best if self.mode == "max" else v < self.best):
                self.best = v
            parts.append(f"{self.monitor.replace('/', ' ')} {v:.4f} (best {self.best:.4f})")
        parts.append(f"elapsed {time.perf_counter() - self._t0:.1f}s")
        print("  ".join(parts), file=self.stream or sys.stderr, flush=True)


def progress_callbacks(mode: str, monitor: str, monitor_mode: str, n_train_batches: int) -> list[Callback]:
    """The Lightning callbacks that print a fit's progress in ``mode`` (resolved: bar, lines or quiet)."""
    if mode == "bar":
        return [EpochBar(refresh_rate=max(1, n_train_batches // 4))]
    if mode == "lines":
        return [EpochLines(monitor, monitor_mode)]
    return []
