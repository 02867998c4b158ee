"""Low-rank multimodal fusion (Liu et al., "Efficient Low-rank Multimodal Fusion with Modality-Specific
Factors", ACL 2018)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from dain.data.spec import DatasetSpec
from dain.encoders import ModalityEncoders
from dain.models.base import BaseModelConfig, ModelOutput, register_model
from dain.models.heads import mlp_head


@register_model("lrtf")
class LowRankTensorFusion(nn.Module):
    """LMF: ``h = sum_r w_r * prod_m (W_m^{(r)} [z_m; 1]) + b`` over pooled modality vectors ``z_m``.

    Each modality's pooled vector gets an appended 1 (so the implicit outer-product tensor keeps all
    lower-order interactions), is projected by ``rank`` modality-specific factors to ``fusion_dim``, the
    projections are multiplied elementwise across modalities and combined over the rank with learned weights,
    as in the paper.

    Deviations: (i) the factor row that multiplies the appended 1 is initialised to 1 and the others with a
    small normal, so the M-fold product starts near 1 + sum of linear terms instead of a vanishing/exploding
    product of M Xavier-initialised factors (the paper uses M <= 3; mfeat has M = 6); (ii) a LayerNorm + MLP
    head follows the fused vector (the paper feeds it to a linear output). A missing modality contributes the
    encoders' learned missing embedding as ``z_m``.
    """

    @dataclass
    class Config(BaseModelConfig):
        encoders: dict[str, str] = field(default_factory=dict)
        rank: int = 4
        fusion_dim: int = 64

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__()
        self.spec, self.cfg = spec, cfg
        d, r, h = cfg.hidden, cfg.rank, cfg.fusion_dim
        self.encode = ModalityEncoders(spec, d, cfg.dropout, cfg.encoder_layers, cfg.encoders)
        factors = torch.randn(spec.num_modalities, r, d + 1, h) * (0.5 / math.sqrt(d))
        factors[:, :, -1, :] = 1.0
        self.factors = nn.Parameter(factors)  # [M, r, d+1, h]
        self.rank_weights = nn.Parameter(torch.full((1, r), 1.0 / r))
        self.fusion_bias = nn.Parameter(torch.zeros(h))
        self.drop = nn.Dropout(cfg.dropout)
        self.head = mlp_head(h, cfg.hidden, spec.num_outputs, cfg.dropout)

    def forward(self, batch: dict) -> ModelOutput:
        enc = self.encode(batch)
        z = torch.stack([enc[m].pooled for m in self.spec.modality_names], dim=1)  # [B, M, d]
        z = torch.cat([self.drop(z), z.new_ones(*z.shape[:2], 1)], dim=-1)  # [B, M, d+1]
        proj = torch.einsum("bmi,mrih->bmrh", z, self.factors)  # [B, M, r, h]
        prod = proj.prod(dim=1)  # [B, r, h]
        fused = torch.einsum("or,brh->bh", self.rank_weights, prod) + self.fusion_bias
        return ModelOutput(self.head(fused))
