"""Small building blocks shared by fusion models."""

from __future__ import annotations

from torch import nn


def mlp_head(d_in: int, hidden: int, d_out: int, dropout: float = 0.1) -> nn.Sequential:
    """LayerNorm -> Linear -> GELU -> Dropout -> Linear."""
    return nn.Sequential(
        nn.LayerNorm(d_in), nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, d_out)
    )
