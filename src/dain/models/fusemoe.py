"""FuseMoE (Han et al., "FuseMoE: Mixture-of-Experts Transformers for Fleximodal Fusion", NeurIPS 2024)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dain.data.spec import DatasetSpec
from dain.encoders.base import masked_mean
from dain.models.base import ModelOutput, register_model
from dain.models.heads import mlp_head
from dain.models.moe_layers import (
    AttentionBlock,
    FFNExpert,
    Routing,
    TopKRouter,
    capacity_keep,
    load_balancing_loss,
    router_z_loss,
    sparse_dispatch,
)
from dain.models.token_moe import RoutingLog, TokenFusionModel, TokenMoEConfig


@register_model("fusemoe")
class FuseMoE(TokenFusionModel):
    """FuseMoE: per-modality routers over a shared expert pool with Laplace gating.

    Modality tokens (+ modality embedding) pass ``fusion_layers`` blocks of [self-attention, MoE-FFN]. In
    each MoE-FFN a token of modality m is routed by router m (FuseMoE's ``permod`` router type) to the top-k
    of a pool of experts shared by all modalities. Gating is Laplace as in FuseMoE: gate logits ``-||x -
    w_e||_2`` (``gating="softmax"`` gives the dot-product variant), softmax, top-k, renormalised over the k
    choices. The fused representation is the mean of the final tokens of the modalities present in each
    sample (FuseMoE pools its MoE outputs before the classifier).

    Missing modalities (FuseMoE's "fleximodal" setting) are handled through the mask: tokens of an absent
    modality are excluded from attention keys, routing and pooling (a sample with no modality at all falls
    back to the learned missing embeddings). Deviations: the load-balancing term is the Switch loss over all
    routed tokens of the shared pool (FuseMoE uses Shazeer's cv^2 importance/load losses, which serve the
    same purpose), plus an optional z-loss; no noisy gating by default; encoders are ours
    (``dain.encoders``), not FuseMoE's mTAND/clinical-BERT stacks.
    """

    @dataclass
    class Config(TokenMoEConfig):
        gating: str = "laplace"
        z_weight: float = 0.0

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__(spec, cfg)
        d, M = cfg.hidden, spec.num_modalities
        self.modality_emb = nn.Parameter(torch.randn(M, d) * 0.02)
        self.attn = nn.ModuleList([AttentionBlock(d, cfg.heads, cfg.dropout) for _ in range(cfg.fusion_layers)])
        self.moe_norm = nn.ModuleList([nn.LayerNorm(d) for _ in range(cfg.fusion_layers)])
        self.routers = nn.ModuleList(
            [
                nn.ModuleList(
                    [TopKRouter(d, cfg.num_experts, cfg.top_k, cfg.gating, cfg.router_noise) for _ in range(M)]
                )
                for _ in range(cfg.fusion_layers)
            ]
        )
        self.experts = nn.ModuleList(
            [
                nn.ModuleList([FFNExpert(d, 2 * d, cfg.dropout) for _ in range(cfg.num_experts)])
                for _ in range(cfg.fusion_layers)
            ]
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.out_norm = nn.LayerNorm(d)
        self.head = mlp_head(d, d, spec.num_outputs, cfg.dropout)

    def _route(self, h: torch.Tensor, mod: torch.Tensor, routers: nn.ModuleList) -> Routing:
        """Route flat tokens ``h`` [N, d] whose modality ids are ``mod`` [N] with their own modality's
        router."""
        N, E, k = h.shape[0], self.cfg.num_experts, self.cfg.top_k
        logits = h.new_zeros(N, E)
        probs = h.new_zeros(N, E)
        idx = torch.zeros(N, k, dtype=torch.long, device=h.device)
        gates = h.new_zeros(N, k)
        for j, router in enumerate(routers):
            sel = (mod == j).nonzero().squeeze(1)
            if sel.numel() == 0:
                continue
            r = router(h[sel])
            logits = logits.index_copy(0, sel, r.logits)
            probs = probs.index_copy(0, sel, r.probs)
            idx = idx.index_copy(0, sel, r.idx)
            gates = gates.index_copy(0, sel, r.gates)
        cf = self.cfg.capacity_factor
        if cf > 0:
            keep = capacity_keep(idx, E, max(1, int(-(-cf * N * k // E))))
        else:
            keep = torch.ones_like(idx, dtype=torch.bool)
        return Routing(logits, probs, idx, gates, keep)

    def forward(self, batch: dict) -> ModelOutput:
        tk = self.tokens(batch, self.encode(batch))
        x, mod_ids = tk.tokens, tk.ids
        B, L, d = x.shape
        keep = tk.real_or_attend()  # absent modalities' tokens excluded; nothing observed: the missing embeddings
        flat_keep = keep.reshape(-1)
        pos = flat_keep.nonzero().squeeze(1)
        tok_mod = mod_ids.unsqueeze(0).expand(B, L).reshape(-1)[flat_keep]
        E = self.cfg.num_experts
        log = RoutingLog(B, L, self.cfg.top_k, E)
        bal, zl = [], []
        for attn, norm, routers, experts in zip(self.attn, self.moe_norm, self.routers, self.experts):
            x = attn(x, keep)
            h = norm(x).reshape(B * L, d)[flat_keep]
            r = self._route(h, tok_mod, routers)
            y = sparse_dispatch(h, experts, r.idx, r.gates, r.keep)
            x = x + self.drop(x.new_zeros(B * L, d).index_copy(0, pos, y).view(B, L, d))
            bal.append(load_balancing_loss(r.probs, r.idx, E))
            zl.append(router_z_loss(r.logits))
            log.add(r, flat_keep, x)
        fused = self.out_norm(masked_mean(x, keep))
        losses = {"moe_balance": self.cfg.balance_weight * torch.stack(bal).mean()}
        if self.cfg.z_weight > 0:
            losses["moe_z"] = self.cfg.z_weight * torch.stack(zl).mean()
        routing = {**log.record(), "token_modality": mod_ids.unsqueeze(0).expand(B, L)}
        return ModelOutput(self.head(fused), losses, routing)
