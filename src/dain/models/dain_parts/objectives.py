"""DAIN's auxiliary objectives (unweighted; the model multiplies each by its lambda).

* specialisation (I2MoE-style role tests on perturbed inputs, computed by the model, terms defined here);
* sparse: expected number of active agents, as the perplexity ``exp(H(p))`` of the controller distribution
  over available agents (a differentiable soft count, 1 when the controller is certain);
* comm: expected kilobits per sample, ``R * r * b * soft_count * [n_active >= 2] / 1000``;
* balance: Switch-Transformer load balance ``K * sum_k f_k P_k`` (f: share of activations, P: mean
  probability);
* consensus: weighted mean divergence between each active agent's prediction and the consensus prediction."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def unique_term(z0: torch.Tensor, zp: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Uniqueness agent with its own modality perturbed: the (unit-normalised) state must move by ``margin``.

    This is I2MoE's triplet loss with anchor = positive (perturbing another modality cannot change an agent
    that does not read it, so that side of the triplet holds by construction)."""
    d = (F.normalize(z0, dim=-1) - F.normalize(zp, dim=-1)).norm(dim=-1)
    return F.relu(margin - d)


def redundant_term(z0: torch.Tensor, zp: torch.Tensor) -> torch.Tensor:
    """Redundancy agent: robust to perturbing any one modality -> ``1 - cos``."""
    return 1.0 - F.cosine_similarity(z0, zp, dim=-1)


def synergy_term(z0: torch.Tensor, zp: torch.Tensor) -> torch.Tensor:
    """Synergy agent: must change when any one modality is perturbed -> ``relu(cos)``."""
    return F.relu(F.cosine_similarity(z0, zp, dim=-1))


def soft_count(masked_scores: torch.Tensor) -> torch.Tensor:
    """Perplexity of the softmax of each row of ``masked_scores`` [B, K] (-inf = unavailable) -> [B]."""
    logp = torch.log_softmax(masked_scores, dim=-1)
    logp = logp.masked_fill(torch.isinf(masked_scores), 0.0)  # 0 * log 0 = 0, with a finite gradient
    return (-(logp.exp() * logp).sum(-1)).exp()


def balance_loss(active: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Switch load balance: ``K * sum_k f_k P_k`` (1 when uniform)."""
    K = probs.shape[1]
    f = active.to(probs.dtype).sum(0) / active.sum().clamp_min(1)
    return K * (f * probs.mean(0)).sum()


def consensus_loss(agent_logits: torch.Tensor, logits: torch.Tensor, weights: torch.Tensor, task: str) -> torch.Tensor:
    """Mean over samples of ``sum_s w_s * D(consensus || agent_s)`` (w and consensus detached).

    D: KL for multiclass, per-output Bernoulli KL (averaged) for binary/multilabel, squared error for
    regression."""
    target = logits.detach().unsqueeze(1)
    if task == "multiclass":
        p = torch.log_softmax(target, -1)
        q = torch.log_softmax(agent_logits, -1)
        div = (p.exp() * (p - q)).sum(-1)
    elif task in ("binary", "multilabel"):
        p = torch.sigmoid(target)
        lq1, lq0 = F.logsigmoid(agent_logits), F.logsigmoid(-agent_logits)
        lp1, lp0 = F.logsigmoid(target), F.logsigmoid(-target)
        div = (p * (lp1 - lq1) + (1 - p) * (lp0 - lq0)).mean(-1)
    else:
        div = ((agent_logits - target) ** 2).mean(-1)
    return (weights.detach() * div).sum(1).mean()
