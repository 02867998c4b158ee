"""Validation-calibrated inference for agent models: DAIN spends less where validation says it can.

After training, :func:`calibrate_inference` scores the validation split with the trained setting (top-k at the
trained budget) and with every cheaper candidate: top-k at each lower budget (budget 0 = the always-on shared agent
alone, no encoder runs) and the confidence cascade at each threshold of a fixed grid (capped at the trained budget).
It counts the FLOPs each setting spends per sample on validation rows and keeps the cheapest setting that saves at
least ``MIN_SAVING`` (5%) of the trained setting's FLOPs and that validation is confident loses at most
``tolerance``: on ``BOOTSTRAP`` paired bootstrap resamples of the validation rows (the same rows for every setting)
the metric's loss against the trained setting must stay within ``tolerance`` at a one-sided bound that holds at 95%
for all candidates together (mean + z std, Bonferroni: z = 2.69 for 14 candidates; :func:`candidates_z`), not merely
on average. A mean alone let a setting that flips many rows both ways through: on AV-digits
validation said -0.08 point and test lost 0.45. Where the metric is accuracy, the soft accuracy (mean probability of
the true class) must pass the same test on the same resamples: on a saturated validation split (AV-digits: 100% for
every setting) every accuracy loss is 0 +- 0 and the cheapest setting won blind (the 0.93 cascade, -0.67 on test),
while the soft accuracy still sees how much less sure a setting is. Where the metric is a multilabel F1, the macro
AUROC must pass it (:meth:`PairedBootstrap.soft_loss`). Only validation rows decide; the test split is
scored once, afterwards, with the chosen setting. When nothing cheaper is within tolerance, the trained setting
stays. So does a validation split too small to resolve the tolerance (fewer than ``1 / tolerance`` rows: 334 for
0.3 point, below which one sample moves accuracy by more than the tolerance); on BasicMotions (8 validation rows)
choosing anyway cost 5.5 test points. The tree blend below is still tried there: it is chosen for accuracy (it must
beat the consensus alone on validation) and its paired-bootstrap bound widens as the rows get fewer.

With the tree agent (``tree_agent``), the same step then chooses the weight of the trees' answer in a blend with the
consensus (:func:`_tree_weight`; on P12 the consensus alone scored test AUROC 87.51, the trees alone 88.09 and the
blend fitted offline on validation 88.07, with AUPRC 58.54 / 58.87 / 59.33), and, with a blend, how many fold
boosters it scores (:func:`_tree_folds`, by the same bound against all of them). At weight 1 the consensus has no
say in the answer, so the setting becomes budget 0: the shared agent alone runs beside the trees, and no encoder or
routed agent runs for a consensus weighted 0 (the answers are the same; on a 2050-column folder, where calibration
gave the trees the whole answer, the forward had run every encoder for nothing).

The choice is stored in the model (``DAIN.set_calibration``; saved with the weights), so a loaded run predicts the
way it was scored. ``dain test --budget K`` / ``--adaptive C`` override it."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dain.data.spec import MultimodalDataset, make_batch
from dain.training.metrics import lower_is_better

if TYPE_CHECKING:
    from dain.training.runner import EvalResult

# confidence thresholds tried (top-class probability; binary: max(p, 1 - p))
THRESHOLD_GRID = (0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
TREE_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # of the tree agent's answer (blend)
BOOTSTRAP = 200  # paired resamples of the validation rows
# a cheaper setting must save at least this share of the trained setting's FLOPs: a cascade that wakes nearly every
# agent anyway (P12: the 0.999 cascade at 1.00x the FLOPs) only adds sequential rounds of encoder calls (+16% CPU time)
MIN_SAVING = 0.05
CONFIDENCE = 0.95  # one-sided, for the whole family of candidates (Bonferroni: see candidates_z)


class PairedBootstrap:
    """Paired bootstrap of one metric against ``reference`` logits on fixed rows: the resampled rows and the
    reference's metric on each are drawn once, and every candidate is scored on the same resamples."""

    def __init__(
        self,
        task: str,
        num_outputs: int,
        metric: str,
        target: torch.Tensor,
        reference: torch.Tensor,
        resamples: int = BOOTSTRAP,
        seed: int = 0,
    ) -> None:
        self.task, self.num_outputs, self.metric, self.target = task, num_outputs, metric, target
        n = len(target)
        gen = torch.Generator().manual_seed(seed)
        draws = [torch.randint(0, n, (n,), generator=gen) for _ in range(resamples)]
        self.rows = torch.stack(draws) if draws else torch.zeros(0, n, dtype=torch.long)  # [resamples, n]
        self.reference = [self._value(reference, rows) for rows in self.rows]
        self.soft_reference = _true_class_probability(task, metric, reference, target)
        # multilabel F1 counts thresholded labels; its threshold-free counterpart is the macro AUROC
        self.soft_metric = "auroc" if task == "multilabel" and metric != "auroc" else None
        self.soft_values = (
            [self._value(reference, rows, self.soft_metric) for rows in self.rows] if self.soft_metric else []
        )

    def _value(self, logits: torch.Tensor, rows: torch.Tensor, metric: str | None = None) -> float:
        from dain.training.metrics import compute_metrics

        metric = metric or self.metric
        t = self.target.index_select(0, rows)
        return compute_metrics(self.task, logits.index_select(0, rows), t, self.num_outputs, only=metric)[metric]

    def loss(self, candidate: torch.Tensor) -> tuple[float, float]:
        """Metric lost by ``candidate`` (positive = worse) as (mean, std) over the resamples; resamples where the
        metric is undefined are skipped (NaN when it is undefined on all)."""
        return self._paired_loss(candidate, self.metric, self.reference)

    def _paired_loss(self, candidate: torch.Tensor, metric: str, reference: list[float]) -> tuple[float, float]:
        """``metric`` lost by ``candidate`` against the ``reference`` values of the resamples (see :meth:`loss`)."""
        sign = 1.0 if lower_is_better(metric) else -1.0
        losses = []
        for rows, a in zip(self.rows, reference):
            b = self._value(candidate, rows, metric)
            if a == a and b == b:
                losses.append(sign * (b - a))
        if not losses:
            return float("nan"), float("nan")
        arr = np.asarray(losses)
        return float(arr.mean()), float(arr.std())

    def record(self, candidate: torch.Tensor) -> dict[str, float]:
        """A candidate's losses as calibration records them (see :func:`passes`): ``loss_mean`` / ``loss_std``, and
        ``soft_loss_mean`` / ``soft_loss_std`` where the metric has a soft counterpart."""
        lost, sd = self.loss(candidate)
        out = {"loss_mean": lost, "loss_std": sd}
        soft = self.soft_loss(candidate)
        if soft is not None:
            out["soft_loss_mean"], out["soft_loss_std"] = soft
        return out

    def soft_loss(self, candidate: torch.Tensor) -> tuple[float, float] | None:
        """The threshold-free counterpart of the metric lost by ``candidate``, as (mean, std) over the same
        resamples; ``None`` where it has none. Accuracy: the soft accuracy (mean probability of the true class), in
        accuracy's units; it moves with every row's confidence, so it still tells settings apart where validation
        accuracy is saturated (AV-digits: 100% for every setting, hence a loss of 0 +- 0 and a blind choice of the
        cheapest). Multilabel F1: the macro AUROC; a cascade that mixes rows answered by different agents keeps
        the labels that cross 0.5 but can break the ranking across rows (P12 multilabel, 300 training stays: the
        0.9 cascade kept validation macro-F1 and lost 2.4 AUROC points on validation and 2.1 on test)."""
        if self.soft_metric is not None:
            return self._paired_loss(candidate, self.soft_metric, self.soft_values)
        if self.soft_reference is None:
            return None
        cand = _true_class_probability(self.task, self.metric, candidate, self.target)
        losses = (self.soft_reference - cand).double()[self.rows].mean(1).numpy()
        return float(losses.mean()), float(losses.std())


