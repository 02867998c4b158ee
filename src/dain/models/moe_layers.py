"""Reusable sparse mixture-of-experts pieces: top-k router (softmax or Laplace gating), Switch load-balancing
loss, router z-loss, optional expert capacity with token dropping, and sparse gather/``index_add`` dispatch.

Tokens are flat ``[N, d]``. A routing decision is ``idx`` Long[N, k] (chosen experts, rank order), ``gates``
Float[N, k] (combine weights) and ``keep`` Bool[N, k] (False = assignment dropped by capacity). Sparse
dispatch only runs an expert on the tokens assigned to it, so an expert with no tokens costs nothing;
:func:`dense_dispatch` computes the same mixture by running every expert on every token (reference for
tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from dain.encoders.base import key_padding

GATINGS = ("softmax", "laplace")


def load_balancing_loss(probs: torch.Tensor, idx: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Switch-Transformer auxiliary loss ``E * sum_i f_i * P_i``.

    ``probs`` [N, E] router probabilities, ``idx`` [N, k] chosen experts. ``f_i`` is the fraction of the N*k
    assignments that go to expert i, ``P_i`` the mean router probability of expert i. Equals 1 for uniform
    routing and E when every token goes (with probability 1) to one expert. The one load-balancing loss of every MoE
    model: pass only the tokens that count (e.g. ``probs[valid]``).
    """
    if probs.shape[0] == 0:
        return probs.sum() * 0.0
    counts = torch.zeros(num_experts, dtype=probs.dtype, device=probs.device)
    counts.index_add_(0, idx.reshape(-1), torch.ones(idx.numel(), dtype=probs.dtype, device=probs.device))
    f = counts / idx.numel()
    p = probs.mean(0)
    return num_experts * (f * p).sum()


