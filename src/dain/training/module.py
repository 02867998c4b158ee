"""Lightning wrapper around any registered model: task loss + the model's named auxiliary losses."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch

from dain.config import TrainConfig
from dain.data.missing import dropout_batch
from dain.data.spec import DatasetSpec
from dain.training.metrics import MONITOR, TIEBREAK_TASKS, compute_metrics, lower_is_better, selection_score, task_loss


def _worst_if_nan(metric: str, value: float) -> float:
    """A NaN validation metric as the worst value of its direction, so checkpoint selection never keeps it as best:
    +inf for error metrics (diverged predictions; early stopping's finiteness check then stops the run), 0.0 for
    scores (an AUROC undefined on a one-class validation split must not stop training)."""
    if value == value:
        return value
    return float("inf") if lower_is_better(metric) else 0.0


class FusionModule(L.LightningModule):
    """Trains ``model`` on ``spec.task``; logs every auxiliary loss term separately and val metrics per epoch."""

    def __init__(
        self,
        model: torch.nn.Module,
        spec: DatasetSpec,
        train_cfg: TrainConfig,
        class_weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.spec = spec
        self.train_cfg = train_cfg
        if class_weight is not None:
            self.register_buffer("class_weight", class_weight)
        else:
            self.class_weight = None
        self._val_logits: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def forward(self, batch: dict[str, Any]):
        return self.model(batch)

    def on_train_start(self) -> None:
        """Fit the cosine schedule to the trainer's ``max_epochs``. A resumed run's scheduler comes from the checkpoint
        with the ``T_max`` it was started with; after ``max_epochs`` is raised it would climb back up past the old end.
        Here (after the checkpoint is restored) the schedule gets the new length and the LR its value on the new curve
        at the current epoch, so the remaining epochs follow the curve of an uninterrupted run of that length."""
        sched = self.lr_schedulers()
        t_max = max(1, int(self.trainer.max_epochs or 1))
        if not isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR) or sched.T_max == t_max:
            return  # a fresh run, or resumed with its max_epochs: untouched, so it continues bit for bit
        sched.T_max = t_max
        progress = (1 + math.cos(math.pi * sched.last_epoch / t_max)) / 2
        for group, base in zip(sched.optimizer.param_groups, sched.base_lrs):
            group["lr"] = sched.eta_min + (base - sched.eta_min) * progress
        sched._last_lr = [g["lr"] for g in sched.optimizer.param_groups]

    def on_train_epoch_start(self) -> None:
        if hasattr(self.model, "set_epoch"):
            self.model.set_epoch(self.current_epoch)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if self.train_cfg.modality_dropout > 0:
            batch = dropout_batch(batch, self.train_cfg.modality_dropout, self.spec.modality_names)
        out = self.model(batch)
        loss_task = task_loss(self.spec.task, out.logits, batch["target"], self.class_weight)
        total = loss_task
        bs = batch["mask"].shape[0]
        self.log("train/loss_task", loss_task, on_step=False, on_epoch=True, batch_size=bs, sync_dist=True)
        for name, value in out.losses.items():
            total = total + value
            self.log(f"train/loss_{name}", value, on_step=False, on_epoch=True, batch_size=bs, sync_dist=True)
        for name, value in out.stats.items():
            self.log(f"train/{name}", value.float().mean(), on_step=False, on_epoch=True, batch_size=bs, sync_dist=True)
        self.log("train/loss", total, on_step=False, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        return total

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        out = self.model(batch)
        self._val_logits.append(out.logits.detach().float().cpu())
        self._val_targets.append(batch["target"].detach().cpu())
        loss = task_loss(self.spec.task, out.logits, batch["target"], None)
        self.log("val/loss", loss, on_step=False, on_epoch=True, batch_size=batch["mask"].shape[0], sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        if not self._val_logits:
            return
        logits = torch.cat(self._val_logits)
        target = torch.cat(self._val_targets)
        self._val_logits.clear()
        self._val_targets.clear()
        # DDP: metrics here are per process; the final val/test metrics are recomputed on the full split after fit.
        metrics = compute_metrics(self.spec.task, logits, target, self.spec.num_outputs)
        for k, v in metrics.items():
            self.log(f"val/{k}", _worst_if_nan(k, v), prog_bar=k in ("acc", "auroc"), sync_dist=True)
        if self.spec.task in TIEBREAK_TASKS:
            primary = metrics.get(MONITOR[self.spec.task][0], 0.0)
            loss = float(task_loss(self.spec.task, logits, target, None))
            self.log("val/select", selection_score(primary, loss), sync_dist=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.train_cfg.lr, weight_decay=self.train_cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(1, self.train_cfg.max_epochs), eta_min=self.train_cfg.lr * 0.05
        )
        return {"optimizer": opt, "lr_scheduler": sched}
