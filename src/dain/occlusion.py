"""Occlusion: how much a trained model's predictions change when one modality, or one DAIN agent, is removed.

This answers "what does the prediction rest on?" by measurement on a split, where routing or consensus weights only
say how the model mixes its parts (a part with a small weight can still decide the answer, and weights can follow the
predicted class rather than the evidence).

* **Modality** (every model): the modality's column of ``batch["mask"]`` is set to False and its values to 0 on every
  row, which is how a missing modality reaches the model (its own missing-modality path; the values are not read).
* **Agent** (DAIN models): a forward hook on the meta-controller sets the agent's score to ``-inf``. A routed agent is
  then never selected (top-k gives its slot to the next available agent, as when the modalities it reads are absent);
  the always-on shared agent stays in the network (its messages still reach the others) but gets no weight in the
  consensus. A row whose only active agent was the removed one has no prediction left and is left out (counted).

For each removal: ``change``, the mean per-row change of the prediction (multiclass: total-variation distance between
the two class distributions; binary / multilabel: mean absolute change of the probabilities; regression: mean absolute
change, target units), ``flipped``, the share of rows whose predicted class changes (classification), and
``metric_drop``, how much the task's monitored metric gets worse (e.g. accuracy or AUROC points; positive = worse).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from dain.data.spec import MultimodalDataset, make_batch
from dain.training.metrics import MONITOR, compute_metrics, predictions

Edit = Callable[[dict[str, Any]], dict[str, Any]]
CHANGE_MEASURE = {
    "multiclass": "total-variation distance between the class distributions",
    "binary": "absolute change of the predicted probability",
    "multilabel": "absolute change of the predicted probabilities (mean over labels)",
    "regression": "absolute change of the prediction (target units)",
}


@torch.no_grad()
def _logits(model: torch.nn.Module, data: MultimodalDataset, rows: np.ndarray, batch_size: int, edit: Edit | None):
    model.eval()
    out = []
    for s in range(0, len(rows), batch_size):
        batch = make_batch(data, rows[s : s + batch_size])
        out.append(model(edit(batch) if edit else batch).logits.float().cpu())
    return torch.cat(out)


def prediction_change(
    task: str, full: torch.Tensor, removed: torch.Tensor, target: torch.Tensor, num_outputs: int
) -> dict[str, Any]:
    """Change between two sets of logits of the same rows (see the module docstring for each number)."""
    n = full.shape[0]
    ok = torch.isfinite(removed.reshape(n, -1)).all(1)
    full, removed, target = full[ok], removed[ok], target[ok]
    res: dict[str, Any] = {"rows": int(ok.sum()), "rows_without_prediction": int(n - ok.sum())}
    if not len(full):
        return {**res, "change": None, "flipped": None, "metric": MONITOR[task][0], "metric_drop": None}
    p, q = predictions(task, full), predictions(task, removed)
    m = len(full)
    if task == "multiclass":
        per = 0.5 * (p - q).abs().sum(-1)
        flipped: float | None = float((p.argmax(-1) != q.argmax(-1)).float().mean())
    else:
        per = (p - q).abs().reshape(m, -1).mean(-1)
        flipped = float(((p > 0.5) != (q > 0.5)).float().mean()) if task != "regression" else None
    metric, mode = MONITOR[task]
    before = compute_metrics(task, full, target, num_outputs).get(metric, float("nan"))
    after = compute_metrics(task, removed, target, num_outputs).get(metric, float("nan"))
    drop = before - after if mode == "max" else after - before
    return {
        **res,
        "change": float(per.mean()),
        "flipped": flipped,
        "metric": metric,
        "metric_full": float(before),
        "metric_removed": float(after),
        "metric_drop": float(drop),
    }


def _drop_modality(j: int, name: str) -> Edit:
    def edit(batch: dict[str, Any]) -> dict[str, Any]:
        mask = batch["mask"].clone()
        mask[:, j] = False
        inputs = dict(batch["inputs"])
        inputs[name] = torch.zeros_like(inputs[name])
        return {**batch, "mask": mask, "inputs": inputs}

    return edit


def has_agents(model: torch.nn.Module) -> bool:
    """Whether :func:`occlusion` can remove agents of ``model`` (a DAIN model: a meta-controller scoring agents)."""
    return hasattr(model, "controller") and hasattr(model, "num_agents") and hasattr(model, "agent_names")


def occlusion(
    model: torch.nn.Module, data: MultimodalDataset, split: str = "test", batch_size: int = 256
) -> dict[str, Any]:
    """Remove each modality (and, for DAIN models, each agent) in turn on ``split``; returns ``{"split", "rows",
    "modalities": {name: change}, "agents": {name: change} (DAIN models only)}`` (see :func:`prediction_change`)."""
    rows = np.asarray(data.splits[split], dtype=np.int64)
    spec = data.spec
    target = torch.from_numpy(np.asarray(data.target[rows]))
    full = _logits(model, data, rows, batch_size, None)

    def measure(edit: Edit | None) -> dict[str, Any]:
        return prediction_change(
            spec.task, full, _logits(model, data, rows, batch_size, edit), target, spec.num_outputs
        )

    out: dict[str, Any] = {"split": split, "rows": int(len(rows)), "change_measure": CHANGE_MEASURE[spec.task]}
    out["modalities"] = {}
    for j, m in enumerate(spec.modalities):
        res = measure(_drop_modality(j, m.name))
        res["observed_share"] = float(data.mask[rows, j].mean())  # rows where there was something to remove
        out["modalities"][m.name] = res
    if has_agents(model):
        out["agents"] = {}
        for k, name in enumerate(model.agent_names):

            def hook(_mod, _inp, scores: torch.Tensor, k: int = k) -> torch.Tensor:
                return scores.index_fill(1, torch.tensor([k], device=scores.device), float("-inf"))

            handle = model.controller.register_forward_hook(hook)
            try:
                out["agents"][str(name)] = measure(None)
            finally:
                handle.remove()
    return out
