"""I2MoE (Xin et al., "I2MoE: Interpretable Multimodal Interaction-aware Mixture-of-Experts", ICML 2025)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dain.data.spec import DatasetSpec
from dain.encoders.base import key_padding
from dain.models.base import ModelOutput, register_model
from dain.models.token_moe import TokenFusionConfig, TokenFusionModel


class TransformerExpert(nn.Module):
    """I2MoE's Transformer fusion backbone: modality tokens -> encoder layers -> per-modality mean pool ->
    concat -> Linear(M * d -> outputs)."""

    def __init__(self, d: int, num_modalities: int, num_outputs: int, heads: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(num_modalities, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, heads, 2 * d, dropout, batch_first=True, norm_first=True, activation="gelu"
        )
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.out = nn.Linear(num_modalities * d, num_outputs)

    def forward(self, x: torch.Tensor, keep: torch.Tensor, pool: torch.Tensor, mod_ids: torch.Tensor) -> torch.Tensor:
        """``x`` [N, L, d], ``keep`` [N, L], ``pool`` [N, L, M] masked per-modality averaging weights."""
        h = self.norm(self.enc(x + self.pos[mod_ids], src_key_padding_mask=key_padding(~keep)))
        pooled = torch.einsum("nlm,nld->nmd", pool, h)
        return self.out(pooled.reshape(pooled.shape[0], -1))


@register_model("i2moe")
class I2MoE(TokenFusionModel):
    """I2MoE: M uniqueness + 1 synergy + 1 redundancy interaction experts, reweighted per sample.

    Each expert is a small Transformer fusion backbone over all modality tokens that outputs task logits. In
    training each expert runs M+1 passes: the clean tokens and, for each modality j, the tokens with modality
    j replaced by Gaussian noise (``randn_like``). Interaction losses on the expert outputs ``o^0`` (clean) /
    ``o^{-j}``: uniqueness expert i: ``mean_{j != i} TripletMargin(o^0, o^{-j}, o^{-i}; margin 1, p 2)``;
    synergy: ``mean_j cos(o^0, o^{-j})``; redundancy: ``mean_j 1 - cos(o^0, o^{-j})``; ``L_int`` is their sum
    / (M+2) and the returned loss is ``interaction_weight * L_int``. A reweighting MLP over the concatenated
    clean pooled modality embeddings gives ``w = softmax(MLP(.) / temperature)`` over the M+2 experts; the
    prediction is ``sum_e w_e logits_e(clean)`` (``routing["weights"]`` [B, M+2], experts ordered
    uniqueness_1..M, synergy, redundancy). Evaluation runs only the clean pass.

    **Training cost**: ``forward_passes_per_step = (M+2) * (M+1)`` expert-backbone passes per sample (56 for
    M=6), batched as one call per expert on a ``(M+1) * B`` batch; the encoders run once (the perturbation is
    applied to the encoded tokens). Evaluation: M+2 passes.

    Deviations: modalities are perturbed after our shared encoders (I2MoE perturbs the modality embeddings
    fed to its expert backbones, which is the same place when the encoders are shared); encoders are shared
    by all experts; the reweighting MLP uses ``rw_dropout`` (paper 0.5). A missing modality appears as the
    encoders' learned missing embedding in every pass. With M = 1 the uniqueness loss is empty (no j != i)
    and contributes 0.
    """

    @dataclass
    class Config(TokenFusionConfig):
        interaction_weight: float = 0.3
        temperature: float = 1.0
        rw_hidden: int = 128
        rw_layers: int = 2
        rw_dropout: float = 0.5
        triplet_margin: float = 1.0

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__(spec, cfg)
        d, M = cfg.hidden, spec.num_modalities
        self.modality_emb = nn.Parameter(torch.zeros(M, d))  # position info lives in each expert's ``pos``
        self.experts = nn.ModuleList(
            [TransformerExpert(d, M, spec.num_outputs, cfg.heads, cfg.fusion_layers, cfg.dropout) for _ in range(M + 2)]
        )
        dims = [M * d] + [cfg.rw_hidden] * max(0, cfg.rw_layers - 1)
        rw: list[nn.Module] = [nn.LayerNorm(M * d)]
        for a, b in zip(dims[:-1], dims[1:]):
            rw += [nn.Linear(a, b), nn.GELU(), nn.Dropout(cfg.rw_dropout)]
        rw.append(nn.Linear(dims[-1], M + 2))
        self.reweight = nn.Sequential(*rw)

    @property
    def num_experts(self) -> int:
        return self.spec.num_modalities + 2

    @property
    def forward_passes_per_step(self) -> int:
        """Expert-backbone forward passes per training sample: (M+2) experts x (M+1) perturbations."""
        M = self.spec.num_modalities
        return (M + 2) * (M + 1)

    def interaction_loss(self, outs: torch.Tensor) -> torch.Tensor:
        """``outs`` [M+2, M+1, B, C]: expert e's output on pass p (0 = clean, 1+j = modality j perturbed)."""
        M = self.spec.num_modalities
        f = nn.functional
        terms = []
        for i in range(M):
            o = outs[i]
            trip = [
                f.triplet_margin_loss(o[0], o[1 + j], o[1 + i], margin=self.cfg.triplet_margin)
                for j in range(M)
                if j != i
            ]
            terms.append(torch.stack(trip).mean() if trip else o.sum() * 0.0)
        syn, red = outs[M], outs[M + 1]
        terms.append(torch.stack([f.cosine_similarity(syn[0], syn[1 + j], dim=-1).mean() for j in range(M)]).mean())
        terms.append(torch.stack([1 - f.cosine_similarity(red[0], red[1 + j], dim=-1).mean() for j in range(M)]).mean())
        return torch.stack(terms).sum() / (M + 2)

    def forward(self, batch: dict) -> ModelOutput:
        enc = self.encode(batch)
        names = self.spec.modality_names
        M = len(names)
        tk = self.tokens(batch, enc)
        x, keep, mod_ids = tk.tokens, tk.attend, tk.ids
        B = x.shape[0]
        onehot = nn.functional.one_hot(mod_ids, M).to(x.dtype).unsqueeze(0) * keep.to(x.dtype).unsqueeze(-1)
        pool = onehot / onehot.sum(1, keepdim=True).clamp_min(1.0)  # [B, L, M]
        n_pass = M + 1 if self.training else 1
        if n_pass > 1:
            variants = [x]
            for j in range(M):
                sel = (mod_ids == j).view(1, -1, 1)
                variants.append(torch.where(sel, torch.randn_like(x), x))
            xs = torch.cat(variants, 0)
            ks, ps = keep.repeat(n_pass, 1), pool.repeat(n_pass, 1, 1)
        else:
            xs, ks, ps = x, keep, pool
        outs = torch.stack([ex(xs, ks, ps, mod_ids).view(n_pass, B, -1) for ex in self.experts])  # [E, P, B, C]
        pooled = torch.cat([enc[m].pooled for m in names], -1)
        w = (self.reweight(pooled) / self.cfg.temperature).softmax(-1)  # [B, M+2]
        logits = torch.einsum("be,ebc->bc", w, outs[:, 0])
        losses = {}
        if n_pass > 1:
            losses["interaction"] = self.cfg.interaction_weight * self.interaction_loss(outs)
        routing = {"weights": w, "expert_logits": outs[:, 0].detach().transpose(0, 1)}  # [B, M+2, C]
        return ModelOutput(logits, losses, routing)
