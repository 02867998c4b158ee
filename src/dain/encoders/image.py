"""Encoders for image / spectrogram modalities ``[B, C, H, W]``."""

from __future__ import annotations

import torch
from torch import nn

from dain.data.spec import ModalitySpec
from dain.encoders.base import EncodedModality
from dain.registry import ENCODERS


@ENCODERS.register("cnn")
class SmallCNNEncoder(nn.Module):
    """Small conv net; tokens are the cells of the last feature map, pooled = their mean."""

    kinds = ("image",)

    def __init__(self, modality: ModalitySpec, hidden: int, dropout: float = 0.1, layers: int = 1) -> None:
        super().__init__()
        c = modality.shape[0]
        chans = [c, 32, 64][: 2 + 1]
        blocks: list[nn.Module] = []
        for i in range(len(chans) - 1):
            blocks += [
                nn.Conv2d(chans[i], chans[i + 1], 3, padding=1),
                nn.BatchNorm2d(chans[i + 1]),
                nn.GELU(),
            ]
            if min(modality.shape[1:]) >= 2 ** (i + 2):
                blocks += [nn.MaxPool2d(2)]
        self.conv = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d((min(4, modality.shape[1]), min(4, modality.shape[2])))
        self.proj = nn.Linear(chans[-1], hidden)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, steps: torch.Tensor | None = None) -> EncodedModality:
        f = self.pool(self.conv(x))  # [B, C, h, w]
        t = self.norm(self.drop(self.proj(f.flatten(2).transpose(1, 2))))
        m = torch.ones(t.shape[:2], dtype=torch.bool, device=t.device)
        return EncodedModality(t, m, t.mean(1))
