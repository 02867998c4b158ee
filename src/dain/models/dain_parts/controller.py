"""Meta-controller: scores agents per sample from the pooled modality vectors and the mask, and schedules a
sparse set of active agents (the *slots* of a sample).

Gating modes

* ``topk``: the ``budget`` highest-scoring available agents;
* ``threshold``: adaptive; the smallest set of top agents whose controller probability mass reaches
  ``threshold`` (top-p / nucleus routing), at least one and at most ``budget``: a confident controller wakes
  fewer agents;
* ``dense``: every available agent (no sparsity; the ``dain_dense`` ablation).

Agents whose readable modalities are all absent for a sample get score ``-inf`` and are never active for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

GATINGS = ("topk", "threshold", "dense")


@dataclass
class Schedule:
    """Which agents run for which samples; slots = a compact per-sample list of active agents, best first."""

    scores: torch.Tensor  # [B, K] controller scores, -inf where unavailable
    probs: torch.Tensor  # [B, K] softmax over available agents
    available: torch.Tensor  # Bool [B, K]
    slot_agent: torch.Tensor  # Long [B, S], agent id of each slot (0 in empty slots)
    slot_mask: torch.Tensor  # Bool [B, S]
    num_agents: int
    _groups: tuple[list[torch.Tensor], list[torch.Tensor]] | None = field(default=None, repr=False)

    @property
    def active(self) -> torch.Tensor:
        """Bool [B, K]: agent k is active for sample b."""
        return self.to_agents(self.slot_mask.to(torch.float32)) > 0

    def to_agents(self, x: torch.Tensor) -> torch.Tensor:
        """Scatter a per-slot tensor [B, S, *rest] to per-agent [B, K, *rest] (zeros for inactive agents)."""
        B, S = self.slot_agent.shape
        out = x.new_zeros(B, self.num_agents, *x.shape[2:])
        if S == 0:
            return out
        x = x * self.slot_mask.view(B, S, *([1] * (x.dim() - 2))).to(x.dtype)
        idx = self.slot_agent.view(B, S, *([1] * (x.dim() - 2))).expand_as(x)
        return out.scatter_add(1, idx, x)

    def groups(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per agent k: (sample rows, flat slot positions b*S+s) where it is active (one host sync)."""
        if self._groups is None:
            B, S = self.slot_agent.shape
            flat = torch.nonzero(self.slot_mask.reshape(-1), as_tuple=False).squeeze(1)
            agent = self.slot_agent.reshape(-1)[flat]
            order = torch.argsort(agent, stable=True)
            flat = flat[order]
            counts = torch.bincount(agent, minlength=self.num_agents).tolist()
            pos = list(torch.split(flat, counts))
            rows = [p // max(S, 1) for p in pos]
            self._groups = (rows, pos)
        return self._groups


class MetaController(nn.Module):
    """MLP over ``[pooled_1; ...; pooled_M; mask]`` -> agent scores ``[B, K]``."""

    def __init__(self, d: int, num_modalities: int, num_agents: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(num_modalities * d + num_modalities),
            nn.Linear(num_modalities * d + num_modalities, d),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(d, num_agents),
        )

    def forward(self, pooled: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([*pooled, mask.to(pooled[0].dtype)], dim=-1))


def schedule(
    scores: torch.Tensor,
    available: torch.Tensor,
    gating: str,
    budget: int,
    threshold: float,
    noise: float = 0.0,
) -> Schedule:
    """Select active agents per sample; ``noise`` (training only) perturbs the selection, not the weights."""
    if gating not in GATINGS:
        raise ValueError(f"gating must be one of {GATINGS}, got {gating!r}")
    B, K = scores.shape
    masked = scores.masked_fill(~available, float("-inf"))
    probs = torch.softmax(masked, dim=-1)
    sel = masked.detach()
    if noise > 0:
        sel = sel + noise * torch.randn_like(sel)
    cap = K if gating == "dense" else max(1, min(int(budget), K))
    top, slot_agent = torch.topk(sel, cap, dim=-1)
    slot_mask = torch.isfinite(top)
    if gating == "threshold":
        p_sorted = torch.gather(probs.detach(), 1, slot_agent)
        before = torch.cumsum(p_sorted, dim=-1) - p_sorted  # mass of the better agents
        slot_mask = slot_mask & (before < threshold)
        slot_mask[:, 0] = True
    n = int(slot_mask.sum(1).max()) if B else 0
    slot_agent = torch.where(slot_mask, slot_agent, torch.zeros_like(slot_agent))[:, :n].contiguous()
    slot_mask = slot_mask[:, :n].contiguous()
    return Schedule(masked, probs, available, slot_agent, slot_mask, K)
