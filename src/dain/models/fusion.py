"""Static fusion baselines: early (concatenate pooled modality vectors), late (average per-modality predictions) and
transformer (self-attention over all modality tokens)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from dain.data.spec import DatasetSpec
from dain.encoders import ModalityEncoders
from dain.encoders.base import key_padding, modality_tokens
from dain.models.base import BaseModelConfig, ModelOutput, register_model
from dain.models.heads import mlp_head


@register_model("early_fusion")
class EarlyFusion(nn.Module):
    """Encode each modality, concatenate the pooled vectors, classify with an MLP."""

    @dataclass
    class Config(BaseModelConfig):
        encoders: dict[str, str] = field(default_factory=dict)

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.encode = ModalityEncoders(spec, cfg.hidden, cfg.dropout, cfg.encoder_layers, cfg.encoders)
        self.head = mlp_head(cfg.hidden * spec.num_modalities, cfg.hidden, spec.num_outputs, cfg.dropout)

    def forward(self, batch: dict) -> ModelOutput:
        enc = self.encode(batch)
        h = torch.cat([enc[m].pooled for m in self.spec.modality_names], dim=-1)
        return ModelOutput(self.head(h))


@register_model("late_fusion")
class LateFusion(nn.Module):
    """One classifier per modality; logits averaged over the modalities present in each sample.

    A missing modality's head is excluded from the average (its learned missing embedding is not used to vote).
    """

    @dataclass
    class Config(BaseModelConfig):
        encoders: dict[str, str] = field(default_factory=dict)

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.encode = ModalityEncoders(spec, cfg.hidden, cfg.dropout, cfg.encoder_layers, cfg.encoders)
        self.heads = nn.ModuleDict(
            {m: mlp_head(cfg.hidden, cfg.hidden, spec.num_outputs, cfg.dropout) for m in spec.modality_names}
        )

    def forward(self, batch: dict) -> ModelOutput:
        enc = self.encode(batch)
        logits = torch.stack([self.heads[m](enc[m].pooled) for m in self.spec.modality_names], dim=1)  # [B, M, C]
        w = batch["mask"].to(logits.dtype)
        w = torch.where(w.sum(1, keepdim=True) > 0, w, torch.ones_like(w))
        out = (logits * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True)
        return ModelOutput(out)


@register_model("transformer")
class TransformerFusion(nn.Module):
    """Tokens of every modality (+ modality embedding and a CLS token) -> Transformer encoder -> CLS head."""

    @dataclass
    class Config(BaseModelConfig):
        encoders: dict[str, str] = field(default_factory=dict)
        fusion_layers: int = 2
        heads: int = 4
        max_tokens_per_modality: int = 16  # sequences are average-pooled in time to at most this many tokens

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__()
        self.spec, self.cfg = spec, cfg
        d = cfg.hidden
        self.encode = ModalityEncoders(spec, d, cfg.dropout, cfg.encoder_layers, cfg.encoders)
        self.modality_emb = nn.Parameter(torch.randn(spec.num_modalities, d) * 0.02)
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, cfg.heads, 2 * d, cfg.dropout, batch_first=True, norm_first=True, activation="gelu"
        )
        self.fusion = nn.TransformerEncoder(layer, cfg.fusion_layers, enable_nested_tensor=False)
        self.head = mlp_head(d, d, spec.num_outputs, cfg.dropout)

    def forward(self, batch: dict) -> ModelOutput:
        tk = modality_tokens(
            self.encode(batch),
            batch["mask"],
            self.spec.modality_names,
            self.modality_emb,
            self.cfg.max_tokens_per_modality,
        )
        B = tk.tokens.shape[0]
        x = torch.cat([self.cls.expand(B, -1, -1), tk.tokens], 1)
        keep = torch.cat([tk.attend.new_ones(B, 1), tk.attend], 1)
        h = self.fusion(x, src_key_padding_mask=key_padding(~keep))
        return ModelOutput(self.head(h[:, 0]))
