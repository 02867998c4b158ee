"""Encoder interface and the multi-modality front-end used by every fusion model.

An encoder maps one modality ``[B, *shape]`` to tokens ``[B, L, d]`` (with a token mask ``[B, L]``) and a pooled
vector ``[B, d]``. :class:`ModalityEncoders` runs one encoder per modality and replaces the outputs of samples whose
modality is missing with a learned per-modality embedding (never silent zeros).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dain.data.spec import DatasetSpec, ModalitySpec
from dain.registry import ENCODERS

DEFAULT_ENCODER = {"vector": "mlp", "sequence": "gru", "image": "cnn"}


@dataclass
class EncodedModality:
    tokens: torch.Tensor  # [B, L, d]
    token_mask: torch.Tensor  # [B, L] bool, True = real token
    pooled: torch.Tensor  # [B, d]


def default_encoder_for(kind: str) -> str:
    return DEFAULT_ENCODER[kind]


def build_encoder(name: str, modality: ModalitySpec, hidden: int, dropout: float = 0.1, layers: int = 1) -> nn.Module:
    """Instantiate encoder ``name`` for ``modality`` with width ``hidden``."""
    cls = ENCODERS.get(name)
    kinds = getattr(cls, "kinds", None)
    if kinds is not None and modality.kind not in kinds:
        raise ValueError(f"encoder {name!r} handles {kinds}, not modality {modality.name!r} of kind {modality.kind}")
    return cls(modality, hidden=hidden, dropout=dropout, layers=layers)


def pool_tokens(t: torch.Tensor, m: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool tokens ``[B, L, d]`` (mask ``[B, L]``) in time to at most ``k`` tokens."""
    L = t.shape[1]
    if L <= k:
        return t, m
    step = -(-L // k)
    pad = step * k - L
    if pad:
        t = nn.functional.pad(t, (0, 0, 0, pad))
        m = nn.functional.pad(m, (0, pad), value=False)
    w = m.to(t.dtype).view(t.shape[0], k, step, 1)
    tp = (t.view(t.shape[0], k, step, -1) * w).sum(2) / w.sum(2).clamp_min(1.0)
    return tp, m.view(m.shape[0], k, step).any(-1)


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    w = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * w).sum(1) / w.sum(1).clamp_min(1.0)


class ModalityEncoders(nn.Module):
    """One encoder per modality plus learned 'missing' embeddings.

    ``encoders`` maps modality name -> encoder name (defaults by kind). Output: dict name -> EncodedModality, where
    rows with ``mask[:, m] == False`` carry the learned missing embedding in both tokens and pooled vector.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        hidden: int,
        dropout: float = 0.1,
        layers: int = 1,
        encoders: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.hidden = hidden
        encoders = encoders or {}
        self.encoders = nn.ModuleDict(
            {
                m.name: build_encoder(encoders.get(m.name, default_encoder_for(m.kind)), m, hidden, dropout, layers)
                for m in spec.modalities
            }
        )
        self.missing = nn.Parameter(torch.randn(spec.num_modalities, hidden) * 0.02)

    def forward(self, batch: dict) -> dict[str, EncodedModality]:
        mask: torch.Tensor = batch["mask"]
        steps = batch.get("steps", {})
        out: dict[str, EncodedModality] = {}
        for j, m in enumerate(self.spec.modalities):
            x = batch["inputs"][m.name]
            enc = self.encoders[m.name](x, steps.get(m.name))
            present = mask[:, j]
            if not bool(present.all()):
                miss = self.missing[j].to(enc.pooled.dtype)
                p = present.view(-1, 1)
                pooled = torch.where(p, enc.pooled, miss.expand_as(enc.pooled))
                tokens = torch.where(p.unsqueeze(-1), enc.tokens, miss.expand_as(enc.tokens))
                tmask = enc.token_mask | ~p  # a missing modality shows its learned embedding as real tokens
                enc = EncodedModality(tokens, tmask, pooled)
            else:
                # keep the missing embedding in the graph so every parameter is reachable (zero contribution)
                enc = EncodedModality(enc.tokens, enc.token_mask, enc.pooled + 0.0 * self.missing[j].sum())
            out[m.name] = enc
        return out
