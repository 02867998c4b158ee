"""Compressed inter-agent communication among the *active* agents of a sample.

Per round, each active agent sends ``m_k = Q_b(tanh(W_down LN(z_k))) in [-1, 1]^r`` (``Q_b``: b-bit uniform
quantiser with a straight-through gradient; b = 0 keeps float32). Each active agent k receives ``sum_j a_kj
m_j`` over the *other* active agents j, with ``a_k = softmax_j(<W_q LN(z_k), W_key m_j> / sqrt(r))``, and
updates ``z_k <- z_k + W_up(received)`` (``W_up`` has no bias, so an agent that receives nothing is
unchanged).

Bits. A message is *sent* by an active agent in a round iff the sample has at least one other active agent
(someone to receive it). So per sample ``bits = R * r * (b if b > 0 else 32) * n_active * [n_active >= 2]``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def quantise(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Uniform ``bits``-bit quantisation of ``x in [-1, 1]`` (2^bits levels), straight-through gradient."""
    if bits <= 0:
        return x
    half = (2**bits - 1) / 2
    q = torch.round((x.clamp(-1, 1) + 1) * half) / half - 1
    if not (torch.is_grad_enabled() and x.requires_grad):  # inference: no straight-through bookkeeping
        return q
    return x + (q - x).detach()


def count_bits(slot_mask: torch.Tensor, rounds: int, msg_dim: int, msg_bits: int) -> torch.Tensor:
    """Exact bits sent per sample (Float [B]) for a slot mask [B, S]; see the module docstring."""
    n = slot_mask.sum(1).to(torch.float32)
    per_msg = msg_dim * (msg_bits if msg_bits > 0 else 32)
    return rounds * per_msg * n * (n >= 2).to(torch.float32)


class CommRound(nn.Module):
    """One round of message passing in slot space ``z [B, S, d]`` with ``slot_mask [B, S]``."""

    def __init__(self, d: int, msg_dim: int, msg_bits: int) -> None:
        super().__init__()
        self.r, self.bits = msg_dim, msg_bits
        self.norm = nn.LayerNorm(d)
        self.down = nn.Linear(d, msg_dim)
        self.query = nn.Linear(d, msg_dim)
        self.key = nn.Linear(msg_dim, msg_dim, bias=False)
        self.up = nn.Linear(msg_dim, d, bias=False)

    def forward(self, z: torch.Tensor, slot_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the updated states and the attention ``a [B, S_recv, S_send]`` (zero where not allowed)."""
        B, S, d = z.shape
        h = self.norm(z).reshape(B * S, d)  # 2-D linears: one fused matmul each
        msg = quantise(torch.tanh(self.down(h)), self.bits).view(B, S, self.r)
        query = self.query(h).view(B, S, self.r)
        logits = torch.bmm(query, self.key(msg).transpose(1, 2)) / math.sqrt(self.r)  # [B, S_recv, S_send]
        allowed = slot_mask.unsqueeze(2) & slot_mask.unsqueeze(1) & ~torch.eye(S, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(~allowed, torch.finfo(logits.dtype).min)
        att = torch.softmax(logits, dim=-1) * allowed
        received = torch.bmm(att, msg)
        return z + self.up(received), att
