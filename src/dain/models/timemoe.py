"""Time-MoE / MERGE: a mixture-of-experts fusion model whose router is guided by temporal R/U/S interactions.

Reconstructed from methods.md 2.4-2.8 (the public ``dami`` code of Han et al., arXiv 2509.25678):

* per-modality temporal encoders (Linear + sinusoidal positions + Transformer layers, ``transformer_seq``)
  put every modality on a common grid of ``T`` tokens (sequences are masked-average-pooled to at most
  ``max_tokens`` steps; shorter ones are repeated; vectors/images are broadcast as ``T = 1`` sequences);
* ``num_layers`` blocks, ``num_moe_layers`` of them MoE blocks at evenly spaced indices; the others are shared
  Transformer layers applied per modality stream;
* MoE block: per-stream self-attention + LayerNorm, all ``B*M*T`` tokens routed top-k to ``num_experts``
  experts (the first ``num_synergy_experts`` are :class:`SynergyExpert`), outputs averaged over the
  modalities present (fusion), residual with the mean of the inputs, LayerNorm; afterwards every stream
  carries the fused stream;
* RUS-aware router (:class:`RUSRouter`), auxiliary losses (:func:`rus_losses`, :func:`load_balance_loss`);
* head: LayerNorm -> masked mean over time -> Linear.

Where this differs from the public code (intent over quirks):

* the JSD in L_U / L_R is computed on the router *probabilities* (the public code applies ``log_softmax`` to
  probabilities, i.e. softmaxes twice);
* a SynergyExpert attends only over the tokens routed to it *within the same sample* (no mixing across the
  batch), so predictions do not depend on batch composition;
* masked time steps and missing modalities are excluded everywhere: from attention keys, the router's GRU
  input, the fusion average, the head's time mean and every auxiliary loss;
* ``aux_losses=False`` (preset ``timemoe_noaux``) drops the three R/U/S losses but keeps Switch load
  balancing; ``use_rus=False`` (preset ``timemoe_norus``) gives a router that sees only the token
  (``MLP(ReLU(Wx))``), while the R/U/S-driven losses stay on when interactions are set;
* defaults are small for CPU (d=64, 4 experts of which 1 synergy, 2 layers of which 1 MoE, max 32 tokens)
  instead of d=128, 8 experts (2 synergy), 6 layers (2-3 MoE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dain.data.spec import DatasetSpec, MultimodalDataset
from dain.encoders import ModalityEncoders
from dain.encoders.base import pool_tokens, real_mask
from dain.models.base import BaseModelConfig, ModelOutput, register_model

# ------------------------------------------------------------------------------------------------------------
# losses


def jsd(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Jensen-Shannon divergence (nats, in [0, ln 2]) between probability vectors along the last dim."""
    m = 0.5 * (p + q)
    kl_pm = (p * ((p + eps).log() - (m + eps).log())).sum(-1)
    kl_qm = (q * ((q + eps).log() - (m + eps).log())).sum(-1)
    return 0.5 * (kl_pm + kl_qm)