def _true_class_probability(task: str, metric: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Per row, the predicted probability of the true class (its mean is the soft accuracy); ``None`` unless the
    metric is the accuracy of a single-label task."""
    if metric != "acc" or task not in ("multiclass", "binary"):
        return None
    from dain.training.metrics import predictions

    p = predictions(task, logits.float())
    if task == "binary":
        t = target.view(-1).float()
        return torch.where(t > 0.5, p, 1.0 - p)
    return p.gather(1, target.long().view(-1, 1)).squeeze(1)


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
    (mean, std) over paired bootstrap resamples of the rows (:class:`PairedBootstrap`)."""
    return PairedBootstrap(task, num_outputs, metric, target, reference, resamples, seed).loss(candidate)


def candidates_z(n: int) -> float:
    """The z of a one-sided bound that holds for all ``n`` candidates at once (Bonferroni: each at 1 - 0.05 / n;
    1.645 for one). Calibration keeps the cheapest candidate that passes, so a per-candidate 95% bound lets some
    candidate through by chance more often than 5% of the time: on P12's defaults, choosing on one half of
    validation and measuring on the other, 3 of 20 choices lost more than the tolerance with z = 1.645 and 1 of 20
    with the corrected z (2.69 for 14 candidates), at 0.89x instead of 0.77x the trained setting's FLOPs."""
    return NormalDist().inv_cdf(1.0 - (1.0 - CONFIDENCE) / max(int(n), 1))


def confidently_within(loss_mean: float, loss_std: float, tolerance: float, z: float = candidates_z(1)) -> bool:
    """The one-sided bound ``mean + z * std`` of a bootstrap loss is within ``tolerance`` (NaN: never)."""
    return bool(loss_mean + z * loss_std <= tolerance)


def passes(setting: dict[str, Any], tolerance: float, z: float, soft: bool = True) -> bool:
    """A candidate's record passes the bound at ``z``: its metric loss and, where recorded (and ``soft``), its
    soft-accuracy loss are confidently within ``tolerance``."""
    if not confidently_within(setting["loss_mean"], setting["loss_std"], tolerance, z):
        return False
    if not soft or "soft_loss_mean" not in setting:
        return True
    return confidently_within(setting["soft_loss_mean"], setting["soft_loss_std"], tolerance, z)


def cheapest_passing(
    settings: list[dict[str, Any]], full_flops: float, tolerance: float, z: float, soft: bool = True
) -> dict[str, Any] | None:
    """The rule calibration applies to its candidates' records: the cheapest that saves at least ``MIN_SAVING`` of
    ``full_flops`` and :func:`passes` (``None``: the trained setting stays)."""
    best = None
    for s in settings:
        if passes(s, tolerance, z, soft) and s["flops_per_sample"] < (
            best["flops_per_sample"] if best else (1.0 - MIN_SAVING) * full_flops
        ):
            best = s
    return best


def min_val_rows(tolerance: float) -> int:
    """Validation rows needed before a metric difference of ``tolerance`` can be told from one sample's flip."""
    return math.ceil(1.0 / tolerance) if tolerance > 0 else 0


def _val_flops(model: torch.nn.Module, data: MultimodalDataset, rows: int = 512) -> float:
    idx = np.asarray(data.splits["val"][:rows], dtype=np.int64)
    return float(model.flops_per_sample(make_batch(data, idx)))


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
    if n_val < need:  # one validation sample would already exceed the tolerance: a cheaper setting would be noise
        record = {
            "chosen": None,
            "metric": metric,
            "tolerance": tolerance,
            "skipped": f"validation has {n_val} rows; a tolerance of {tolerance:g} needs at least {need}",
            "settings": [],
        }
        # the tree blend is a choice for accuracy, not for compute: it must beat w = 0 on validation, and its bound
        # widens with fewer rows (15-row splits never passed it; 90-300 rows chose a weight in 11 of 14 runs, none
        # lower on test: docs/results.md, issue 12, 2026-12-07 third session)
        return _choose_tree_blend(model, data, metric, tolerance, record, None, fold_counts=False)

    spec = data.spec
    reference = evaluate(model, data, "val")
    boot = PairedBootstrap(spec.task, spec.num_outputs, metric, reference.target, reference.logits)
    evals = {(None, None): reference}  # validation results by (budget, threshold)

    def score(budget: int | None, threshold: float | None) -> dict[str, Any]:
        model.set_calibration(budget, threshold)
        if (budget, threshold) not in evals:
            evals[(budget, threshold)] = evaluate(model, data, "val")
        res = evals[(budget, threshold)]
        return {
            "budget": budget,
            "threshold": threshold,
            "metric": float(res.metrics[metric]),
            **boot.record(res.logits),
            "flops_per_sample": _val_flops(model, data),
        }

    full = score(None, None)
    # regression has no confidence (the cascade would wake every agent at any threshold): lower budgets only
    cascade = () if spec.task == "regression" else grid
    settings = [score(k, None) for k in range(trained)] + [score(None, c) for c in cascade]
    z = candidates_z(len(settings))
    for s in settings:
        s["within_tolerance"] = passes(s, tolerance, z)
    best = cheapest_passing(settings, full["flops_per_sample"], tolerance, z)
    chosen = None if best is None else {"budget": best["budget"], "threshold": best["threshold"]}
    model.set_calibration(**(chosen or {}))
    record = {"chosen": chosen, "metric": metric, "tolerance": tolerance, "z": z, "full": full, "settings": settings}
    base = evals[(best["budget"], best["threshold"]) if best else (None, None)]
    return _choose_tree_blend(model, data, metric, tolerance, record, base, fold_counts=True)


def _choose_tree_blend(
    model: torch.nn.Module,
    data: MultimodalDataset,
    metric: str,
    tolerance: float,
    record: dict[str, Any],
    base: EvalResult | None,
    fold_counts: bool,
) -> dict[str, Any]:
    """With a fitted tree agent: the blend weight for ``record["chosen"]`` (``base``: its validation result, ``None``:
    evaluated here) and, with ``fold_counts``, how many fold boosters the blend scores; set on ``model`` and noted in
    ``record``, which is returned."""
    from dain.training.runner import evaluate

    tree = getattr(model, "tree", None)
    if tree is None or not tree.fitted:
        return record
    chosen = record["chosen"]  # already set on the model by the caller
    base = evaluate(model, data, "val") if base is None else base
    weight, record["tree_weights"] = _tree_weight(model, data, metric, tolerance, chosen or {}, base)
    if weight is not None:
        setting = chosen or {"budget": None, "threshold": None}
        if weight >= 1.0:  # the trees give the whole answer: run no encoder or routed agent for a consensus
            setting = {"budget": 0, "threshold": None}  # weighted 0 (the shared agent alone; same answers)
        chosen = record["chosen"] = {**setting, "tree_weight": weight}
        if fold_counts:
            folds, record["tree_folds"] = _tree_folds(model, data, metric, tolerance, chosen)
            if folds is not None:
                chosen["tree_folds"] = folds
    model.set_calibration(**(chosen or {}))
    return record


def _tree_folds(
    model: torch.nn.Module,
    data: MultimodalDataset,
    metric: str,
    tolerance: float,
    setting: dict[str, Any],
) -> tuple[int | None, list[dict[str, Any]]]:
    """How many of the tree agent's fold boosters the chosen ``setting`` (with its blend) scores: the fewest whose
    validation answers the paired bootstrap is confident lose at most ``tolerance`` against all of them (``None``:
    all). Why: the blend scores the boosters on every row, and their time is in the tree traversals, which the FLOP
    count prices at one operation per level (P12: 61 of DAIN's 122 ms per 256 stays), so this saving is in time, not
    FLOPs. Each count is scored by the whole forward (the routed tree agent answers with the same boosters)."""
    from dain.training.runner import evaluate

    spec, folds = data.spec, model.tree.folds
    model.set_calibration(**setting)
    reference = evaluate(model, data, "val")
    boot = PairedBootstrap(spec.task, spec.num_outputs, metric, reference.target, reference.logits)
    z = candidates_z(folds - 1)
    tried, best = [], None
    for k in range(1, folds):
        model.set_calibration(**setting, tree_folds=k)
        t = {"tree_folds": k, **boot.record(evaluate(model, data, "val").logits)}
        t["within_tolerance"] = passes(t, tolerance, z)
        tried.append(t)
        if t["within_tolerance"]:
            best = k
            break
    model.set_calibration(**setting)
    return best, tried


def _tree_weight(
    model: torch.nn.Module,
    data: MultimodalDataset,
    metric: str,
    tolerance: float,
    setting: dict[str, Any],
    base: EvalResult,
) -> tuple[float | None, list[dict[str, Any]]]:
    """The weight w of the tree agent's answer in ``(1 - w) * consensus + w * tree`` (every row), chosen on
    validation for the setting already chosen (``base``: its validation result): the best validation metric among
    the weights of ``TREE_WEIGHTS`` that beat w = 0 and that the paired bootstrap is confident lose at most
    ``tolerance`` against w = 0. Why: the consensus learns how far to trust each agent on training rows, where the
    tree's answers are out-of-fold but the neural agents' are in-sample, so it under-trusts the tree; validation
    rows are new to both. The blend is linear in the two answers, so the trees score the validation rows once and
    every weight's logits are formed from ``base.logits`` and theirs, as the forward forms them."""
    from dain.training.metrics import compute_metrics

    sign = -1.0 if lower_is_better(metric) else 1.0
    spec = data.spec
    boot = PairedBootstrap(spec.task, spec.num_outputs, metric, base.target, base.logits)
    model.set_calibration(**setting)
    with torch.no_grad():
        trees = model.tree(make_batch(data, base.index)).to(base.logits.dtype)
    tried, best = [], None
    z = candidates_z(len(TREE_WEIGHTS))
    for w in TREE_WEIGHTS:
        logits = (1.0 - w) * base.logits + w * trees
        lost, sd = boot.loss(logits)
        value = compute_metrics(spec.task, logits, base.target, spec.num_outputs, only=metric)[metric]
        t = {"tree_weight": w, "metric": float(value), "loss_mean": lost, "loss_std": sd}
        t["better"] = bool(sign * (t["metric"] - float(base.metrics[metric])) > 0)
        t["within_tolerance"] = confidently_within(lost, sd, tolerance, z)
        tried.append(t)
        if t["better"] and t["within_tolerance"] and (best is None or sign * (t["metric"] - best["metric"]) > 0):
            best = t
    return (None if best is None else best["tree_weight"]), tried


def calibrate_for_run(model: torch.nn.Module, data: MultimodalDataset, metric: str) -> dict[str, Any] | None:
    """The harness's step after training: calibrate an agent model whose config asks for it (``adaptive: auto``)
    and, for transparency, score the *trained* setting on test too (reported beside, never used to choose).
    ``metric``: the monitored one; a monitor that is no metric of the task (``select``, ``loss``) calibrates on the
    task's primary metric. Returns the calibration record, or ``None`` for models without calibration."""
    from dain.training.metrics import MONITOR, metric_fns
    from dain.training.runner import efficiency, evaluate
    from dain.training.thresholds import BUFFER, tune_label_thresholds

    cfg = getattr(model, "cfg", None)
    if getattr(cfg, "adaptive", "off") != "auto" or not hasattr(model, "set_calibration"):
        return None
    if metric not in metric_fns(data.spec.task, data.spec.num_outputs):
        metric = MONITOR[data.spec.task][0]
    record = calibrate_inference(model, data, metric, float(cfg.adaptive_tolerance))
    chosen = record["chosen"]
    if chosen is None:  # the trained setting stays: the harness's own test score is its score (filled in there)
        return record
    model.set_calibration()
    offsets = getattr(model, BUFFER, None)
    if offsets is not None:
        # multilabel: the harness scores the chosen setting on test with per-label thresholds tuned on validation
        # for it (runner._finish); the trained setting gets the same treatment, its own thresholds tuned on its own
        # validation logits, so both test scores are taken on the same footing. Offsets at zero again afterwards.
        offsets.zero_()
        val = evaluate(model, data, "val")
        tune_label_thresholds(model, val.logits, val.target)
    trained = evaluate(model, data, "test")
    if offsets is not None:
        offsets.zero_()
    record["trained_setting_test"] = trained.metrics
    record["trained_setting_flops_per_sample"] = efficiency(model, data, trained.stats).get("flops_per_sample")
    model.set_calibration(**chosen)
    return record
