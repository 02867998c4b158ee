"""Encoders for sequence modalities ``[B, T, D]`` with an optional step mask ``[B, T]``."""

from __future__ import annotations

import math

import torch
from torch import nn

from dain.data.spec import ModalitySpec
from dain.encoders.base import EncodedModality, key_padding, masked_mean
from dain.registry import ENCODERS


def _step_mask(x: torch.Tensor, steps: torch.Tensor | None) -> torch.Tensor:
    if steps is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return steps.to(torch.bool)


def sinusoidal(T: int, d: int, device: torch.device | None = None) -> torch.Tensor:
    pos = torch.arange(T, device=device, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(T, d, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: d // 2])
    return pe


@ENCODERS.register("gru")
class GRUEncoder(nn.Module):
    """Input projection + GRU; tokens are per-step states, pooled = masked mean of states."""

    kinds = ("sequence",)

    def __init__(self, modality: ModalitySpec, hidden: int, dropout: float = 0.1, layers: int = 1) -> None:
        super().__init__()
        self.proj = nn.Linear(modality.shape[1], hidden)
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, steps: torch.Tensor | None = None) -> EncodedModality:
        m = _step_mask(x, steps)
        h, _ = self.gru(torch.relu(self.proj(x)))
        h = self.norm(h)
        return EncodedModality(h, m, masked_mean(h, m))


@ENCODERS.register("transformer_seq")
class TransformerSeqEncoder(nn.Module):
    """Linear projection + sinusoidal positions + Transformer encoder layers (pre-norm)."""

    kinds = ("sequence",)

    def __init__(self, modality: ModalitySpec, hidden: int, dropout: float = 0.1, layers: int = 1) -> None:
        super().__init__()
        self.proj = nn.Linear(modality.shape[1], hidden)
        layer = nn.TransformerEncoderLayer(
            hidden,
            nhead=4 if hidden % 4 == 0 else 1,
            dim_feedforward=2 * hidden,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        self.enc = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.register_buffer("pe", sinusoidal(modality.shape[0], hidden), persistent=False)

    def forward(self, x: torch.Tensor, steps: torch.Tensor | None = None) -> EncodedModality:
        m = _step_mask(x, steps)
        h = self.proj(x) + self.pe[: x.shape[1]]
        # rows with no observed step attend to everything (their output is replaced upstream if the modality is absent)
        pad = ~m & m.any(1, keepdim=True)
        h = self.norm(self.enc(h, src_key_padding_mask=key_padding(pad)))
        return EncodedModality(h, m, masked_mean(h, m))
