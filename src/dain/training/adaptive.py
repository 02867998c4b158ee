"""Validation-calibrated inference for agent models: DAIN spends less where validation says it can.

After training, :func:`calibrate_inference` scores the validation split with the trained setting (top-k at the
trained budget) and with every cheaper candidate: top-k at each lower budget (budget 0 = the always-on shared agent
alone, no encoder runs) and the confidence cascade at each threshold of a fixed grid (capped at the trained budget).
It counts the FLOPs each setting spends per sample on validation rows and keeps the cheapest setting that validation
is confident loses at most ``tolerance``: on ``BOOTSTRAP`` paired bootstrap resamples of the validation rows (the same
rows for every setting) the metric's loss against the trained setting must stay within ``tolerance`` at its one-sided
95% bound (mean + 1.645 std), not merely on average. A mean alone let a setting that flips many rows both ways
through: on AV-digits validation said -0.08 point and test lost 0.45. Only validation rows decide; the test split is
scored once, afterwards, with the chosen setting. When nothing cheaper is within tolerance, the trained setting
stays. So does a validation split too small to resolve the tolerance (fewer than ``1 / tolerance`` rows: 334 for
0.3 point, below which one sample moves accuracy by more than the tolerance); on BasicMotions (8 validation rows)
choosing anyway cost 5.5 test points.

With the tree agent (``tree_agent``), the same step then chooses the weight of the trees' answer in a blend with the
consensus (:func:`_tree_weight`; on P12 the consensus alone scored test AUROC 87.51, the trees alone 88.09 and the
blend fitted offline on validation 88.07, with AUPRC 58.54 / 58.87 / 59.33).

The choice is stored in the model (``DAIN.set_calibration``; saved with the weights), so a loaded run predicts the
way it was scored. ``dain test --budget K`` / ``--adaptive C`` override it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from dain.data.spec import MultimodalDataset, make_batch

# confidence thresholds tried (top-class probability; binary: max(p, 1 - p))
THRESHOLD_GRID = (0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
TREE_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # of the tree agent's answer (blend)
BOOTSTRAP = 200  # paired resamples of the validation rows
CONFIDENCE_Z = 1.645  # one-sided 95%


def bootstrap_loss(
    task: str,
    num_outputs: int,
    metric: str,
    target: torch.Tensor,
    reference: torch.Tensor,
    candidate: torch.Tensor,
    resamples: int = BOOTSTRAP,
    seed: int = 0,
) -> tuple[float, float]:
    """Metric lost by ``candidate`` logits against ``reference`` logits on the same rows (positive = worse), as
    (mean, std) over paired bootstrap resamples of the rows; resamples where the metric is undefined are skipped."""
    from dain.training.metrics import compute_metrics

    sign = 1.0 if _lower_is_better(metric) else -1.0
    n = len(target)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(resamples):
        rows = torch.randint(0, n, (n,), generator=gen)
        t = target.index_select(0, rows)
        a = compute_metrics(task, reference.index_select(0, rows), t, num_outputs, only=metric)[metric]
        b = compute_metrics(task, candidate.index_select(0, rows), t, num_outputs, only=metric)[metric]
        if a == a and b == b:
            losses.append(sign * (b - a))
    if not losses:
        return float("nan"), float("nan")
    arr = np.asarray(losses)
    return float(arr.mean()), float(arr.std())


def min_val_rows(tolerance: float) -> int:
    """Validation rows needed before a metric difference of ``tolerance`` can be told from one sample's flip."""
    return math.ceil(1.0 / tolerance) if tolerance > 0 else 0


def _val_flops(model: torch.nn.Module, data: MultimodalDataset, rows: int = 512) -> float:
    idx = np.asarray(data.splits["val"][:rows], dtype=np.int64)
    return float(model.flops_per_sample(make_batch(data, idx)))


def _lower_is_better(metric: str) -> bool:
    return metric in ("mae", "mse", "rmse", "loss")


