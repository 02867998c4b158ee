"""Time-MoE / MERGE: a mixture-of-experts fusion model whose router is guided by temporal R/U/S interactions.

Reconstructed from methods.md 2.4-2.8 (the public ``dami`` code of Han et al., arXiv 2509.25678):

* per-modality temporal encoders (Linear + sinusoidal positions + Transformer layers, ``transformer_seq``)
  put every sequence modality on a common grid of ``T`` tokens (masked-average-pooled to at most ``max_tokens``
  steps; shorter ones are repeated); every other modality (vector, image) joins as ONE token;
* ``num_layers`` blocks, ``num_moe_layers`` of them MoE blocks at evenly spaced indices; the others are shared
  Transformer layers applied per modality stream;
* MoE block: per-stream self-attention + LayerNorm, every real token routed top-k to ``num_experts`` experts
  (the first ``num_synergy_experts`` are :class:`SynergyExpert`), each expert run only on the tokens routed to
  it; outputs averaged over the modalities present at each step (a one-token modality joins every step),
  residual with the mean of the inputs, LayerNorm; afterwards every stream carries the fused stream;
* RUS-aware router (:class:`RUSRouter`) reading temporal R/U/S (one estimate per window of the sequence by
  default, given by the harness), auxiliary losses (:func:`rus_losses`, thresholds fractions of H(Y)) and the
  shared Switch load-balancing loss (``moe_layers.load_balancing_loss``);
* head: LayerNorm -> masked mean over time -> Linear.

Where this differs from the public code (intent over quirks):

* the JSD in L_U / L_R is computed on the router *probabilities* (the public code applies ``log_softmax`` to
  probabilities, i.e. softmaxes twice);
* a SynergyExpert attends only over the tokens routed to it *within the same sample* (no mixing across the
  batch), so predictions do not depend on batch composition;
* thresholds are fractions of the training labels' entropy H(Y) (0.1 / 0.05 / 0.05), not absolute bits, so the
  losses act on a low-entropy label (P12: H(Y) = 0.59 bit) as on a 10-class one; each pair's loss entries are
  averaged before the pairs, so a pair weighs the same however many tokens it spans;
* a vector modality is one token (routed once, one entry per sample in the losses), not T copies;
* masked time steps and missing modalities are excluded everywhere: from attention keys, the router's GRU
  input, the fusion average, the head's time mean and every auxiliary loss;
* the model estimates nothing: ``interaction_request()`` says what it needs, the training harness
  (``dain.training.interaction_cache``) estimates it on the training split and calls ``set_interactions``;
* ``aux_losses=False`` (preset ``timemoe_noaux``) drops the three R/U/S losses but keeps Switch load
  balancing; ``use_rus=False`` (preset ``timemoe_norus``) gives a router that sees only the token
  (``MLP(ReLU(Wx))``), while the R/U/S-driven losses stay on; ``rus_lags="static"`` (preset
  ``timemoe_static``) routes on one R/U/S per pair broadcast over time;
* defaults are small for CPU (d=64, 4 experts of which 1 synergy, 2 layers of which 1 MoE, max 32 tokens)
  instead of d=128, 8 experts (2 synergy), 6 layers (2-3 MoE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dain.data.spec import DatasetSpec
from dain.encoders import ModalityEncoders
from dain.encoders.base import key_padding, pool_tokens, real_mask
from dain.interactions.routing import InteractionRequest
from dain.models.base import BaseModelConfig, ModelOutput, register_model
from dain.models.moe_layers import FFNExpert, load_balancing_loss

# ------------------------------------------------------------------------------------------------------------
# losses


def jsd(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Jensen-Shannon divergence (nats, in [0, ln 2]) between probability vectors along the last dim."""
    m = 0.5 * (p + q)
    kl_pm = (p * ((p + eps).log() - (m + eps).log())).sum(-1)
    kl_qm = (q * ((q + eps).log() - (m + eps).log())).sum(-1)
    return 0.5 * (kl_pm + kl_qm)


