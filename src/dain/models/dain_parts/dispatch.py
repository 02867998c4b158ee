"""Sparse dispatch of per-agent computations.

Two backends with identical numbers:

* ``gather``: agent k runs only on the rows where it is active (``index_select``), results are written back
  with one ``index_copy`` into the slot tensor; an inactive agent costs nothing for that sample;
* ``dense``: every agent runs on every row and the results are selected with the active mask (cheaper launch
  overhead for tiny batches, K times the FLOPs). ``dain`` picks one in its config; FLOPs are counted on the
  one that runs."""

from __future__ import annotations

from collections.abc import Callable

import torch

from dain.models.dain_parts.controller import Schedule

DISPATCHES = ("gather", "dense")


def dispatch_rows(
    fn: Callable[[int, torch.Tensor | None], torch.Tensor],
    sched: Schedule,
    batch_size: int,
    mode: str,
    d_out: int,
    like: torch.Tensor,
) -> torch.Tensor:
    """Run ``fn(k, rows)`` (``rows``: Long sample indices, or ``None`` = all rows) for each agent -> [B, S,
    d_out].

    ``fn`` must be row-wise (no interaction between samples)."""
    B, S = sched.slot_agent.shape
    out = like.new_zeros(B * S, d_out)
    if S == 0:
        return out.view(B, S, d_out)
    if mode == "dense":
        sample_of_slot = torch.arange(B, device=like.device).repeat_interleave(S)
        agent_of_slot = torch.where(sched.slot_mask, sched.slot_agent, -1).reshape(-1)
        for k in range(sched.num_agents):
            yk = fn(k, None)  # [B, d_out]
            out = torch.where((agent_of_slot == k).unsqueeze(1), yk.index_select(0, sample_of_slot), out)
        return out.view(B, S, d_out)
    rows, pos = sched.groups()
    ys, ps = [], []
    for k in range(sched.num_agents):
        if rows[k].numel():
            ys.append(fn(k, rows[k]))
            ps.append(pos[k])
    if ys:
        out = out.index_copy(0, torch.cat(ps), torch.cat(ys))
    return out.view(B, S, d_out)


def dispatch_slots(
    fn: Callable[[int, torch.Tensor], torch.Tensor], x: torch.Tensor, sched: Schedule, mode: str, d_out: int
) -> torch.Tensor:
    """Apply agent ``k``'s function to the slots it occupies: x [B, S, d_in] -> [B, S, d_out]."""
    B, S = sched.slot_agent.shape
    flat = x.reshape(B * S, -1)
    out = x.new_zeros(B * S, d_out)
    if S == 0:
        return out.view(B, S, d_out)
    if mode == "dense":
        agent_of_slot = torch.where(sched.slot_mask, sched.slot_agent, -1).reshape(-1)
        for k in range(sched.num_agents):
            out = torch.where((agent_of_slot == k).unsqueeze(1), fn(k, flat), out)
        return out.view(B, S, d_out)
    _, pos = sched.groups()
    ys, ps = [], []
    for k in range(sched.num_agents):
        if pos[k].numel():
            ys.append(fn(k, flat.index_select(0, pos[k])))
            ps.append(pos[k])
    if ys:
        out = out.index_copy(0, torch.cat(ps), torch.cat(ys))
    return out.view(B, S, d_out)
