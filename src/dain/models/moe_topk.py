"""Token-level sparse mixture-of-experts transformer (Switch Transformer, Fedus et al., JMLR 2022; GShard,
Lepikhin et al., ICLR 2021) used as a multimodal fusion baseline."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dain.data.spec import DatasetSpec
from dain.encoders.base import masked_mean
from dain.models.base import ModelOutput, register_model
from dain.models.heads import mlp_head
from dain.models.moe_layers import AttentionBlock, MoEFFN
from dain.models.token_moe import RoutingLog, TokenFusionModel, TokenMoEConfig


@register_model("moe_topk")
class MoETopK(TokenFusionModel):
    """Sparse MoE transformer over all modality tokens (Switch/GShard).

    Tokens of every modality (+ modality embedding) pass ``fusion_layers`` blocks of [self-attention, top-k
    routed MoE-FFN], both pre-norm with residuals; the masked mean of the final tokens is classified (mean
    pooling rather than a CLS token, so every routed token of the last layer reaches the loss). Every real
    token (padding excluded) is routed. Auxiliary losses: Switch load balancing ``E * sum
    f_i P_i`` (weight ``balance_weight``, minimum ``balance_weight`` at uniform routing) and the ST-MoE
    router z-loss (``z_weight``), each averaged over layers. ``capacity_factor`` > 0 enables GShard-style
    expert capacity with token dropping (dropped tokens pass through the residual). Missing modalities appear
    as the encoders' learned missing embedding.

    Deviations: one shared router/expert set per layer as in Switch; no expert parallelism (single-device
    dispatch by gather/``index_add``); for k > 1 the balance loss counts all k assignments in ``f_i``.
    """

    @dataclass
    class Config(TokenMoEConfig):
        fusion_layers: int = 2
        num_experts: int = 4
        top_k: int = 1
        z_weight: float = 0.001

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__(spec, cfg)
        d = cfg.hidden
        self.modality_emb = nn.Parameter(torch.randn(spec.num_modalities, d) * 0.02)
        self.attn = nn.ModuleList([AttentionBlock(d, cfg.heads, cfg.dropout) for _ in range(cfg.fusion_layers)])
        self.moe_norm = nn.ModuleList([nn.LayerNorm(d) for _ in range(cfg.fusion_layers)])
        self.moe = nn.ModuleList(
            [
                MoEFFN(
                    d,
                    cfg.num_experts,
                    cfg.top_k,
                    2 * d,
                    cfg.dropout,
                    "softmax",
                    cfg.capacity_factor if cfg.capacity_factor > 0 else None,
                    cfg.router_noise,
                )
                for _ in range(cfg.fusion_layers)
            ]
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = mlp_head(d, d, spec.num_outputs, cfg.dropout)

    def forward(self, batch: dict) -> ModelOutput:
        tk = self.tokens(batch, self.encode(batch))
        x, keep = tk.tokens, tk.attend
        B, L = x.shape[:2]
        flat_keep = keep.reshape(-1)
        log = RoutingLog(B, L, self.cfg.top_k, self.cfg.num_experts)
        bal, zl, dropped = [], [], []
        for attn, norm, moe in zip(self.attn, self.moe_norm, self.moe):
            x = attn(x, keep)
            h = norm(x).reshape(B * L, -1)[flat_keep]
            y, r, aux = moe(h)
            upd = x.new_zeros(B * L, x.shape[-1]).index_copy(0, flat_keep.nonzero().squeeze(1), y)
            x = x + self.drop(upd.view(B, L, -1))
            bal.append(aux["balance"])
            zl.append(aux["z"])
            dropped.append(aux["dropped"])
            log.add(r, flat_keep, x)
        logits = self.head(masked_mean(x, keep))
        losses = {
            "moe_balance": self.cfg.balance_weight * torch.stack(bal).mean(),
            "moe_z": self.cfg.z_weight * torch.stack(zl).mean(),
        }
        stats = {"dropped_frac": torch.stack(dropped).mean().detach()}
        return ModelOutput(logits, losses, log.record(), stats)
