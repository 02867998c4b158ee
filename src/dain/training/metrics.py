"""Task losses and evaluation metrics (torchmetrics functional API)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.functional import classification as C
from torchmetrics.functional import regression as Rg

MONITOR = {
    "binary": ("auroc", "max"),
    "multiclass": ("acc", "max"),
    "multilabel": ("macro_f1", "max"),
    "regression": ("mae", "min"),
}

# Tasks whose monitored metric is a count over a (possibly small) validation split: accuracy and macro-F1 move in steps
# of 1/n, so several epochs tie and "first best" would keep an early, undertrained checkpoint. There the harness selects
# on ``val/select``: the metric, ties broken by the lower validation loss.
TIEBREAK_TASKS = ("multiclass", "multilabel")


def selection_score(metric: float, val_loss: float) -> float:
    """Monitored metric with ties broken by validation loss (the loss term is far below one sample's step)."""
    m = metric if metric == metric else 0.0
    loss = val_loss if val_loss == val_loss else 50.0
    return float(m - 1e-5 * min(max(loss, 0.0), 50.0))


def task_loss(task: str, logits: torch.Tensor, target: torch.Tensor, class_weight: torch.Tensor | None = None):
    """Cross-entropy / BCE / smooth-L1 by task; ``class_weight`` is per class (binary: [w_neg, w_pos])."""
    if task == "multiclass":
        return F.cross_entropy(logits, target.long(), weight=class_weight)
    if task == "binary":
        logit = logits.view(-1)
        t = target.view(-1).float()
        if class_weight is not None:
            w = torch.where(t > 0.5, class_weight[1], class_weight[0])
            return F.binary_cross_entropy_with_logits(logit, t, weight=w)
        return F.binary_cross_entropy_with_logits(logit, t)
    if task == "multilabel":
        pw = None if class_weight is None else class_weight
        return F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=pw)
    return F.smooth_l1_loss(logits.view(-1), target.view(-1).float())


def compute_class_weight(task: str, y: np.ndarray, num_outputs: int) -> torch.Tensor | None:
    """Inverse-frequency ('balanced') weights from training labels."""
    if task == "multiclass":
        counts = np.bincount(y.astype(int), minlength=num_outputs).astype(np.float64)
        w = len(y) / (num_outputs * np.maximum(counts, 1))
        return torch.tensor(w, dtype=torch.float32)
    if task == "binary":
        pos = float(np.mean(y > 0.5))
        return torch.tensor([0.5 / max(1 - pos, 1e-6), 0.5 / max(pos, 1e-6)], dtype=torch.float32)
    if task == "multilabel":
        pos = np.clip(y.mean(0), 1e-6, 1 - 1e-6)
        return torch.tensor((1 - pos) / pos, dtype=torch.float32)
    return None


def predictions(task: str, logits: torch.Tensor) -> torch.Tensor:
    """Probabilities (classification) or values (regression) from logits."""
    if task == "multiclass":
        return logits.softmax(-1)
    if task in ("binary", "multilabel"):
        return torch.sigmoid(logits if task == "multilabel" else logits.view(-1))
    return logits.view(-1)


def compute_metrics(task: str, logits: torch.Tensor, target: torch.Tensor, num_outputs: int) -> dict[str, float]:
    """All metrics of a task on a whole split."""
    p = predictions(task, logits.float())
    out: dict[str, float] = {}
    if task == "multiclass":
        t = target.long()
        out["acc"] = C.multiclass_accuracy(p, t, num_classes=num_outputs, average="micro").item()
        out["macro_f1"] = C.multiclass_f1_score(p, t, num_classes=num_outputs, average="macro").item()
        out["auroc"] = C.multiclass_auroc(p, t, num_classes=num_outputs, average="macro").item()
    elif task == "binary":
        t = target.view(-1).long()
        out["acc"] = C.binary_accuracy(p, t).item()
        out["macro_f1"] = C.multiclass_f1_score((p > 0.5).long(), t, num_classes=2, average="macro").item()
        if t.min() != t.max():
            out["auroc"] = C.binary_auroc(p, t).item()
            out["auprc"] = C.binary_average_precision(p, t).item()
        else:
            out["auroc"] = float("nan")
            out["auprc"] = float("nan")
    elif task == "multilabel":
        t = target.long()
        out["micro_f1"] = C.multilabel_f1_score(p, t, num_labels=num_outputs, average="micro").item()
        out["macro_f1"] = C.multilabel_f1_score(p, t, num_labels=num_outputs, average="macro").item()
        out["acc"] = C.multilabel_accuracy(p, t, num_labels=num_outputs, average="micro").item()
    else:
        t = target.view(-1).float()
        out["mae"] = Rg.mean_absolute_error(p, t).item()
        out["mse"] = Rg.mean_squared_error(p, t).item()
        out["corr"] = Rg.pearson_corrcoef(p, t).item() if len(t) > 1 else float("nan")
    return {k: float(v) for k, v in out.items()}
