"""Encoders for vector modalities."""

from __future__ import annotations

import torch
from torch import nn

from dain.data.spec import ModalitySpec
from dain.encoders.base import EncodedModality
from dain.registry import ENCODERS


@ENCODERS.register("mlp")
class MLPEncoder(nn.Module):
    """LayerNorm-MLP for a feature vector; one token (the pooled vector)."""

    kinds = ("vector",)

    def __init__(self, modality: ModalitySpec, hidden: int, dropout: float = 0.1, layers: int = 1) -> None:
        super().__init__()
        dims = [modality.shape[0]] + [hidden] * (layers + 1)
        blocks: list[nn.Module] = []
        for i in range(len(dims) - 1):
            blocks += [nn.Linear(dims[i], dims[i + 1])]
            if i < len(dims) - 2:
                blocks += [nn.GELU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*blocks)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, steps: torch.Tensor | None = None) -> EncodedModality:
        h = self.norm(self.net(x))
        return EncodedModality(h.unsqueeze(1), torch.ones(h.shape[0], 1, dtype=torch.bool, device=h.device), h)


@ENCODERS.register("mlp_tokens")
class MLPTokenEncoder(nn.Module):
    """Splits a long vector into ``n`` chunks, each projected to a token (for token-level fusion/MoE models)."""

    kinds = ("vector",)

    def __init__(self, modality: ModalitySpec, hidden: int, dropout: float = 0.1, layers: int = 1, n: int = 4):
        super().__init__()
        d = modality.shape[0]
        self.n = max(1, min(n, d))
        self.chunk = -(-d // self.n)
        self.pad = self.chunk * self.n - d
        self.proj = nn.Linear(self.chunk, hidden)
        self.pos = nn.Parameter(torch.randn(self.n, hidden) * 0.02)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, steps: torch.Tensor | None = None) -> EncodedModality:
        if self.pad:
            x = nn.functional.pad(x, (0, self.pad))
        t = self.norm(self.drop(self.proj(x.view(x.shape[0], self.n, self.chunk))) + self.pos)
        m = torch.ones(t.shape[:2], dtype=torch.bool, device=t.device)
        return EncodedModality(t, m, t.mean(1))
