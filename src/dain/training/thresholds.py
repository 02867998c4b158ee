"""Per-label decision thresholds of multilabel tasks, tuned on the validation split.

A multilabel F1 counts labels whose probability crosses a threshold. A network trained with (class-weighted) binary
cross-entropy, or a booster, rarely has its F1-optimal threshold at 0.5, and each label has its own. So after
training the harness picks, per label, the threshold that maximises that label's F1 on the validation rows (macro-F1
is their mean, so this maximises it) and stores it in the model as a logit offset (``label_offsets = -logit(t)``),
added to every output by a forward hook. A logit shift moves no label's ranking: AUROC is unchanged, and every
consumer of the logits (``dain test``, ``compare``, ``explain``, the seed ensemble) sees the tuned decisions.
Measured on P12's inputs with three outcomes as labels, 300 training stays (docs/results.md, 2026-12-06): late
fusion's test macro-F1 0.425 -> 0.487 on the same checkpoints, 0.511 with checkpoints selected on macro AUROC (the
multilabel monitor since).

A label with fewer than :data:`MIN_CLASS_ROWS` positive or negative validation rows keeps 0.5: its optimum would
be fitted to a handful of rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dain.data.spec import DatasetSpec

BUFFER = "label_offsets"
MIN_CLASS_ROWS = 5


def f1_optimal_logit(logits: np.ndarray, target: np.ndarray) -> float | None:
    """The logit cut maximising F1 of one label (predict positive above it), midway between the two neighbouring
    distinct scores; ``None`` when either class has fewer than :data:`MIN_CLASS_ROWS` rows."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64) > 0.5
    pos = int(y.sum())
    if pos < MIN_CLASS_ROWS or len(y) - pos < MIN_CLASS_ROWS:
        return None
    order = np.argsort(-z, kind="stable")
    z, y = z[order], y[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    f1 = 2 * tp / (tp + fp + pos)  # predicting the first i + 1 rows positive
    cut_ok = np.append(z[:-1] > z[1:], True)  # only between distinct scores: tied rows fall on one side
    f1 = np.where(cut_ok, f1, -1.0)
    i = int(np.argmax(f1))
    return float((z[i] + z[i + 1]) / 2) if i + 1 < len(z) else float(z[i] - 1.0)


def attach_label_offsets(model: nn.Module, spec: DatasetSpec) -> None:
    """Give a multilabel model its per-label logit offsets (a zero buffer, saved with the weights) and the forward
    hook that adds them; other tasks are left alone."""
    if spec.task != "multilabel" or hasattr(model, BUFFER):
        return
    model.register_buffer(BUFFER, torch.zeros(spec.num_outputs))
    model.register_forward_hook(_add_offsets)


def _add_offsets(module: nn.Module, args: Any, output: Any) -> Any:  # noqa: ANN401
    offsets = getattr(module, BUFFER)
    if hasattr(output, "logits"):
        output.logits = output.logits + offsets.to(output.logits.dtype)
    return output


def f1_optimal_offsets(val_logits: torch.Tensor, val_target: torch.Tensor) -> tuple[torch.Tensor, list[float | None]]:
    """Per-label logit offsets ``-cut`` (0 where a label keeps 0.5) from validation logits taken with no offsets,
    and the cuts themselves (:func:`f1_optimal_logit`)."""
    z, y = val_logits.detach().float().cpu().numpy(), val_target.detach().cpu().numpy()
    cuts = [f1_optimal_logit(z[:, j], y[:, j]) for j in range(z.shape[1])]
    return torch.tensor([0.0 if c is None else -c for c in cuts], dtype=torch.float32), cuts


def tune_label_thresholds(model: nn.Module, val_logits: torch.Tensor, val_target: torch.Tensor) -> dict[str, Any]:
    """Set the model's offsets from its validation logits (taken with the offsets at zero, see
    :func:`attach_label_offsets`); returns the record saved in metrics.json (thresholds as probabilities, ``null``
    where a label kept 0.5)."""
    offsets = getattr(model, BUFFER)
    shift, cuts = f1_optimal_offsets(val_logits, val_target)
    offsets.copy_(shift.to(offsets.dtype))
    return {
        "rule": "per label, the F1-optimal threshold on the validation split",
        "thresholds": [None if c is None else round(float(1 / (1 + np.exp(-c))), 6) for c in cuts],
    }
