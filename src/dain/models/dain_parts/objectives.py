"""DAIN's auxiliary objectives (unweighted; the model multiplies each by its lambda).

The consensus prediction is trained by the harness's task loss. Beside it:

* ``agents`` (deep supervision): every available agent's own prediction gets the task loss, so each agent is a good
  predictor on its own and the consensus is a mixture of good predictors (never weaker than the shared agent);
* ``route``: the controller learns, for every sample and every agent (chosen or not), which agent it should trust:
  cross-entropy from the controller's distribution to the cost-aware oracle ``softmax(-(loss_k + c * cost_k) / tau)``
  built from the agents' own per-sample losses (detached);
* ``spec`` (specialisation): redundancy agents must predict from each single present modality alone;
* ``sparse``: expected compute of the routing distribution, ``sum_k p_k * cost_k`` (costs as a fraction of running
  every agent; the shared agent costs 0);
* ``comm``: expected kilobits per sample if the routing distribution's mass were spent on messaging agents,
  ``R * r * b * budget * (1 - p_shared) / 1000``."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def per_sample_task_loss(logits: torch.Tensor, target: torch.Tensor, task: str) -> torch.Tensor:
    """Task loss per sample [N], the per-sample form of the training loss (cross-entropy, mean BCE over outputs, or
    mean smooth-L1 for regression, as :func:`dain.training.metrics.task_loss`)."""
    if task == "multiclass":
        return F.cross_entropy(logits, target.long().view(-1), reduction="none")
    target = target.to(logits.dtype).view_as(logits)
    if task in ("binary", "multilabel"):
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(-1)
    return F.smooth_l1_loss(logits, target, reduction="none").mean(-1)


def agents_loss(agent_losses: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
    """Mean of the per-sample losses [B, K+1] over available (sample, agent) pairs."""
    w = available.to(agent_losses.dtype)
    return (agent_losses * w).sum() / w.sum().clamp_min(1.0)


def route_target(
    agent_losses: torch.Tensor, available: torch.Tensor, cost: torch.Tensor, cost_weight: float, temperature: float
) -> torch.Tensor:
    """Oracle routing distribution [B, K+1]: cheaper and more accurate agents get more mass (no gradient)."""
    logits = -(agent_losses.detach() + cost_weight * cost.view(1, -1)) / max(temperature, 1e-6)
    return torch.softmax(logits.masked_fill(~available, float("-inf")), -1)


def route_loss(masked_scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy from the controller's distribution (log-softmax of ``masked_scores``, -inf = unavailable) to
    ``target``."""
    logp = torch.log_softmax(masked_scores, -1).masked_fill(target <= 0, 0.0)
    return -(target * logp).sum(-1).mean()


def expected_cost(probs: torch.Tensor, cost: torch.Tensor) -> torch.Tensor:
    """``sum_k p_k cost_k`` averaged over samples."""
    return (probs * cost.view(1, -1)).sum(-1).mean()


def expected_kbits(
    probs: torch.Tensor, rounds: int, msg_dim: int, msg_bits: int, budget: int, woken: torch.Tensor | None = None
) -> torch.Tensor:
    """Expected kilobits per sample when the routing mass off the shared agent wakes ``budget`` messaging agents.
    ``woken`` [B] (agents that message, shared included) replaces the expectation where routing does not decide who
    wakes (dense gating): the cost is then a constant, with no gradient to the router."""
    per_msg = msg_dim * (msg_bits if msg_bits > 0 else 32)
    if rounds == 0 or (budget == 0 and woken is None):
        return probs.sum() * 0.0
    n = woken.to(probs.dtype) + probs.sum() * 0.0 if woken is not None else 1.0 + budget * (1.0 - probs[:, 0])
    return (rounds * per_msg * n / 1000.0).mean()