def _masked_mean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over entries with ``w`` True; 0 (still in the graph) when there are none."""
    w = w.to(x.dtype)
    n = w.sum()
    return (x * w).sum() / n.clamp_min(1.0)


def rus_losses(
    probs: torch.Tensor,
    present: torch.Tensor,
    U: torch.Tensor,
    R: torch.Tensor,
    S: torch.Tensor,
    num_synergy_experts: int,
    thresholds: tuple[float, float, float] = (0.5, 0.1, 0.1),
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> dict[str, torch.Tensor]:
    """L_U, L_R, L_S of methods.md 2.7 (already weighted).

    ``probs [B, M, T, E]`` router probabilities; ``present [B, M, T]`` True for real tokens of present
    modalities; ``U [M, T]``, ``R, S [M, M, T]``; thresholds/weights are ``(theta_U, theta_R, theta_S)`` and
    ``(lambda_U, lambda_R, lambda_S)``. Averages run over (sample, pair m1<m2, step) entries that pass the
    threshold and where both tokens are present. ``rus_unique`` is ``-lambda_U * JSD`` and so is <= 0 by
    design.
    """
    M = probs.shape[1]
    i1, i2 = torch.triu_indices(M, M, offset=1, device=probs.device)
    p1, p2 = probs[:, i1], probs[:, i2]  # [B, P, T, E]
    both = present[:, i1] & present[:, i2]  # [B, P, T]
    th_u, th_r, th_s = thresholds
    lam_u, lam_r, lam_s = weights
    d = jsd(p1, p2)
    uniq = ((U[i1] > th_u) & (U[i2] > th_u)).unsqueeze(0) & both
    red = (R[i1, i2] > th_r).unsqueeze(0) & both
    syn = (S[i1, i2] > th_s).unsqueeze(0) & both
    ps = probs[..., :num_synergy_experts].sum(-1)  # [B, M, T]
    syn_gap = 1.0 - 0.5 * (ps[:, i1] + ps[:, i2])
    return {
        "rus_unique": -lam_u * _masked_mean(d, uniq),
        "rus_redundant": lam_r * _masked_mean(d, red),
        "rus_synergy": lam_s * _masked_mean(syn_gap, syn),
    }


def load_balance_loss(probs: torch.Tensor, choice: torch.Tensor, valid: torch.Tensor, weight: float) -> torch.Tensor:
    """Switch-style ``weight * E * sum_i f_i * P_i`` over valid tokens (``f_i``: share of top-k assignments,
    ``P_i``: mean router probability). Equals ``weight`` for perfectly uniform routing."""
    E = probs.shape[-1]
    v = valid.to(probs.dtype).unsqueeze(-1)
    n = v.sum().clamp_min(1.0)
    onehot = F.one_hot(choice, E).to(probs.dtype).sum(-2)  # [..., E] counts of top-k picks
    f = (onehot * v).sum(tuple(range(onehot.dim() - 1))) / (n * choice.shape[-1])
    P = (probs * v).sum(tuple(range(probs.dim() - 1))) / n
    return weight * E * (f * P).sum()


# ------------------------------------------------------------------------------------------------------------
# router and experts


class RUSRouter(nn.Module):
    """RUS-aware gating network (methods.md 2.5).

    ``h = ReLU(W x)``; a query from ``h`` attends over the partner modalities' ``[R, S]`` vectors at that step
    (keys/values are linear maps of the 2-d vector); a GRU runs over time per modality on ``[U; context]``;
    ``MLP([h; g])`` gives expert logits. With ``use_rus=False`` the logits are ``MLP(h)``.
    """

    def __init__(
        self,
        d: int,
        num_experts: int,
        hidden: int = 32,
        key_dim: int = 16,
        gru_hidden: int = 32,
        use_rus: bool = True,
    ) -> None:
        super().__init__()
        self.use_rus = use_rus
        self.key_dim = key_dim
        self.tok = nn.Linear(d, hidden)
        if use_rus:
            self.q = nn.Linear(hidden, key_dim)
            self.k = nn.Linear(2, key_dim)
            self.v = nn.Linear(2, key_dim)
            self.gru = nn.GRU(1 + key_dim, gru_hidden, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(hidden + (gru_hidden if use_rus else 0), hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_experts),
        )

    def forward(
        self, x: torch.Tensor, present: torch.Tensor, U: torch.Tensor, R: torch.Tensor, S: torch.Tensor
    ) -> torch.Tensor:
        """``x [B, M, T, d]``, ``present [B, M, T]`` -> logits ``[B, M, T, E]``."""
        h = torch.relu(self.tok(x))
        if not self.use_rus:
            return self.mlp(h)
        B, M, T, _ = x.shape
        q = self.q(h)  # [B, M, T, K]
        rs = torch.stack([R, S], -1)  # [M, M, T, 2]
        k, v = self.k(rs), self.v(rs)  # [M, J, T, K]
        scores = torch.einsum("bmtk,mjtk->bmjt", q, k) / math.sqrt(self.key_dim)
        eye = torch.eye(M, dtype=torch.bool, device=x.device).view(1, M, M, 1)
        partner = present.unsqueeze(1) & ~eye  # [B, M(query), J, T]: partner j present at t
        scores = scores.masked_fill(~partner, float("-inf"))
        has = partner.any(2, keepdim=True)
        alpha = torch.softmax(torch.where(has, scores, torch.zeros_like(scores)), dim=2) * has
        ctx = torch.einsum("bmjt,mjtk->bmtk", alpha, v)
        inp = torch.cat([U.view(1, M, T, 1).expand(B, -1, -1, -1), ctx], -1)
        inp = inp * present.unsqueeze(-1).to(inp.dtype)  # masked steps feed nothing into the GRU
        g, _ = self.gru(inp.reshape(B * M, T, -1))
        return self.mlp(torch.cat([h, g.reshape(B, M, T, -1)], -1))


class FFNExpert(nn.Module):
    """``Linear(d, h) - ReLU - Dropout - Linear(h, d)`` applied per token."""

    def __init__(self, d: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, d))

    def forward(self, x: torch.Tensor, routed: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


class SynergyExpert(nn.Module):
    """Self-attention over the tokens of a sample routed to this expert, residual + LayerNorm, FFN, residual +
    LayerNorm. ``x [B, N, d]``; ``routed [B, N]`` marks the tokens that may be attended to."""

    def __init__(self, d: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, d))
        self.norm2 = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, routed: torch.Tensor | None = None) -> torch.Tensor:
        if routed is None:
            routed = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        pad = ~routed & routed.any(1, keepdim=True)  # a sample with nothing routed: outputs are discarded anyway
        a, _ = self.attn(x, x, x, key_padding_mask=pad, need_weights=False)
        x = self.norm1(x + a)
        return self.norm2(x + self.ffn(x))


class MoELayer(nn.Module):
    """Top-k mixture of experts over the tokens ``[B, M, T, d]`` with the RUS-aware router."""

    def __init__(self, cfg: TimeMoE.Config) -> None:
        super().__init__()
        d, E = cfg.hidden, cfg.num_experts
        self.k = min(cfg.top_k, E)
        self.router_noise = cfg.router_noise
        self.num_syn = min(cfg.num_synergy_experts, E)
        self.router = RUSRouter(d, E, cfg.router_hidden, cfg.router_key_dim, cfg.router_gru_hidden, cfg.use_rus)
        self.experts = nn.ModuleList(
            [SynergyExpert(d, cfg.heads, cfg.expert_hidden, cfg.dropout) for _ in range(self.num_syn)]
            + [FFNExpert(d, cfg.expert_hidden, cfg.dropout) for _ in range(E - self.num_syn)]
        )

    def forward(
        self,
        x: torch.Tensor,
        present: torch.Tensor,
        valid: torch.Tensor,
        U: torch.Tensor,
        R: torch.Tensor,
        S: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (mixture output ``[B, M, T, d]``, probabilities ``[B, M, T, E]``, top-k choice ``[B, M, T,
        k]``)."""
        B, M, T, d = x.shape
        logits = self.router(x, present, U, R, S)
        probs = torch.softmax(logits, -1)
        choice = logits
        if self.training and self.router_noise > 0:  # noisy top-k (Shazeer et al. 2017) for exploration
            choice = logits + self.router_noise * torch.randn_like(logits)
        top_idx = choice.topk(self.k, dim=-1).indices
        top_val = logits.gather(-1, top_idx)
        gates = torch.softmax(top_val, -1)  # mixture weights over the k selected experts
        flat = x.reshape(B, M * T, d)
        idx = top_idx.reshape(B, M * T, self.k)
        gw = gates.reshape(B, M * T, self.k)
        ok = valid.reshape(B, M * T)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            sel = idx == e  # [B, N, k]
            w = (gw * sel).sum(-1)  # [B, N]
            routed = sel.any(-1)
            if not bool(routed.any()):
                continue
            if e < self.num_syn:
                y = expert(flat, routed & ok)
                out = out + y * w.unsqueeze(-1)
            else:
                b_i, n_i = routed.nonzero(as_tuple=True)
                y = expert(flat[b_i, n_i])
                out = out.index_put((b_i, n_i), y * w[b_i, n_i].unsqueeze(-1), accumulate=True)
        return out.view(B, M, T, d), probs, top_idx


