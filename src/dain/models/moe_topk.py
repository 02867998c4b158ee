"""Token-level sparse mixture-of-experts transformer (Switch Transformer, Fedus et al., JMLR 2022; GShard,
Lepikhin et al., ICLR 2021) used as a multimodal fusion baseline."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from dain.data.spec import DatasetSpec
from dain.encoders import EncodedModality, ModalityEncoders
from dain.encoders.base import pool_tokens
from dain.models.base import BaseModelConfig, ModelOutput, register_model
from dain.models.heads import mlp_head
from dain.models.moe_layers import AttentionBlock, MoEFFN


def modality_tokens(
    enc: dict[str, EncodedModality], names: list[str], modality_emb: torch.Tensor, max_tokens: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate every modality's tokens (time-pooled to ``max_tokens``) plus its modality embedding.

    Returns tokens [B, L, d], token mask [B, L] and the modality index of each token position [L].
    """
    toks, masks, ids = [], [], []
    for j, name in enumerate(names):
        t, m = pool_tokens(enc[name].tokens, enc[name].token_mask, max_tokens)
        toks.append(t + modality_emb[j])
        masks.append(m)
        ids.append(torch.full((t.shape[1],), j, dtype=torch.long, device=t.device))
    return torch.cat(toks, 1), torch.cat(masks, 1), torch.cat(ids)


@register_model("moe_topk")
class MoETopK(nn.Module):
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
    class Config(BaseModelConfig):
        hidden: int = 64
        encoders: dict[str, str] = field(default_factory=dict)
        fusion_layers: int = 2
        heads: int = 4
        num_experts: int = 4
        top_k: int = 1
        capacity_factor: float = 0.0  # <= 0: unlimited capacity (no token dropping)
        balance_weight: float = 0.01
        z_weight: float = 0.001
        router_noise: float = 0.0
        max_tokens_per_modality: int = 16

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__()
        self.spec, self.cfg = spec, cfg
        d = cfg.hidden
        self.encode = ModalityEncoders(spec, d, cfg.dropout, cfg.encoder_layers, cfg.encoders)
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
        enc = self.encode(batch)
        x, keep, _ = modality_tokens(enc, self.spec.modality_names, self.modality_emb, self.cfg.max_tokens_per_modality)
        B = x.shape[0]
        L, k, E = x.shape[1], self.cfg.top_k, self.cfg.num_experts
        flat_keep = keep.reshape(-1)
        bal, zl, dropped, choices, probs = [], [], [], [], []
        for attn, norm, moe in zip(self.attn, self.moe_norm, self.moe):
            x = attn(x, keep)
            h = norm(x).reshape(B * L, -1)[flat_keep]
            y, r, aux = moe(h)
            upd = x.new_zeros(B * L, x.shape[-1]).index_copy(0, flat_keep.nonzero().squeeze(1), y)
            x = x + self.drop(upd.view(B, L, -1))
            bal.append(aux["balance"])
            zl.append(aux["z"])
            dropped.append(aux["dropped"])
            ch = torch.where(r.keep, r.idx, torch.full_like(r.idx, -1))
            choices.append(torch.full((B * L, k), -1, dtype=torch.long, device=x.device).index_put((flat_keep,), ch))
            probs.append(x.new_zeros(B * L, E).index_put((flat_keep,), r.probs.detach()))
        w = keep.to(x.dtype).unsqueeze(-1)
        logits = self.head((x * w).sum(1) / w.sum(1).clamp_min(1.0))
        losses = {
            "moe_balance": self.cfg.balance_weight * torch.stack(bal).mean(),
            "moe_z": self.cfg.z_weight * torch.stack(zl).mean(),
        }
        routing = {
            "expert_choice": torch.stack(choices, 1).view(B, L, -1, k).transpose(1, 2),  # [B, layers, L, k]; -1 = none
            "router_probs": torch.stack(probs, 1).view(B, L, -1, E).transpose(1, 2),  # [B, layers, L, E]
        }
        stats = {"dropped_frac": torch.stack(dropped).mean().detach()}
        return ModelOutput(logits, losses, routing, stats)
