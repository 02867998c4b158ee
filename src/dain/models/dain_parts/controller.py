"""Meta-controller: scores the shared agent and the K routed agents per sample from the glimpses and the mask, and
schedules which routed agents run (the *slots* of a sample). Slot 0 is always the shared agent.

Gating modes

* ``topk``: the shared agent plus the ``budget`` highest-scoring available routed agents;
* ``threshold``: adaptive (a confidence cascade, run by the model at inference): agents wake one at a time in the
  ``topk`` order while the sample's consensus is less confident than ``threshold`` (see :func:`confidence`); in
  training it schedules like ``topk``;
* ``dense``: every available agent (no sparsity; the ``dain_dense`` ablation).

Agents whose readable modalities are all absent for a sample are unavailable (score ``-inf``) and never active.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

GATINGS = ("topk", "threshold", "dense")


@dataclass
class Schedule:
    """Which agents run for which samples; slots = a compact per-sample list of active agents (slot 0: shared)."""

    scores: torch.Tensor  # [B, K+1] controller scores, -inf where unavailable
    probs: torch.Tensor  # [B, K+1] softmax over available agents
    available: torch.Tensor  # Bool [B, K+1]
    slot_agent: torch.Tensor  # Long [B, S], agent id of each slot (0 in empty slots)
    slot_mask: torch.Tensor  # Bool [B, S]
    num_agents: int  # K+1, the shared agent included
    _groups: tuple[list[torch.Tensor], list[torch.Tensor]] | None = field(default=None, repr=False)
    _order: torch.Tensor | None = field(default=None, repr=False)

    _active: torch.Tensor | None = field(default=None, repr=False)

    @property
    def active(self) -> torch.Tensor:
        """Bool [B, K+1]: agent k is active for sample b."""
        if self._active is None:
            self._active = self.to_agents(self.slot_mask.to(torch.float32)) > 0
        return self._active

    def to_agents(self, x: torch.Tensor) -> torch.Tensor:
        """Scatter a per-slot tensor [B, S, *rest] to per-agent [B, K+1, *rest] (zeros for inactive agents)."""
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
            self._order = flat
        return self._groups

    def slot_order(self) -> torch.Tensor:
        """Flat positions b*S+s of every active slot, grouped by agent (the concatenation of ``groups()[1]``, kept
        when ``groups()`` computes it)."""
        self.groups()
        assert self._order is not None
        return self._order


class MetaController(nn.Module):
    """MLP over ``[glimpse_1; ...; glimpse_M; mask]`` -> scores of the shared agent and the K routed agents."""

    def __init__(self, in_dim: int, width: int, num_scores: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, width), nn.GELU(), nn.Dropout(dropout), nn.Linear(width, num_scores))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.net(context)


def schedule(
    scores: torch.Tensor,
    available: torch.Tensor,
    gating: str,
    budget: int,
    noise: float = 0.0,
) -> Schedule:
    """Select the active routed agents per sample (the shared agent, column 0, is always active); ``noise``
    (training only) perturbs the selection, never the weights."""
    if gating not in GATINGS:
        raise ValueError(f"gating must be one of {GATINGS}, got {gating!r}")
    B, K1 = scores.shape
    K = K1 - 1
    masked = scores.masked_fill(~available, float("-inf"))
    probs = torch.softmax(masked, dim=-1)
    cap = K if gating == "dense" else max(0, min(int(budget), K))
    sel = masked[:, 1:].detach()
    if noise > 0:
        sel = sel + noise * torch.randn_like(sel)
    top, idx = torch.topk(sel, cap, dim=-1)
    ok = torch.isfinite(top)
    slot_agent = torch.cat([torch.zeros(B, 1, dtype=torch.long, device=scores.device), idx + 1], 1)
    slot_mask = torch.cat([torch.ones(B, 1, dtype=torch.bool, device=scores.device), ok], 1)
    fewest, most = 0, 0
    if B:  # one host sync: the fewest and the most routed agents a sample fills
        fewest, most = torch.stack(torch.aminmax(ok.sum(1))).tolist()
    if B and fewest == cap:  # every sample fills every slot: already compact
        return Schedule(masked, probs, available, slot_agent, slot_mask, K1)
    # compact: active routed agents first (stable), then trim to the widest sample
    order = torch.argsort((~slot_mask).to(torch.int8), dim=1, stable=True)
    slot_agent = torch.gather(slot_agent, 1, order)
    slot_mask = torch.gather(slot_mask, 1, order)
    n = 1 + most
    slot_agent = torch.where(slot_mask, slot_agent, torch.zeros_like(slot_agent))[:, :n].contiguous()
    slot_mask = slot_mask[:, :n].contiguous()
    return Schedule(masked, probs, available, slot_agent, slot_mask, K1)


def confidence(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Per-sample confidence [B] of a prediction: top class probability (multiclass), the least confident output's
    ``max(p, 1-p)`` (binary/multilabel); regression has no confidence (0: always uncertain)."""
    if task == "multiclass":
        return torch.softmax(logits, -1).max(-1).values
    if task in ("binary", "multilabel"):
        p = torch.sigmoid(logits)
        return torch.maximum(p, 1 - p).min(-1).values
    return logits.new_zeros(logits.shape[0])