def _streams_attention(layer: nn.TransformerEncoderLayer, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Apply a Transformer layer to each stream of ``x [B, M, T, d]`` with masked steps excluded as keys."""
    B, M, T, d = x.shape
    v = valid.reshape(B * M, T)
    pad = ~v & v.any(1, keepdim=True)
    return layer(x.reshape(B * M, T, d), src_key_padding_mask=pad).view(B, M, T, d)


class MoEBlock(nn.Module):
    """Per-stream self-attention + LayerNorm -> MoE -> average over present modalities -> residual ->
    LayerNorm."""

    def __init__(self, cfg: TimeMoE.Config) -> None:
        super().__init__()
        d = cfg.hidden
        self.attn = nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.norm_in = nn.LayerNorm(d)
        self.moe = MoELayer(cfg)
        self.norm_out = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: torch.Tensor,
        present: torch.Tensor,
        valid: torch.Tensor,
        fuse_w: torch.Tensor,
        U: torch.Tensor,
        R: torch.Tensor,
        S: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, M, T, d = x.shape
        xs = x.reshape(B * M, T, d)
        v = valid.reshape(B * M, T)
        pad = ~v & v.any(1, keepdim=True)
        a, _ = self.attn(xs, xs, xs, key_padding_mask=pad, need_weights=False)
        a = self.norm_in(xs + self.drop(a)).view(B, M, T, d)
        y, probs, choice = self.moe(a, present, valid, U, R, S)
        w = fuse_w.to(x.dtype).unsqueeze(-1)  # [B, M, T, 1]
        den = w.sum(1).clamp_min(1e-6)
        fused = (y * w).sum(1) / den
        base = (a * w).sum(1) / den
        out = self.norm_out(base + self.drop(fused))  # [B, T, d]
        return out.unsqueeze(1).expand(B, M, T, d), probs, choice


# ------------------------------------------------------------------------------------------------------------
# model


@register_model("timemoe")
class TimeMoE(nn.Module):
    """Time-MoE / MERGE fusion model with an R/U/S-aware router (see module docstring).

    Call :meth:`prepare` (done by the training harness) or :meth:`set_interactions` to give it R/U/S tensors;
    until then they are zero (router context empty, R/U/S losses zero). The tensors are persistent buffers.
    """

    @dataclass
    class Config(BaseModelConfig):
        hidden: int = 64
        encoders: dict[str, str] = field(default_factory=dict)  # default: transformer_seq for sequences
        max_tokens: int = 32  # common token grid length T (sequences are pooled to at most this many steps)
        heads: int = 4
        d_ff: int = 128  # feed-forward width of the non-MoE Transformer layers
        num_layers: int = 2
        num_moe_layers: int = 1
        num_experts: int = 4
        num_synergy_experts: int = 1
        top_k: int = 2
        router_noise: float = 0.0  # std of Gaussian noise on router logits for expert choice (training only)
        expert_hidden: int = 128
        router_hidden: int = 32
        router_key_dim: int = 16
        router_gru_hidden: int = 32
        use_rus: bool = True
        aux_losses: bool = True
        lambda_unique: float = 1.0
        lambda_redundant: float = 1.0
        lambda_synergy: float = 1.0
        lambda_load: float = 0.02
        theta_unique: float = 0.5  # bits
        theta_redundant: float = 0.1
        theta_synergy: float = 0.1
        rus_lags: tuple[int, ...] = ()  # () -> one static R/U/S per pair, broadcast over time
        rus_estimator: str = "auto"
        rus_max_samples: int = 256
        rus_seed: int = 0

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__()
        self.spec, self.cfg = spec, cfg
        d, M = cfg.hidden, spec.num_modalities
        encs = {m.name: "transformer_seq" for m in spec.modalities if m.kind == "sequence"}
        encs.update(cfg.encoders)
        self.encode = ModalityEncoders(spec, d, cfg.dropout, cfg.encoder_layers, encs)
        seq_lens = [m.shape[0] for m in spec.modalities if m.kind == "sequence"]
        self.num_tokens = max(1, min(cfg.max_tokens, max(seq_lens, default=1)))
        self.modality_emb = nn.Parameter(torch.randn(M, d) * 0.02)
        n_moe = max(0, min(cfg.num_moe_layers, cfg.num_layers))
        self.moe_at = sorted({int(round((i + 1) * cfg.num_layers / n_moe)) - 1 for i in range(n_moe)}) if n_moe else []
        self.layers = nn.ModuleList()
        for i in range(cfg.num_layers):
            if i in self.moe_at:
                self.layers.append(MoEBlock(cfg))
            else:
                self.layers.append(
                    nn.TransformerEncoderLayer(d, cfg.heads, cfg.d_ff, cfg.dropout, batch_first=True, norm_first=True)
                )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, spec.num_outputs)
        T = self.num_tokens
        self.register_buffer("rus_U", torch.zeros(M, T))
        self.register_buffer("rus_R", torch.zeros(M, M, T))
        self.register_buffer("rus_S", torch.zeros(M, M, T))
        self.register_buffer("rus_ready", torch.zeros((), dtype=torch.bool))

    # ---- interactions --------------------------------------------------------------------------------------

    def set_interactions(self, U: torch.Tensor, R: torch.Tensor, S: torch.Tensor) -> None:
        """Set ``U [M, T']``, ``R, S [M, M, T']`` (bits); ``T' != T`` is resampled (nearest) onto the token
        grid."""
        M, T = self.spec.num_modalities, self.num_tokens
        U, R, S = (torch.as_tensor(t, dtype=torch.float32) for t in (U, R, S))
        if U.shape[0] != M or R.shape[:2] != (M, M) or S.shape[:2] != (M, M):
            raise ValueError(
                f"expected U [{M}, T], R/S [{M}, {M}, T]; got {tuple(U.shape)}, {tuple(R.shape)}, {tuple(S.shape)}"
            )

        def grid(t: torch.Tensor) -> torch.Tensor:
            if t.shape[-1] == T:
                return t
            lead = t.shape[:-1]
            return F.interpolate(t.reshape(1, -1, t.shape[-1]), size=T, mode="nearest").reshape(*lead, T)

        R, S = grid(R), grid(S)
        self.rus_U.copy_(grid(U))
        self.rus_R.copy_(0.5 * (R + R.transpose(0, 1)))
        self.rus_S.copy_(0.5 * (S + S.transpose(0, 1)))
        self.rus_ready.fill_(True)

    def prepare(self, data: MultimodalDataset, cache_dir: str | Path | None = None) -> dict[str, Any]:
        """Estimate R/U/S on the TRAIN split (subsampled, cached as JSON in ``cache_dir``) and set them."""
        from dain.models import timemoe_rus

        if not (self.cfg.use_rus or self.cfg.aux_losses):
            return {"skipped": True}
        has_seq = any(m.kind == "sequence" for m in data.spec.modalities)
        lags = list(self.cfg.rus_lags) if has_seq and self.cfg.rus_lags else None
        pairs, cached = timemoe_rus.load_or_compute_pairs(
            data, cache_dir, lags, self.cfg.rus_estimator, self.cfg.rus_max_samples, self.cfg.rus_seed
        )
        U, R, S = timemoe_rus.rus_tensors(pairs, self.spec.modality_names, self.num_tokens)
        self.set_interactions(U, R, S)
        return {"skipped": False, "from_cache": cached, "pairs": pairs}

    # ---- forward -------------------------------------------------------------------------------------------

    def _to_grid(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map ``[B, L, d]`` tokens (mask ``[B, L]``) onto the ``T``-token grid (masked pooling /
        repetition)."""
        L, T = tokens.shape[1], self.num_tokens
        if L < T:
            idx = (torch.arange(T, device=tokens.device) * L) // T
            return tokens[:, idx], mask[:, idx]
        return pool_tokens(tokens, mask, T)

    def forward(self, batch: dict) -> ModelOutput:
        enc = self.encode(batch)
        names = self.spec.modality_names
        xs, vs = [], []
        for j, m in enumerate(self.spec.modalities):
            e = enc[names[j]]
            tok, msk = (e.tokens, e.token_mask) if m.kind == "sequence" else (e.pooled.unsqueeze(1), None)
            if msk is None:
                msk = torch.ones(tok.shape[:2], dtype=torch.bool, device=tok.device)
            t, v = self._to_grid(tok, msk)
            xs.append(t + self.modality_emb[j])
            vs.append(v)
        x = torch.stack(xs, 1)  # [B, M, T, d]
        valid = torch.stack(vs, 1)  # [B, M, T] attention mask (a missing modality's embedding is attended)
        present = real_mask(valid, batch["mask"])  # real tokens of present modalities
        # fusion weights: present tokens; where none is present at (b, t), fall back to the missing embeddings
        fuse_w = torch.where(present.any(1, keepdim=True), present, valid)
        U, R, S = self.rus_U, self.rus_R, self.rus_S
        losses: dict[str, list[torch.Tensor]] = {}
        probs = choice = None
        for layer in self.layers:
            if isinstance(layer, MoEBlock):
                x, probs, choice = layer(x, present, valid, fuse_w, U, R, S)
                self._add_losses(losses, probs, choice, present)
                fused_valid = fuse_w.any(1, keepdim=True).expand_as(valid)
                valid, fuse_w = fused_valid, fused_valid
            else:
                x = _streams_attention(layer, x, valid)
        # after a MoE block all streams are the fused stream; before it (no MoE layers), average present
        # streams
        w = fuse_w.to(x.dtype).unsqueeze(-1)
        h = (x * w).sum(1) / w.sum(1).clamp_min(1e-6)  # [B, T, d]
        tv = fuse_w.any(1).to(x.dtype).unsqueeze(-1)
        pooled = (self.norm(h) * tv).sum(1) / tv.sum(1).clamp_min(1.0)
        logits = self.head(pooled)
        out_losses = {k: torch.stack(v).mean() for k, v in losses.items()}
        routing: dict[str, torch.Tensor] = {}
        stats: dict[str, torch.Tensor] = {}
        if probs is not None and choice is not None:
            routing = {"router_probs": probs, "expert_choice": choice}
            pw = present.to(probs.dtype)
            ent = -(probs * (probs + 1e-9).log()).sum(-1)
            stats = {
                "router_entropy": ((ent * pw).sum() / pw.sum().clamp_min(1.0)).detach(),
                "synergy_mass": (
                    (probs[..., : self.cfg.num_synergy_experts].sum(-1) * pw).sum() / pw.sum().clamp_min(1.0)
                ).detach(),
            }
        return ModelOutput(logits, out_losses, routing, stats)

    def _add_losses(
        self,
        acc: dict[str, list[torch.Tensor]],
        probs: torch.Tensor,
        choice: torch.Tensor,
        present: torch.Tensor,
    ) -> None:
        c = self.cfg
        if c.lambda_load > 0:
            acc.setdefault("load_balance", []).append(load_balance_loss(probs, choice, present, c.lambda_load))
        if c.aux_losses:
            terms = rus_losses(
                probs,
                present,
                self.rus_U,
                self.rus_R,
                self.rus_S,
                min(c.num_synergy_experts, c.num_experts),
                (c.theta_unique, c.theta_redundant, c.theta_synergy),
                (c.lambda_unique, c.lambda_redundant, c.lambda_synergy),
            )
            for k, v in terms.items():
                acc.setdefault(k, []).append(v)


@register_model("timemoe_norus")
class TimeMoENoRUS(TimeMoE):
    """Ablation: the router sees only the token (no R/U/S attention, U feature or GRU)."""

    @dataclass
    class Config(TimeMoE.Config):
        use_rus: bool = False


@register_model("timemoe_noaux")
class TimeMoENoAux(TimeMoE):
    """Ablation: no R/U/S auxiliary losses (Switch load balancing kept)."""

    @dataclass
    class Config(TimeMoE.Config):
        aux_losses: bool = False
