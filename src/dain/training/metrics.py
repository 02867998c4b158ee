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
    # threshold-free: macro-F1 at 0.5 kept late, overfit checkpoints (P12's outcomes as labels, docs/results.md
    # 2026-12-06); F1's thresholds are tuned on validation after training (dain.training.thresholds)
    "multilabel": ("auroc", "max"),
    "regression": ("mae", "min"),
}

# Tasks whose monitored metric can tie over a (possibly small) validation split: accuracy moves in steps of 1/n, a
# macro AUROC of few positives in coarse steps, so several epochs tie and "first best" would keep an early,
# undertrained checkpoint. There the harness selects on ``val/select``: the metric, ties broken by the lower
# validation loss.
TIEBREAK_TASKS = ("multiclass", "multilabel")


def lower_is_better(metric: str) -> bool:
    """Error metrics, where a loss is a rise (checkpoint mode ``min``)."""
    return metric in ("mae", "mse", "rmse", "loss")


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


def metric_fns(task: str, num_outputs: int) -> dict:
    """Metric name -> fn(probabilities or values, target) of a task, in reporting order."""
    k = num_outputs
    if task == "multiclass":
        return {
            "acc": lambda p, t: C.multiclass_accuracy(p, t.long(), num_classes=k, average="micro"),
            "macro_f1": lambda p, t: C.multiclass_f1_score(p, t.long(), num_classes=k, average="macro"),
            "auroc": lambda p, t: C.multiclass_auroc(p, t.long(), num_classes=k, average="macro"),
        }
    if task == "binary":
        both = lambda fn: lambda p, t: fn(p, t.view(-1).long()) if t.min() != t.max() else float("nan")  # noqa: E731
        return {
            "acc": lambda p, t: C.binary_accuracy(p, t.view(-1).long()),
            "macro_f1": lambda p, t: C.multiclass_f1_score(
                (p > 0.5).long(), t.view(-1).long(), num_classes=2, average="macro"
            ),
            "auroc": both(C.binary_auroc),
            "auprc": both(C.binary_average_precision),
        }
    if task == "multilabel":
        return {
            "micro_f1": lambda p, t: C.multilabel_f1_score(p, t.long(), num_labels=k, average="micro"),
            "macro_f1": lambda p, t: C.multilabel_f1_score(p, t.long(), num_labels=k, average="macro"),
            "acc": lambda p, t: C.multilabel_accuracy(p, t.long(), num_labels=k, average="micro"),
            # threshold-free, as binary's: the mean over labels of each label's AUROC
            "auroc": _macro_auroc_defined,
        }
    return {
        "mae": lambda p, t: Rg.mean_absolute_error(p, t.view(-1).float()),
        "mse": lambda p, t: Rg.mean_squared_error(p, t.view(-1).float()),
        "corr": lambda p, t: Rg.pearson_corrcoef(p, t.view(-1).float()) if len(t) > 1 else float("nan"),
    }


def _macro_auroc_defined(p: torch.Tensor, t: torch.Tensor) -> float:
    """Multilabel macro AUROC over the labels that have both classes in ``t`` (a label without positives, or
    without negatives, has no AUROC; torchmetrics would count it as 0); NaN when no label has both."""
    t = t.long()
    values = [float(C.binary_auroc(p[:, j], t[:, j])) for j in range(t.shape[1]) if 0 < int(t[:, j].sum()) < t.shape[0]]
    return float(np.mean(values)) if values else float("nan")


def compute_metrics(
    task: str, logits: torch.Tensor, target: torch.Tensor, num_outputs: int, only: str | None = None
) -> dict[str, float]:
    """All metrics of a task on a whole split (``only``: just that one, e.g. for bootstrap resamples)."""
    p = predictions(task, logits.float())
    fns = metric_fns(task, num_outputs)
    if only is not None:
        fns = {only: fns[only]}
    return {name: float(fn(p, target)) for name, fn in fns.items()}
