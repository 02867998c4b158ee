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
    fn: Callable[[int, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    weights: torch.Tensor,
    sched: Schedule,
    mode: str,
    d_out: int,
) -> torch.Tensor:
    """The weighted sum over each sample's slots of agent ``k``'s function of the slots it occupies:
    ``out[b] = sum_s weights[b, s] * fn(agent(b, s), x[b, s])``, x [B, S, d_in], weights [B, S] -> [B, d_out].

    ``gather`` gathers the active slots once in agent order, runs each agent on its contiguous block and adds the
    weighted results into their samples (``index_add``): no per-agent gather, no [B, S, d_out] intermediate."""
    B, S = sched.slot_agent.shape
    if S == 0:
        return x.new_zeros(B, d_out)
    flat = x.reshape(B * S, -1)
    if mode == "dense":
        out = x.new_zeros(B * S, d_out)
        agent_of_slot = torch.where(sched.slot_mask, sched.slot_agent, -1).reshape(-1)
        for k in range(sched.num_agents):
            out = torch.where((agent_of_slot == k).unsqueeze(1), fn(k, flat), out)
        return (weights.unsqueeze(-1) * out.view(B, S, d_out)).sum(1)
    _, pos = sched.groups()
    order = sched.slot_order()
    xs = flat.index_select(0, order)
    ys, start = [], 0
    for k in range(sched.num_agents):
        n = pos[k].numel()
        if n:
            ys.append(fn(k, xs.narrow(0, start, n)))
            start += n
    y = torch.cat(ys) if len(ys) > 1 else ys[0]
    w = weights.reshape(-1).index_select(0, order).unsqueeze(1).to(y.dtype)
    return y.new_zeros(B, d_out).index_add_(0, torch.div(order, S, rounding_mode="floor"), w * y)
