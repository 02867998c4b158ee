"""What the token-level MoE baselines (fusemoe, i2moe, flexmoe, moe_topk) share: config fields, set-up (encoders,
modality tokens) and the per-layer routing record."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from dain.data.spec import DatasetSpec
from dain.encoders import EncodedModality, ModalityEncoders
from dain.encoders.base import ModalityTokens, modality_tokens
from dain.models.base import BaseModelConfig
from dain.models.moe_layers import Routing


@dataclass
class TokenFusionConfig(BaseModelConfig):
    """Options of a model fusing every modality's tokens."""

    hidden: int = 64
    encoders: dict[str, str] = field(default_factory=dict)
    fusion_layers: int = 1
    heads: int = 4
    max_tokens_per_modality: int = 16  # sequences are average-pooled in time to at most this many tokens


@dataclass
class TokenMoEConfig(TokenFusionConfig):
    """Plus the options of a top-k routed expert pool."""

    num_experts: int = 8
    top_k: int = 2
    capacity_factor: float = 0.0  # <= 0: unlimited capacity (no token dropping)
    balance_weight: float = 0.01
    router_noise: float = 0.0


class TokenFusionModel(nn.Module):
    """Base of the token-level baselines: keeps ``spec``/``cfg``, builds ``self.encode`` (first, so parameter
    initialisation order is the subclass's) and turns a batch's encodings into :class:`ModalityTokens`. A subclass
    defines ``self.modality_emb`` [M, d]."""

    modality_emb: nn.Parameter

    def __init__(self, spec: DatasetSpec, cfg: TokenFusionConfig) -> None:
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.encode = ModalityEncoders(spec, cfg.hidden, cfg.dropout, cfg.encoder_layers, cfg.encoders)

    def tokens(self, batch: dict, enc: dict[str, EncodedModality], fill: torch.Tensor | None = None) -> ModalityTokens:
        """Every modality's tokens (capped at ``max_tokens_per_modality``) plus the modality embedding."""
        return modality_tokens(
            enc, batch["mask"], self.spec.modality_names, self.modality_emb, self.cfg.max_tokens_per_modality, fill
        )


class RoutingLog:
    """Per-layer expert choices (-1: none, dropped or not routed) and router probabilities of the routed tokens,
    scattered back to all ``B * L`` positions, and which positions were routed (the others, e.g. padding, have no
    routing: their probabilities are 0)."""

    def __init__(self, B: int, L: int, k: int, E: int) -> None:
        self.B, self.L, self.k, self.E = B, L, k, E
        self.choices: list[torch.Tensor] = []
        self.probs: list[torch.Tensor] = []
        self.routed: list[torch.Tensor] = []

    def add(self, r: Routing, routed: torch.Tensor, like: torch.Tensor) -> None:
        """Log one layer: ``r`` over the flat positions where ``routed [B * L]`` is True; ``like`` gives dtype and
        device."""
        n = self.B * self.L
        ch = torch.where(r.keep, r.idx, torch.full_like(r.idx, -1))
        self.choices.append(torch.full((n, self.k), -1, dtype=torch.long, device=like.device).index_put((routed,), ch))
        self.probs.append(like.new_zeros(n, self.E).index_put((routed,), r.probs.detach()))
        self.routed.append(routed)

    def record(self) -> dict[str, torch.Tensor]:
        """``expert_choice`` [B, layers, L, k], ``router_probs`` [B, layers, L, E] and ``router_mask`` [B, layers, L]
        (True where the layer routed the token)."""
        B, L = self.B, self.L
        return {
            "expert_choice": torch.stack(self.choices, 1).view(B, L, -1, self.k).transpose(1, 2),
            "router_probs": torch.stack(self.probs, 1).view(B, L, -1, self.E).transpose(1, 2),
            "router_mask": torch.stack(self.routed, 1).view(B, L, -1).transpose(1, 2),
        }