def calibrate_inference(
    model: torch.nn.Module,
    data: MultimodalDataset,
    metric: str,
    tolerance: float = 0.003,
    grid: tuple[float, ...] = THRESHOLD_GRID,
) -> dict[str, Any]:
    """Choose the inference setting on validation (see the module docstring) and set it on ``model``.

    ``tolerance`` is in the metric's own units (0.003 = 0.3 point of accuracy or AUROC). Returns a record of every
    setting tried (its validation metric, bootstrap loss mean/std and FLOPs):
    ``{"chosen": {"budget", "threshold"} or None, "metric", "tolerance", "full", "settings": [...]}``
    (``budget`` None = the trained budget; ``threshold`` None = top-k)."""
    from dain.training.runner import evaluate

    model.eval()
    model.set_calibration()
    trained = int(model.budget)
    n_val = len(data.splits["val"])
    need = min_val_rows(tolerance)
    if n_val < need:  # one validation sample would already exceed the tolerance: the choice would be noise
        return {
            "chosen": None,
            "metric": metric,
            "tolerance": tolerance,
            "skipped": f"validation has {n_val} rows; a tolerance of {tolerance:g} needs at least {need}",
            "settings": [],
        }

    spec = data.spec
    reference = evaluate(model, data, "val")

    def score(budget: int | None, threshold: float | None) -> dict[str, Any]:
        model.set_calibration(budget, threshold)
        res = evaluate(model, data, "val") if (budget, threshold) != (None, None) else reference
        lost, sd = bootstrap_loss(spec.task, spec.num_outputs, metric, res.target, reference.logits, res.logits)
        return {
            "budget": budget,
            "threshold": threshold,
            "metric": float(res.metrics[metric]),
            "loss_mean": lost,
            "loss_std": sd,
            "flops_per_sample": _val_flops(model, data),
        }

    full = score(None, None)
    settings = [score(k, None) for k in range(trained)] + [score(None, c) for c in grid]
    best = None
    for s in settings:
        bound = s["loss_mean"] + CONFIDENCE_Z * s["loss_std"]
        s["within_tolerance"] = bool(bound <= tolerance)  # NaN (metric undefined on every resample): never
        cheaper = s["flops_per_sample"] < (best or full)["flops_per_sample"]
        if s["within_tolerance"] and cheaper:
            best = s
    chosen = None if best is None else {"budget": best["budget"], "threshold": best["threshold"]}
    model.set_calibration(**(chosen or {}))
    record = {"chosen": chosen, "metric": metric, "tolerance": tolerance, "full": full, "settings": settings}
    tree = getattr(model, "tree", None)
    if tree is not None and tree.fitted:
        weight, record["tree_weights"] = _tree_weight(model, data, metric, tolerance, chosen or {})
        if weight is not None:
            chosen = record["chosen"] = {**(chosen or {"budget": None, "threshold": None}), "tree_weight": weight}
        model.set_calibration(**(chosen or {}))
    return record


def _tree_weight(
    model: torch.nn.Module,
    data: MultimodalDataset,
    metric: str,
    tolerance: float,
    setting: dict[str, Any],
) -> tuple[float | None, list[dict[str, Any]]]:
    """The weight w of the tree agent's answer in ``(1 - w) * consensus + w * tree`` (every row), chosen on
    validation for the setting already chosen: the best validation metric among the weights of ``TREE_WEIGHTS``
    that beat w = 0 and that the paired bootstrap is confident lose at most ``tolerance`` against w = 0. Why: the
    consensus learns how far to trust each agent on training rows, where the tree's answers are out-of-fold but
    the neural agents' are in-sample, so it under-trusts the tree; validation rows are new to both."""
    from dain.training.runner import evaluate

    sign = -1.0 if _lower_is_better(metric) else 1.0
    model.set_calibration(**setting)
    base = evaluate(model, data, "val")
    tried, best = [], None
    for w in TREE_WEIGHTS:
        model.set_calibration(**setting, tree_weight=w)
        res = evaluate(model, data, "val")
        spec = data.spec
        lost, sd = bootstrap_loss(spec.task, spec.num_outputs, metric, res.target, base.logits, res.logits)
        t = {"tree_weight": w, "metric": float(res.metrics[metric]), "loss_mean": lost, "loss_std": sd}
        t["better"] = bool(sign * (t["metric"] - float(base.metrics[metric])) > 0)
        t["within_tolerance"] = bool(lost + CONFIDENCE_Z * sd <= tolerance)
        tried.append(t)
        if t["better"] and t["within_tolerance"] and (best is None or sign * (t["metric"] - best["metric"]) > 0):
            best = t
    return (None if best is None else best["tree_weight"]), tried


def calibrate_for_run(model: torch.nn.Module, data: MultimodalDataset, metric: str) -> dict[str, Any] | None:
    """The harness's step after training: calibrate an agent model whose config asks for it (``adaptive: auto``)
    and, for transparency, score the *trained* setting on test too (reported beside, never used to choose).
    Returns the calibration record, or ``None`` for models without calibration."""
    from dain.training.metrics import MONITOR
    from dain.training.runner import efficiency, evaluate

    cfg = getattr(model, "cfg", None)
    if getattr(cfg, "adaptive", "off") != "auto" or not hasattr(model, "set_calibration"):
        return None
    metric = MONITOR[data.spec.task][0] if metric == "select" else metric
    record = calibrate_inference(model, data, metric, float(cfg.adaptive_tolerance))
    chosen = record["chosen"]
    if chosen is None:  # the trained setting stays: the harness's own test score is its score (filled in there)
        return record
    model.set_calibration()
    trained = evaluate(model, data, "test")
    record["trained_setting_test"] = trained.metrics
    record["trained_setting_flops_per_sample"] = efficiency(model, data, trained.stats).get("flops_per_sample")
    model.set_calibration(**chosen)
    return record