def _pair_mean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x, w [B, P, T]``: each pair's mean over its (sample, step) entries with ``w`` True, then the mean over the
    pairs that have any, so a pair weighs the same however many steps it spans (a vector modality's one token
    counts once). 0 (still in the graph) when no entry qualifies."""
    w = w.to(x.dtype)
    n = w.sum((0, 2))
    per_pair = (x * w).sum((0, 2)) / n.clamp_min(1.0)
    has = (n > 0).to(x.dtype)
    return (per_pair * has).sum() / has.sum().clamp_min(1.0)


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

    ``probs [B, M, T, E]`` router probabilities on the token grid (a vector modality's one routing broadcast over
    T); ``present [B, M, T]`` True for real tokens of present modalities; ``U [M, T]``, ``R, S [M, M, T]`` (bits);
    ``thresholds`` ``(theta_U, theta_R, theta_S)`` in bits (the model passes fractions of H(Y)), ``weights``
    ``(lambda_U, lambda_R, lambda_S)``. Entries are (sample, pair m1<m2, step) where both tokens are present and
    the pair passes the threshold; each pair's entries are averaged, then the pairs. ``rus_unique`` is
    ``-lambda_U * JSD`` and so is <= 0 by design.
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
        "rus_unique": -lam_u * _pair_mean(d, uniq),
        "rus_redundant": lam_r * _pair_mean(d, red),
        "rus_synergy": lam_s * _pair_mean(syn_gap, syn),
    }


# ------------------------------------------------------------------------------------------------------------
# router and experts


class RUSRouter(nn.Module):
    """RUS-aware gating network (methods.md 2.5).

    ``h = ReLU(W x)``; a query from ``h`` attends over the present partner modalities' ``[R, S]`` at that token
    (keys/values are linear maps of the 2-d vector); a GRU runs over each modality's tokens on ``[U; context]``;
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
        self, x: torch.Tensor, feed: torch.Tensor, partner: torch.Tensor, U: torch.Tensor, RS: torch.Tensor
    ) -> torch.Tensor:
        """Logits ``[B, Q, Tq, E]`` for the tokens ``x [B, Q, Tq, d]`` of Q modalities.

        ``feed [B, Q, Tq]``: tokens that feed the GRU (masked steps feed nothing); ``partner [B, Q, J, Tq]``: partner
        modality j is present for that token (never the modality itself); ``U [Q, Tq]``; ``RS [Q, J, Tq, 2]`` the
        pair's ``[R, S]`` at that token."""
        h = torch.relu(self.tok(x))
        if not self.use_rus:
            return self.mlp(h)
        B, Q, Tq, _ = x.shape
        q = self.q(h)  # [B, Q, Tq, K]
        k, v = self.k(RS), self.v(RS)  # [Q, J, Tq, K]
        scores = torch.einsum("bqtk,qjtk->bqjt", q, k) / math.sqrt(self.key_dim)
        scores = scores.masked_fill(~partner, float("-inf"))
        has = partner.any(2, keepdim=True)
        alpha = torch.softmax(torch.where(has, scores, torch.zeros_like(scores)), dim=2) * has
        ctx = torch.einsum("bqjt,qjtk->bqtk", alpha, v)
        inp = torch.cat([U.view(1, Q, Tq, 1).expand(B, -1, -1, -1), ctx], -1)
        inp = inp * feed.unsqueeze(-1).to(inp.dtype)
        g, _ = self.gru(inp.reshape(B * Q, Tq, -1))
        return self.mlp(torch.cat([h, g.reshape(B, Q, Tq, -1)], -1))


