"""FLOP counting with ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, convolutions, attention kernels).

Element-wise ops, gathers and scatters count as 0, so for DAIN the count reflects the agents actually
computed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def batch_size_of(batch: dict) -> int:
    """Number of samples in a model batch."""
    return int(batch["mask"].shape[0])


def count_flops(model: nn.Module, batch: dict, forward: Callable[[dict], Any] | None = None) -> float:
    """FLOPs per sample of one forward pass in eval mode (any registered model; backward is not run).

    ``forward`` (default ``model``) is called with ``batch``; the model's train/eval mode is restored
    afterwards."""
    was_training = model.training
    model.eval()
    fn = forward if forward is not None else model
    try:
        # grad mode stays on: FlopCounterMode's module tracker rejects no-grad views of parameters
        with FlopCounterMode(display=False) as counter:
            fn(batch)
    finally:
        model.train(was_training)
    return float(counter.get_total_flops()) / max(batch_size_of(batch), 1)


def flops_report(model: nn.Module, batch: dict) -> dict[str, float]:
    """``{"flops_per_sample": ..., "flops_per_sample_dense": ...}``; the dense entry only for models that
    implement ``flops_per_sample(batch, dense=...)`` (sparse agent models), else equal to the plain count."""
    if hasattr(model, "flops_per_sample"):
        return {
            "flops_per_sample": float(model.flops_per_sample(batch, dense=False)),
            "flops_per_sample_dense": float(model.flops_per_sample(batch, dense=True)),
        }
    f = count_flops(model, batch)
    return {"flops_per_sample": f, "flops_per_sample_dense": f}
