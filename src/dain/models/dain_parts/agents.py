"""Interaction agents and their roles.

A role fixes which modalities an agent reads and which specialisation test it gets:

* ``unique:m``          reads only modality ``m``; should change when ``m`` is perturbed;
* ``redundant:a+b|all`` reads the set; should be robust to perturbing any single member;
* ``synergy:a+b|all``   reads the set; should change when any single member is perturbed;
* ``free``              reads every modality; no specialisation test."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

ROLE_KINDS = ("unique", "redundant", "synergy", "free")


@dataclass(frozen=True)
class AgentRole:
    """A parsed role: ``kind`` and the indices of the modalities the agent reads."""

    kind: str
    modalities: tuple[int, ...]
    text: str


def parse_role(text: str, modality_names: list[str]) -> AgentRole:
    """Parse ``"unique:fou"``, ``"redundant:all"``, ``"synergy:fou+pix"`` or ``"free"``."""
    kind, _, arg = text.strip().partition(":")
    if kind not in ROLE_KINDS:
        raise ValueError(f"agent role {text!r}: kind must be one of {ROLE_KINDS}")
    M = len(modality_names)
    if kind == "free":
        if arg not in ("", "all"):
            raise ValueError(f"agent role {text!r}: 'free' takes no modality set (it reads all)")
        return AgentRole("free", tuple(range(M)), "free")
    if not arg:
        raise ValueError(f"agent role {text!r} needs a modality set, e.g. {kind}:{modality_names[0]}")
    names = modality_names if arg == "all" else arg.split("+")
    unknown = [n for n in names if n not in modality_names]
    if unknown:
        raise ValueError(f"agent role {text!r}: unknown modality {unknown}; modalities: {modality_names}")
    idx = tuple(sorted({modality_names.index(n) for n in names}))
    if kind == "unique" and len(idx) != 1:
        raise ValueError(f"agent role {text!r}: a uniqueness agent reads exactly one modality")
    return AgentRole(kind, idx, text.strip())


def default_roles(modality_names: list[str], num_agents: int = 0, max_agents: int = 24) -> list[str]:
    """M uniqueness agents, one redundancy and one synergy agent over all modalities, then free agents.

    ``num_agents=0`` means M + 4 (two free agents), capped at ``max_agents``. With fewer agents than M + 2 the
    redundancy and synergy agents are kept first, then uniqueness agents for the first modalities."""
    M = len(modality_names)
    K = num_agents if num_agents > 0 else min(M + 4, max(max_agents, 4))
    unique = [f"unique:{m}" for m in modality_names] if M > 1 else []
    inter = ["redundant:all", "synergy:all"] if M > 1 else []
    if K >= len(unique) + len(inter):
        roles = unique + inter
    else:
        roles = (inter + unique)[:K]
    return roles + ["free"] * (K - len(roles))


class _CrossBlock(nn.Module):
    """Queries attend to (masked) tokens, then a pre-norm MLP (plain matmuls: FLOP counting sees them)."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.h = heads if d % heads == 0 else 1
        self.dh = d // self.h
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.o = nn.Linear(d, d)
        self.mlp = nn.Sequential(
            nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * d, d)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # the queries themselves are extra keys (a learned "attend to nothing" option): attention stays
        # informative even over a single token, and every row has a valid key
        n, Q, d = x.shape
        kv_in = torch.cat([x, tokens], 1)
        mask = torch.cat([mask.new_ones(n, Q), mask], 1)
        q = self.q(self.norm_q(x)).view(n, Q, self.h, self.dh)
        k, v = self.kv(self.norm_kv(kv_in)).view(n, kv_in.shape[1], 2, self.h, self.dh).unbind(2)
        logits = torch.einsum("nqhd,nlhd->nhql", q, k) / math.sqrt(self.dh)
        logits = logits.masked_fill(~mask[:, None, None, :], float("-inf"))
        att = self.drop(torch.softmax(logits, dim=-1))
        out = torch.einsum("nhql,nlhd->nqhd", att, v).reshape(n, Q, d)
        x = x + self.drop(self.o(out))
        return x + self.drop(self.mlp(x))


class InteractionAgent(nn.Module):
    """Learned query token(s) cross-attending over the agent's readable tokens, + MLP -> state ``z`` [n, d].

    The queries also serve as keys, so fully masked rows are safe. ``head`` maps a (post-communication) state
    to the agent's own prediction."""

    def __init__(
        self,
        d: int,
        num_outputs: int,
        heads: int = 4,
        layers: int = 1,
        queries: int = 1,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(queries, d) * 0.02)
        self.blocks = nn.ModuleList([_CrossBlock(d, heads, dropout) for _ in range(max(1, layers))])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, num_outputs))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.query.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        for blk in self.blocks:
            x = blk(x, tokens, mask)
        return self.norm(x.mean(1))
