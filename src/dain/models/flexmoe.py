"""Flex-MoE (Yun et al., "Flex-MoE: Modeling Arbitrary Modality Combination via the Flexible
Mixture-of-Experts", NeurIPS 2024)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dain.data.spec import DatasetSpec
from dain.encoders.base import masked_mean
from dain.models.base import ModelOutput, register_model
from dain.models.heads import mlp_head
from dain.models.moe_layers import AttentionBlock, MoEFFN, load_balancing_loss
from dain.models.token_moe import RoutingLog, TokenFusionModel, TokenMoEConfig

MAX_BANK_MODALITIES = 12


@register_model("flexmoe")
class FlexMoE(TokenFusionModel):
    """Flex-MoE: missing-modality bank + sparse MoE whose router is softly supervised by the modality
    combination.

    * **Bank.** The modality combination of a sample is the bitmask ``c = sum_j mask_j 2^j``. An absent
      modality j of a sample with combination c is represented by the learned embedding ``bank[c, j]`` (at
      every token position of j), as Flex-MoE's ``missing_embeds[c, j]``. The encoders' own generic missing
      embedding is therefore unused here.
    * **Fusion.** Modality tokens (+ modality embedding) pass ``fusion_layers`` blocks of [self-attention,
      top-k MoE-FFN]; the mean of the final tokens (bank tokens included) is classified.
    * **S-router.** For tokens of *incomplete* samples an auxiliary cross-entropy pushes the router logits
      towards the expert assigned to the sample's combination, ``expert(c) = rank(c) mod E`` over the
      incomplete combinations (one expert per combination when ``num_experts`` is large enough, as in
      Flex-MoE); complete samples are routed freely under the load-balancing loss. Loss ``router_sup_weight *
      CE``, a soft supervision, not a hard assignment.
    * **Warm-up.** ``set_epoch(e)`` (called by the harness each epoch) turns warm-up on while ``e <
      warmup_epochs``: then only complete samples train the model (the logits of incomplete samples are
      detached, so their task loss yields no gradient -- equivalent to Flex-MoE's complete-only warm-up
      loader up to the batch-mean scale) and the router supervision is off. Without any ``set_epoch`` call
      there is no warm-up. ``model.warmup`` can also be set directly.

    Deviations: fixed-std Gaussian logit noise (``router_noise``) instead of the learned noise of Flex-MoE's
    noisy top-k gate; Switch load-balancing loss instead of Flex-MoE's cv^2 importance/load losses; dense and
    sparse FFN layers are not alternated (every block has a MoE-FFN); dispatch by gather/``index_add``
    instead of FastMoE; the bank holds one vector per (combination, modality) rather than one per patch. The
    bank has ``2^M * M`` rows, so at most 12 modalities are supported.
    """

    @dataclass
    class Config(TokenMoEConfig):
        router_sup_weight: float = 0.1
        warmup_epochs: int = 2
        router_noise: float = 0.5  # Flex-MoE's gate is noisy top-k; here fixed-std logit noise in training

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        M = spec.num_modalities
        if M > MAX_BANK_MODALITIES:
            raise ValueError(
                f"flexmoe's missing-modality bank supports at most {MAX_BANK_MODALITIES} modalities, got {M}"
            )
        super().__init__(spec, cfg)
        d = cfg.hidden
        self.bank = nn.Parameter(torch.randn(2**M, M, d) * 0.02)
        self.modality_emb = nn.Parameter(torch.randn(M, d) * 0.02)
        self.attn = nn.ModuleList([AttentionBlock(d, cfg.heads, cfg.dropout) for _ in range(cfg.fusion_layers)])
        self.moe_norm = nn.ModuleList([nn.LayerNorm(d) for _ in range(cfg.fusion_layers)])
        cf = cfg.capacity_factor if cfg.capacity_factor > 0 else None
        self.moe = nn.ModuleList(
            [
                MoEFFN(d, cfg.num_experts, cfg.top_k, 2 * d, cfg.dropout, "softmax", cf, cfg.router_noise)
                for _ in range(cfg.fusion_layers)
            ]
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = mlp_head(d, d, spec.num_outputs, cfg.dropout)
        full = 2**M - 1
        incomplete = [c for c in range(2**M) if c != full]
        table = torch.full((2**M,), -1, dtype=torch.long)
        for rank, c in enumerate(incomplete):
            table[c] = rank % cfg.num_experts
        self.register_buffer("combo_to_expert", table, persistent=False)
        self.register_buffer("pow2", 2 ** torch.arange(M), persistent=False)
        self.warmup = False

    def set_epoch(self, epoch: int) -> None:
        """Harness hook: warm-up (complete samples only) while ``epoch < warmup_epochs``."""
        self.warmup = epoch < self.cfg.warmup_epochs

    def combination(self, mask: torch.Tensor) -> torch.Tensor:
        """Combination index ``sum_j mask_j 2^j`` of each sample [B]."""
        return (mask.long() * self.pow2).sum(1)

    def forward(self, batch: dict) -> ModelOutput:
        enc = self.encode(batch)
        mask: torch.Tensor = batch["mask"]
        B = mask.shape[0]
        combo = self.combination(mask)
        complete = mask.all(1)
        tk = self.tokens(batch, enc, fill=self.bank[combo])  # absent modality j: bank[c, j] at its positions
        x, keep = tk.tokens, tk.attend
        L, E = x.shape[1], self.cfg.num_experts
        flat_keep = keep.reshape(-1)
        pos = flat_keep.nonzero().squeeze(1)
        tok_sample = torch.arange(B, device=x.device).unsqueeze(1).expand(B, L).reshape(-1)[flat_keep]
        tok_target = self.combo_to_expert[combo][tok_sample]  # -1 for complete samples
        tok_complete = complete[tok_sample]
        warm = self.training and self.warmup
        log = RoutingLog(B, L, self.cfg.top_k, E)
        bal, sup = [], []
        for attn, norm, moe in zip(self.attn, self.moe_norm, self.moe):
            x = attn(x, keep)
            h = norm(x).reshape(B * L, -1)[flat_keep]
            y, r, aux = moe(h)
            x = x + self.drop(x.new_zeros(B * L, x.shape[-1]).index_copy(0, pos, y).view(B, L, -1))
            if warm:
                sel = tok_complete
                bal.append(load_balancing_loss(r.probs[sel], r.idx[sel], E) if bool(sel.any()) else h.sum() * 0)
            else:
                bal.append(aux["balance"])
            sup_sel = tok_target >= 0
            if bool(sup_sel.any()) and not warm:
                sup.append(nn.functional.cross_entropy(r.logits[sup_sel], tok_target[sup_sel]))
            log.add(r, flat_keep, x)
        logits = self.head(masked_mean(x, keep))
        if warm:
            logits = torch.where(complete.view(B, 1), logits, logits.detach())
        losses = {"moe_balance": self.cfg.balance_weight * torch.stack(bal).mean()}
        if sup:
            losses["router_supervision"] = self.cfg.router_sup_weight * torch.stack(sup).mean()
        routing = {
            **log.record(),
            "combination": combo,
            "target_expert": self.combo_to_expert[combo],
        }
        stats = {"warmup": torch.tensor(float(warm)), "complete_frac": complete.float().mean()}
        return ModelOutput(logits, losses, routing, stats)