def router_z_loss(logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE router z-loss: mean over tokens of ``logsumexp(logits)^2`` (keeps router logits small)."""
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    return torch.logsumexp(logits, dim=-1).pow(2).mean()


def capacity_keep(idx: torch.Tensor, num_experts: int, capacity: int) -> torch.Tensor:
    """Bool[N, k]: which assignments fit in each expert's ``capacity`` slots.

    Priority is by choice rank first (all first choices before any second choice), then by token order, as in
    GShard.
    """
    n, k = idx.shape
    flat = idx.t().reshape(-1)  # rank-major order
    onehot = nn.functional.one_hot(flat, num_experts)
    pos = (onehot.cumsum(0) * onehot).sum(-1) - 1  # slot index within the chosen expert
    return (pos < capacity).view(k, n).t()


@dataclass
class Routing:
    """One router decision over N tokens."""

    logits: torch.Tensor  # [N, E]
    probs: torch.Tensor  # [N, E]
    idx: torch.Tensor  # [N, k]
    gates: torch.Tensor  # [N, k]
    keep: torch.Tensor  # [N, k]


class TopKRouter(nn.Module):
    """Linear (softmax) or Laplace (``-||x - w_e||_2``, as FuseMoE) router choosing k experts per token.

    Gates are the router probabilities of the chosen experts, renormalised over the k choices when ``k > 1``
    (GShard/FuseMoE); with ``k == 1`` the gate is the raw probability (Switch), so the router still gets
    gradient. ``noise_std`` > 0 adds Gaussian noise to the logits in training (exploration).
    """

    def __init__(self, d: int, num_experts: int, k: int = 1, gating: str = "softmax", noise_std: float = 0.0) -> None:
        super().__init__()
        if gating not in GATINGS:
            raise ValueError(f"gating must be one of {GATINGS}, got {gating!r}")
        if not 1 <= k <= num_experts:
            raise ValueError(f"top-k must be in [1, {num_experts}], got {k}")
        self.num_experts, self.k, self.gating, self.noise_std = num_experts, k, gating, noise_std
        if gating == "softmax":
            self.weight = nn.Parameter(torch.randn(num_experts, d) * 0.02)
        else:
            self.weight = nn.Parameter(torch.randn(num_experts, d) * 0.5)

    def gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.gating == "softmax":
            return x @ self.weight.t()
        return -torch.cdist(x, self.weight.to(x.dtype))

    def forward(self, x: torch.Tensor, capacity: int | None = None) -> Routing:
        logits = self.gate_logits(x)
        if self.training and self.noise_std > 0:
            logits = logits + torch.randn_like(logits) * self.noise_std
        probs = logits.softmax(-1)
        top_p, idx = probs.topk(self.k, dim=-1)
        gates = top_p / top_p.sum(-1, keepdim=True).clamp_min(1e-9) if self.k > 1 else top_p
        if capacity is None:
            keep = torch.ones_like(idx, dtype=torch.bool)
        else:
            keep = capacity_keep(idx, self.num_experts, capacity)
        return Routing(logits, probs, idx, gates, keep)


ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class FFNExpert(nn.Module):
    """Linear -> activation (GELU, or ReLU as in Time-MoE) -> Dropout -> Linear; the one FFN expert of every MoE
    model."""

    def __init__(self, d: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        act = ACTIVATIONS[activation]()
        self.net = nn.Sequential(nn.Linear(d, d_ff), act, nn.Dropout(dropout), nn.Linear(d_ff, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def sparse_dispatch(
    x: torch.Tensor, experts: nn.ModuleList, idx: torch.Tensor, gates: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """``y[n] = sum_j keep[n,j] * gates[n,j] * experts[idx[n,j]](x[n])``, running each expert only on its
    tokens (gather by sorted expert id, one call per non-empty expert, ``index_add`` combine)."""
    n, k = idx.shape
    tok = torch.arange(n, device=x.device).unsqueeze(1).expand(n, k).reshape(-1)
    sel = keep.reshape(-1)
    tok, e, g = tok[sel], idx.reshape(-1)[sel], gates.reshape(-1)[sel]
    order = torch.argsort(e, stable=True)
    tok, e, g = tok[order], e[order], g[order]
    counts = torch.bincount(e, minlength=len(experts)).tolist()
    out = x.new_zeros(x.shape)
    start = 0
    for i, c in enumerate(counts):
        if c == 0:
            continue
        t = tok[start : start + c]
        y = experts[i](x[t]) * g[start : start + c].unsqueeze(-1).to(x.dtype)
        out = out.index_add(0, t, y)
        start += c
    return out


def dense_dispatch(
    x: torch.Tensor, experts: nn.ModuleList, idx: torch.Tensor, gates: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """Same mixture as :func:`sparse_dispatch` computed densely (every expert on every token)."""
    w = torch.zeros(x.shape[0], len(experts), dtype=x.dtype, device=x.device)
    w = w.scatter_add(1, idx, (gates * keep.to(gates.dtype)).to(x.dtype))
    ys = torch.stack([ex(x) for ex in experts], dim=1)  # [N, E, d]
    return (w.unsqueeze(-1) * ys).sum(1)


class MoEFFN(nn.Module):
    """Top-k routed FFN experts over flat tokens, returning the mixture, the routing and the (unweighted) aux
    terms.

    ``capacity_factor`` (None = unlimited) gives each expert ``ceil(cf * N * k / E)`` slots; overflowing
    assignments are dropped (their share of the output is zero, so a residual connection passes the token
    through unchanged).
    """

    def __init__(
        self,
        d: int,
        num_experts: int,
        k: int = 1,
        d_ff: int | None = None,
        dropout: float = 0.0,
        gating: str = "softmax",
        capacity_factor: float | None = None,
        noise_std: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_experts, self.k, self.capacity_factor = num_experts, k, capacity_factor
        self.router = TopKRouter(d, num_experts, k, gating, noise_std)
        self.experts = nn.ModuleList([FFNExpert(d, d_ff or 2 * d, dropout) for _ in range(num_experts)])

    def capacity(self, n_tokens: int) -> int | None:
        if self.capacity_factor is None or self.capacity_factor <= 0:
            return None
        return max(1, math.ceil(self.capacity_factor * n_tokens * self.k / self.num_experts))

    def forward(self, x: torch.Tensor, routing: Routing | None = None) -> tuple[torch.Tensor, Routing, dict]:
        r = routing if routing is not None else self.router(x, self.capacity(x.shape[0]))
        y = sparse_dispatch(x, self.experts, r.idx, r.gates, r.keep)
        aux = {
            "balance": load_balancing_loss(r.probs, r.idx, self.num_experts),
            "z": router_z_loss(r.logits),
            "dropped": 1.0 - r.keep.float().mean() if r.keep.numel() else x.new_zeros(()),
        }
        return y, r, aux


class AttentionBlock(nn.Module):
    """Pre-norm multi-head self-attention with residual."""

    def __init__(self, d: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        a, _ = self.attn(h, h, h, key_padding_mask=key_padding(~keep), need_weights=False)
        return x + self.drop(a)
