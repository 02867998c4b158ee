"""Encoders for sequence modalities ``[B, T, D]`` with an optional step mask ``[B, T]``."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

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


def trailing_lengths(steps: torch.Tensor | None, T: int) -> torch.Tensor | None:
    """Per row, the steps up to and including its last observed one (CPU Long [B], at least 1), or ``None`` when
    every row runs to step ``T`` (nothing to skip; one host sync)."""
    if steps is None:
        return None
    pos = torch.arange(1, T + 1, device=steps.device)
    lengths = (steps.to(torch.bool) * pos).amax(1).clamp_min(1).cpu()
    return None if int(lengths.min()) == T else lengths


@ENCODERS.register("gru")
class GRUEncoder(nn.Module):
    """Input projection + GRU; tokens are per-step states, pooled = masked mean of states.

    The GRU is causal, so the steps after a row's last observed one change none of its observed states: they are
    skipped (a packed sequence; AV-digits' audio is 45% trailing padding, and the GRU runs 29% faster on it). Their
    tokens are the LayerNorm of a zero state; the step mask marks them unobserved, as before."""

    kinds = ("sequence",)

    def __init__(self, modality: ModalitySpec, hidden: int, dropout: float = 0.1, layers: int = 1) -> None:
        super().__init__()
        self.proj = nn.Linear(modality.shape[1], hidden)
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, steps: torch.Tensor | None = None) -> EncodedModality:
        m = _step_mask(x, steps)
        h = torch.relu(self.proj(x))
        lengths = trailing_lengths(steps, x.shape[1])
        if lengths is None:
            h, _ = self.gru(h)
        else:
            packed = pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
            h = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])[0]
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