class SynergyExpert(nn.Module):
    """Self-attention among the tokens of a sample routed to this expert, residual + LayerNorm, FFN, residual +
    LayerNorm. It runs only on those tokens: each sample's routed tokens are packed into ``[B', n, d]`` (``n`` =
    the most any sample routed here), so its cost follows the tokens routed to it."""

    def __init__(self, d: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = FFNExpert(d, hidden, dropout, "relu")
        self.norm2 = nn.LayerNorm(d)

    def _block(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        a, _ = self.attn(x, x, x, key_padding_mask=key_padding(~keys), need_weights=False)
        x = self.norm1(x + a)
        return self.norm2(x + self.ffn(x))

    def forward(self, x: torch.Tensor, routed: torch.Tensor) -> torch.Tensor:
        """``x [B, N, d]``, ``routed [B, N]`` -> ``[B, N, d]``, zero on tokens not routed here."""
        counts = routed.sum(1)
        rows = counts.nonzero().squeeze(1)
        out = x.new_zeros(x.shape)
        if rows.numel() == 0:
            return out
        n = int(counts.max())
        r = routed[rows]
        pos = torch.argsort((~r).to(torch.int8), dim=1, stable=True)[:, :n]  # routed tokens first, in order
        keep = torch.arange(n, device=x.device).unsqueeze(0) < counts[rows].unsqueeze(1)
        packed = x[rows].gather(1, pos.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        y = self._block(packed, keep)
        b_i = rows.unsqueeze(1).expand_as(pos)[keep]
        return out.index_put((b_i, pos[keep]), y[keep])

    def forward_dense(self, x: torch.Tensor, routed: torch.Tensor) -> torch.Tensor:
        """Reference for tests: every token of every sample through the block, keys limited to the routed tokens,
        then zero where not routed."""
        keys = routed | ~routed.any(1, keepdim=True)  # a sample with nothing routed: outputs discarded
        return self._block(x, keys) * routed.unsqueeze(-1).to(x.dtype)


class MoELayer(nn.Module):
    """Router + top-k experts over flat tokens ``[B, N, d]``; every expert runs only on the tokens routed to it
    (``dense = True`` runs every expert on every token instead: the reference the tests compare with)."""

    def __init__(self, cfg: TimeMoE.Config) -> None:
        super().__init__()
        d, E = cfg.hidden, cfg.num_experts
        self.k = min(cfg.top_k, E)
        self.router_noise = cfg.router_noise
        self.num_syn = min(cfg.num_synergy_experts, E)
        self.dense = False
        self.router = RUSRouter(d, E, cfg.router_hidden, cfg.router_key_dim, cfg.router_gru_hidden, cfg.use_rus)
        self.experts = nn.ModuleList(
            [SynergyExpert(d, cfg.heads, cfg.expert_hidden, cfg.dropout) for _ in range(self.num_syn)]
            + [FFNExpert(d, cfg.expert_hidden, cfg.dropout, "relu") for _ in range(E - self.num_syn)]
        )

    def choose(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k experts ``[..., k]`` (noisy in training when ``router_noise > 0``) and their mixture weights (a
        softmax over the k selected logits)."""
        choice = logits
        if self.training and self.router_noise > 0:  # noisy top-k (Shazeer et al. 2017) for exploration
            choice = logits + self.router_noise * torch.randn_like(logits)
        top_idx = choice.topk(self.k, dim=-1).indices
        return top_idx, torch.softmax(logits.gather(-1, top_idx), -1)

    def dispatch(self, x: torch.Tensor, ok: torch.Tensor, top_idx: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """Mixture ``[B, N, d]`` of the chosen experts for the tokens with ``ok`` True (others: 0)."""
        out = x.new_zeros(x.shape)
        for e, expert in enumerate(self.experts):
            sel = (top_idx == e) & ok.unsqueeze(-1)  # [B, N, k]
            routed = sel.any(-1)
            w = (gates * sel).sum(-1)  # [B, N]
            if self.dense:
                y = expert.forward_dense(x, routed) if e < self.num_syn else expert(x) * routed.unsqueeze(-1)
                out = out + y * w.unsqueeze(-1)
            elif e < self.num_syn:
                out = out + expert(x, routed) * w.unsqueeze(-1)
            else:
                b_i, n_i = routed.nonzero(as_tuple=True)
                if b_i.numel():
                    y = expert(x[b_i, n_i]) * w[b_i, n_i].unsqueeze(-1)
                    out = out.index_put((b_i, n_i), y, accumulate=True)
        return out


# ------------------------------------------------------------------------------------------------------------
# token layout: sequence modalities as T-token streams, the others as one token each


@dataclass
class _Streams:
    """The model's tokens between layers.

    ``seq [B, Ms, T, d]`` (modalities ``seq_ids``), ``vec [B, Mv, d]`` (modalities ``vec_ids``, one token each);
    ``valid_seq [B, Ms, T]`` attention mask; ``present [B, M, T]`` real tokens of present modalities on the grid
    (a one-token modality's presence broadcast over T)."""

    seq: torch.Tensor
    vec: torch.Tensor
    valid_seq: torch.Tensor
    present: torch.Tensor
    seq_ids: list[int]
    vec_ids: list[int]

    def grid(self, seq: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
        """``[B, M, T, ...]`` in modality order from per-group values (one-token values broadcast over T)."""
        T = self.present.shape[2]
        parts = [seq] if self.seq_ids else []
        if self.vec_ids:
            parts.append(vec.unsqueeze(2).expand(vec.shape[0], vec.shape[1], T, *vec.shape[2:]))
        order = torch.as_tensor(self.seq_ids + self.vec_ids).argsort().to(self.present.device)
        return torch.cat(parts, 1)[:, order]

    def valid_grid(self) -> torch.Tensor:
        ones = torch.ones(self.vec.shape[:2], dtype=torch.bool, device=self.vec.device)
        return self.grid(self.valid_seq, ones)

    def fuse_weights(self) -> torch.Tensor:
        """``[B, M, T]``: present tokens; where none is present at (b, t), the missing-modality embeddings."""
        present, valid = self.present, self.valid_grid()
        return torch.where(present.any(1, keepdim=True), present, valid)


def _per_stream(layer: nn.Module, x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Apply a sequence layer ``layer(x [N, L, d], key_padding) -> [N, L, d]`` to each stream of ``x [B, S, L,
    d]`` with masked steps excluded as keys (``valid [B, S, L]``; None = all valid)."""
    B, S, L, d = x.shape
    if S == 0:
        return x
    pad = None
    if valid is not None:
        v = valid.reshape(B * S, L)
        pad = key_padding(~v & v.any(1, keepdim=True))
    return layer(x.reshape(B * S, L, d), pad).view(B, S, L, d)


class MoEBlock(nn.Module):
    """Per-stream self-attention + LayerNorm -> router -> top-k experts on the routed tokens -> average over the
    present modalities at each step (a one-token modality joins every step) -> residual -> LayerNorm."""

    def __init__(self, cfg: TimeMoE.Config) -> None:
        super().__init__()
        d = cfg.hidden
        self.attn = nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.norm_in = nn.LayerNorm(d)
        self.moe = MoELayer(cfg)
        self.norm_out = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)

    def _attend(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        a, _ = self.attn(x, x, x, key_padding_mask=pad, need_weights=False)
        return self.norm_in(x + self.drop(a))

    def _router_logits(
        self, s: _Streams, a_seq: torch.Tensor, a_vec: torch.Tensor, U: torch.Tensor, R: torch.Tensor, S: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Router logits for the sequence tokens ``[B, Ms, T, E]`` and the one-token modalities ``[B, Mv, E]``."""
        B, M, T = s.present.shape
        not_self = ~torch.eye(M, dtype=torch.bool, device=U.device)
        E = len(self.moe.experts)
        out_seq = a_seq.new_zeros(B, len(s.seq_ids), T, E)
        out_vec = a_vec.new_zeros(B, len(s.vec_ids), E)
        if s.seq_ids:
            ids = s.seq_ids
            partner = s.present.unsqueeze(1) & not_self[ids].view(1, len(ids), M, 1)
            RS = torch.stack([R[ids], S[ids]], -1)  # [Ms, M, T, 2]
            out_seq = self.moe.router(a_seq, s.present[:, ids], partner, U[ids], RS)
        if s.vec_ids:
            ids = s.vec_ids
            partner = (s.present.any(-1).unsqueeze(1) & not_self[ids].unsqueeze(0)).unsqueeze(-1)  # [B, Mv, M, 1]
            RS = torch.stack([R[ids].mean(-1, keepdim=True), S[ids].mean(-1, keepdim=True)], -1)  # [Mv, M, 1, 2]
            feed = s.present[:, ids].any(-1, keepdim=True)
            Uv = U[ids].mean(-1, keepdim=True)
            out_vec = self.moe.router(a_vec.unsqueeze(2), feed, partner, Uv, RS).squeeze(2)
        return out_seq, out_vec

    def forward(
        self, s: _Streams, U: torch.Tensor, R: torch.Tensor, S: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """-> fused stream ``[B, T, d]`` and the routing: ``probs``/``choice`` on the grid ``[B, M, T, E|k]``,
        ``flat_probs [n, E]``/``flat_choice [n, k]`` of the real routed tokens (one per one-token modality)."""
        B, Ms, T, d = s.seq.shape
        Mv = s.vec.shape[1]
        a_seq = _per_stream(lambda x, pad: self._attend(x, pad), s.seq, s.valid_seq)
        a_vec = self._attend(s.vec.reshape(B * Mv, 1, d), None).view(B, Mv, d) if Mv else s.vec
        l_seq, l_vec = self._router_logits(s, a_seq, a_vec, U, R, S)
        E = l_seq.shape[-1]
        logits = torch.cat([l_seq.reshape(B, Ms * T, E), l_vec], 1)  # [B, N, E]
        flat = torch.cat([a_seq.reshape(B, Ms * T, d), a_vec], 1)
        ok = torch.cat([s.valid_seq.reshape(B, Ms * T), torch.ones(B, Mv, dtype=torch.bool, device=flat.device)], 1)
        top_idx, gates = self.moe.choose(logits)
        y = self.moe.dispatch(flat, ok, top_idx, gates)
        probs = torch.softmax(logits, -1)
        y_seq, y_vec = y[:, : Ms * T].view(B, Ms, T, d), y[:, Ms * T :]
        w = s.fuse_weights().to(y.dtype).unsqueeze(-1)  # [B, M, T, 1]
        den = w.sum(1).clamp_min(1e-6)
        fused = (s.grid(y_seq, y_vec) * w).sum(1) / den
        base = (s.grid(a_seq, a_vec) * w).sum(1) / den
        k = top_idx.shape[-1]
        real = torch.cat([s.present[:, s.seq_ids].reshape(B, Ms * T), s.present[:, s.vec_ids, 0]], 1)
        routing = {
            "probs": s.grid(probs[:, : Ms * T].view(B, Ms, T, E), probs[:, Ms * T :]),
            "choice": s.grid(top_idx[:, : Ms * T].view(B, Ms, T, k), top_idx[:, Ms * T :]),
            "flat_probs": probs[real],
            "flat_choice": top_idx[real],
        }
        return self.norm_out(base + self.drop(fused)), routing


# ------------------------------------------------------------------------------------------------------------
# model


@register_model("timemoe")
class TimeMoE(nn.Module):
    """Time-MoE / MERGE fusion model with an R/U/S-aware router (see module docstring).

    The training harness gives it R/U/S (``dain.training.interaction_cache.provide_interactions`` reads
    :meth:`interaction_request` and calls :meth:`set_interactions`); until then they are zero (router context
    empty, R/U/S losses zero). The tensors are persistent buffers, so they travel with checkpoints.
    """

    router_axis = "modality"  # routing["router_probs"] is [B, M, T, E], "router_mask" [B, M, T] (token-MoE: per layer)

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
        theta_unique: float = 0.1  # fraction of the label entropy H(Y)
        theta_redundant: float = 0.05  # fraction of H(Y)
        theta_synergy: float = 0.05  # fraction of H(Y)
        rus_lags: str | tuple[int, ...] = "auto"  # "auto": per window on sequence pairs; "static"; or step lags
        rus_estimator: str = "auto"
        rus_max_samples: int = 0  # training rows the estimate uses (0 = the whole training split)
        rus_seed: int = 0

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self._check_lags(cfg.rus_lags)
        d, M = cfg.hidden, spec.num_modalities
        encs = {m.name: "transformer_seq" for m in spec.modalities if m.kind == "sequence"}
        encs.update(cfg.encoders)
        self.encode = ModalityEncoders(spec, d, cfg.dropout, cfg.encoder_layers, encs)
        self.seq_ids = [j for j, m in enumerate(spec.modalities) if m.kind == "sequence"]
        self.vec_ids = [j for j, m in enumerate(spec.modalities) if m.kind != "sequence"]
        seq_lens = [spec.modalities[j].shape[0] for j in self.seq_ids]
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
        self.register_buffer("rus_entropy", torch.ones(()))  # H(Y) in bits; thresholds are fractions of it
        self.register_buffer("rus_ready", torch.zeros((), dtype=torch.bool))

    # ---- interactions --------------------------------------------------------------------------------------

    @staticmethod
    def _check_lags(lags: object) -> None:
        if isinstance(lags, str):
            if lags not in ("auto", "static"):
                raise ValueError(f"rus_lags must be 'auto', 'static' or a list of lags >= 0, got {lags!r}")
            return
        if not isinstance(lags, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in lags
        ):
            raise ValueError(f"rus_lags must be 'auto', 'static' or a list of lags >= 0, got {lags!r}")

    def interaction_request(self) -> InteractionRequest | None:
        """What the harness must estimate on the training split for this model (None: nothing; the router reads no
        R/U/S and there are no R/U/S losses)."""
        c = self.cfg
        if not (c.use_rus or c.aux_losses):
            return None
        lags = c.rus_lags if isinstance(c.rus_lags, str) else tuple(int(v) for v in c.rus_lags)
        return InteractionRequest(self.num_tokens, lags, c.rus_estimator, c.rus_max_samples, c.rus_seed)

    def set_interactions(
        self, U: torch.Tensor, R: torch.Tensor, S: torch.Tensor, label_entropy: float | None = None
    ) -> None:
        """Set ``U [M, T']``, ``R, S [M, M, T']`` (bits) and the label entropy H(Y) (bits) the thresholds are
        fractions of (None keeps the current one, 1 bit until set); ``T' != T`` is resampled (nearest) onto the
        token grid."""
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
        if label_entropy is not None:
            if not label_entropy >= 0:
                raise ValueError(f"label_entropy must be >= 0 bits, got {label_entropy}")
            self.rus_entropy.fill_(float(label_entropy))
        self.rus_ready.fill_(True)

    def thresholds(self) -> tuple[float, float, float]:
        """``(theta_U, theta_R, theta_S)`` in bits: the configured fractions of H(Y)."""
        h = float(self.rus_entropy)
        c = self.cfg
        return (c.theta_unique * h, c.theta_redundant * h, c.theta_synergy * h)

    # ---- forward -------------------------------------------------------------------------------------------

    def _to_grid(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map ``[B, L, d]`` tokens (mask ``[B, L]``) onto the ``T``-token grid (masked pooling /
        repetition)."""
        L, T = tokens.shape[1], self.num_tokens
        if L < T:
            idx = (torch.arange(T, device=tokens.device) * L) // T
            return tokens[:, idx], mask[:, idx]
        return pool_tokens(tokens, mask, T)

    def _streams(self, batch: dict) -> _Streams:
        enc = self.encode(batch)
        names = self.spec.modality_names
        B, T = batch["mask"].shape[0], self.num_tokens
        seq, valid = [], []
        for j in self.seq_ids:
            e = enc[names[j]]
            msk = e.token_mask
            if msk is None:
                msk = torch.ones(e.tokens.shape[:2], dtype=torch.bool, device=e.tokens.device)
            t, v = self._to_grid(e.tokens, msk)
            seq.append(t + self.modality_emb[j])
            valid.append(v)
        d = self.cfg.hidden
        dev = self.modality_emb.device
        x_seq = torch.stack(seq, 1) if seq else torch.zeros(B, 0, T, d, device=dev)
        valid_seq = torch.stack(valid, 1) if valid else torch.zeros(B, 0, T, dtype=torch.bool, device=dev)
        vec = [enc[names[j]].pooled + self.modality_emb[j] for j in self.vec_ids]
        x_vec = torch.stack(vec, 1) if vec else torch.zeros(B, 0, d, device=dev)
        s = _Streams(x_seq, x_vec, valid_seq, valid_seq.new_zeros(B, 0, T), self.seq_ids, self.vec_ids)
        s.present = real_mask(s.valid_grid(), batch["mask"])
        return s

    def forward(self, batch: dict) -> ModelOutput:
        s = self._streams(batch)
        U, R, S = self.rus_U, self.rus_R, self.rus_S
        losses: dict[str, list[torch.Tensor]] = {}
        routing: dict[str, torch.Tensor] = {}
        fused: torch.Tensor | None = None
        for layer in self.layers:
            if isinstance(layer, MoEBlock):
                fused, routing = layer(s, U, R, S)
                self._add_losses(losses, routing, s.present)
                # every stream now carries the fused stream (a one-token modality becomes a T-token stream too)
                B, M, T = s.present.shape
                fused_valid = s.fuse_weights().any(1, keepdim=True).expand(B, M, T)
                s = _Streams(
                    fused.unsqueeze(1).expand(B, M, T, fused.shape[-1]),
                    fused.new_zeros(B, 0, fused.shape[-1]),
                    fused_valid,
                    s.present,
                    list(range(M)),
                    [],
                )
            else:
                s.seq = _per_stream(lambda x, pad, lay=layer: lay(x, src_key_padding_mask=pad), s.seq, s.valid_seq)
                if s.vec_ids:
                    B, Mv, d = s.vec.shape
                    s.vec = layer(s.vec.reshape(B * Mv, 1, d)).view(B, Mv, d)
        if fused is None or not isinstance(self.layers[-1], MoEBlock):
            # average the present streams (no MoE layer, or layers after the last one)
            w = s.fuse_weights().to(s.seq.dtype).unsqueeze(-1)
            fused = (s.grid(s.seq, s.vec) * w).sum(1) / w.sum(1).clamp_min(1e-6)
        tv = s.fuse_weights().any(1).to(fused.dtype).unsqueeze(-1)
        pooled = (self.norm(fused) * tv).sum(1) / tv.sum(1).clamp_min(1.0)
        logits = self.head(pooled)
        out_losses = {k: torch.stack(v).mean() for k, v in losses.items()}
        stats: dict[str, torch.Tensor] = {}
        record: dict[str, torch.Tensor] = {}
        if routing:
            # router_mask: the real tokens of present modalities, the only ones whose router_probs mean anything
            record = {"router_probs": routing["probs"], "router_mask": s.present, "expert_choice": routing["choice"]}
            fp = routing["flat_probs"]
            n = max(fp.shape[0], 1)
            ent = -(fp * (fp + 1e-9).log()).sum(-1)
            stats = {
                "router_entropy": (ent.sum() / n).detach(),
                "synergy_mass": (fp[:, : self.cfg.num_synergy_experts].sum(-1).sum() / n).detach(),
            }
        return ModelOutput(logits, out_losses, record, stats)

    def _add_losses(
        self, acc: dict[str, list[torch.Tensor]], routing: dict[str, torch.Tensor], present: torch.Tensor
    ) -> None:
        c = self.cfg
        if c.lambda_load > 0:
            bal = load_balancing_loss(routing["flat_probs"], routing["flat_choice"], c.num_experts)
            acc.setdefault("load_balance", []).append(c.lambda_load * bal)
        if c.aux_losses:
            terms = rus_losses(
                routing["probs"],
                present,
                self.rus_U,
                self.rus_R,
                self.rus_S,
                min(c.num_synergy_experts, c.num_experts),
                self.thresholds(),
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


@register_model("timemoe_static")
class TimeMoEStatic(TimeMoE):
    """Ablation: one static R/U/S per modality pair, broadcast over time (no per-window estimates)."""

    @dataclass
    class Config(TimeMoE.Config):
        rus_lags: str | tuple[int, ...] = "static"
