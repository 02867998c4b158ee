"""Glimpses: cheap, fixed-cost summaries of each modality that DAIN reads *before* any encoder runs.

A glimpse is what the meta-controller and the always-on shared agent see, so that deciding which agents (and
therefore which modality encoders) to run costs a small fraction of running them:

* vector ``[B, D]``: the vector itself;
* sequence ``[B, T, D]`` (optional step mask): masked mean, standard deviation and last observed value per channel;
* image ``[B, C, H, W]``: a 2x2 average pool per channel.

Each summary goes through one linear map to ``min(dim, summary length)`` features and a LayerNorm. Samples whose
modality is missing get a learned per-modality embedding instead (their values are never read)."""

from __future__ import annotations

import torch
from torch import nn

from dain.data.spec import DatasetSpec, ModalitySpec


def summary_dim(m: ModalitySpec) -> int:
    """Length of the raw summary of modality ``m``."""
    if m.kind == "vector":
        return int(m.shape[0])
    if m.kind == "sequence":
        return 3 * int(m.shape[1])
    return 4 * int(m.shape[0])


def summarise(m: ModalitySpec, x: torch.Tensor, steps: torch.Tensor | None = None) -> torch.Tensor:
    """Raw per-sample summary ``[B, summary_dim(m)]`` of one modality (no parameters)."""
    if m.kind == "vector":
        return x
    if m.kind == "sequence":
        B, T, _ = x.shape
        step = torch.ones(B, T, dtype=torch.bool, device=x.device) if steps is None else steps.to(torch.bool)
        w = step.to(x.dtype).unsqueeze(-1)
        n = w.sum(1).clamp_min(1.0)
        mean = (x * w).sum(1) / n
        dev = (x - mean.unsqueeze(1)) * w
        var = (dev * dev).sum(1) / n  # bit-identical to ** 2, 5x faster on CPU
        last_idx = torch.where(
            step, torch.arange(T, device=x.device).view(1, T), torch.zeros_like(step, dtype=torch.long)
        )
        last = x[torch.arange(B, device=x.device), last_idx.max(1).values]
        last = torch.where(step.any(1, keepdim=True), last, 0.0)  # no observed step: no last value (not step 0's)
        return torch.cat([mean, var.clamp_min(0).sqrt(), last], -1)
    return nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)


class Glimpse(nn.Module):
    """Per modality: summary -> Linear -> LayerNorm (missing modalities: a learned embedding); output the
    concatenation ``[B, out_dim]``."""

    def __init__(self, spec: DatasetSpec, dim: int) -> None:
        super().__init__()
        self.spec = spec
        self.dims = [min(dim, summary_dim(m)) for m in spec.modalities]
        self.out_dim = sum(self.dims)
        self.proj = nn.ModuleList([nn.Linear(summary_dim(m), g) for m, g in zip(spec.modalities, self.dims)])
        self.norm = nn.ModuleList([nn.LayerNorm(g) for g in self.dims])
        self.missing = nn.ParameterList([nn.Parameter(torch.randn(g) * 0.02) for g in self.dims])

    def forward(self, batch: dict) -> torch.Tensor:
        mask: torch.Tensor = batch["mask"].to(torch.bool)
        steps = batch.get("steps", {})
        outs = []
        # inference with no missing modality: nothing to mask (one host sync); training keeps every missing
        # embedding in the graph (DDP: no unused parameters)
        complete = not self.training and bool(mask.all())
        for j, m in enumerate(self.spec.modalities):
            x = batch["inputs"][m.name]
            present = mask[:, j : j + 1]
            s = summarise(m, x, steps.get(m.name))
            if self.training:  # a missing row's values must not reach the weight gradients (0 * NaN = NaN)
                s = torch.where(present, s, 0.0)
            g = self.norm[j](self.proj[j](s))
            # a missing row's output is the learned embedding: its values are never read
            outs.append(g if complete else torch.where(present, g, self.missing[j].to(g.dtype)))
        return torch.cat(outs, 1)
