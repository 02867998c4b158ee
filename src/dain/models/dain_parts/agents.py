"""Interaction agents and their roles.

Agent 0 is the **shared agent**: always on, it reads only the glimpses (cheap summaries of every modality) and gives a
prediction before any encoder runs. The routed agents read encoder outputs; a role fixes which modalities:

* ``unique:m``          reads only modality ``m`` (specialised by construction: it cannot see anything else);
* ``redundant:a+b|all`` reads the set and is tested on each member alone (the specialisation term): it must
  predict from whichever single modality is present, i.e. it carries what the modalities share;
* ``synergy:a+b|all``   reads the set jointly (one MLP over the concatenation), so it can use what only the
  combination carries.

Every agent is a one-hidden-layer MLP: trunk (state ``z``) and its own linear head (prediction from ``z``); each is
trained to be a good predictor on its own (deep supervision), and the consensus mixes the active ones."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ROLE_KINDS = ("unique", "redundant", "synergy")
SHARED = "shared"


@dataclass(frozen=True)
class AgentRole:
    """A parsed role: ``kind`` and the indices of the modalities the agent reads."""

    kind: str
    modalities: tuple[int, ...]
    text: str


def parse_role(text: str, modality_names: list[str]) -> AgentRole:
    """Parse ``"unique:fou"``, ``"redundant:all"`` or ``"synergy:fou+pix"``."""
    kind, _, arg = text.strip().partition(":")
    if kind not in ROLE_KINDS:
        raise ValueError(f"agent role {text!r}: kind must be one of {ROLE_KINDS}")
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


def default_roles(modality_names: list[str], max_agents: int = 24) -> list[str]:
    """One uniqueness agent per modality, then (with >= 2 modalities) a synergy agent over all of them, then (with
    >= 3) a redundancy agent over all. Capped at ``max_agents`` (the joint agents are kept first)."""
    M = len(modality_names)
    joint = ["synergy:all"] if M >= 2 else []
    if M >= 3:
        joint.append("redundant:all")
    unique = [f"unique:{m}" for m in modality_names]
    roles = joint + unique[: max(0, max_agents - len(joint))]
    order = {r: i for i, r in enumerate(unique + joint)}
    return sorted(roles, key=order.__getitem__)


class Agent(nn.Module):
    """One hidden layer: trunk ``LayerNorm(in_dim) -> Linear -> GELU -> Dropout`` (state ``z``, ``width``) and a
    linear head ``z -> num_outputs`` (a ``Sequential`` of one ``Linear``).

    The shape of late fusion's per-modality head. The first design stacked a second hidden layer in the head (and a
    LayerNorm after the trunk); on P12 cut to 70 training stays (5 draws) it scored validation AUROC 69.7 against
    71.0 for this one, and on MIMIC-IV demo test AUROC 72.6 against 77.5 (docs/results.md, 2026-12-05).
    ``norm_input=False`` leaves the input as it is: the tree agent's input is its booster's logits, whose scale is the
    information (a LayerNorm over one binary logit would be the constant 0)."""

    def __init__(
        self, in_dim: int, width: int, num_outputs: int, dropout: float = 0.1, norm_input: bool = True
    ) -> None:
        super().__init__()
        norm: nn.Module = nn.LayerNorm(in_dim) if norm_input else nn.Identity()
        self.trunk = nn.Sequential(norm, nn.Linear(in_dim, width), nn.GELU(), nn.Dropout(dropout))
        self.head = nn.Sequential(nn.Linear(width, num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """State ``z`` [n, width] (call ``head`` for the prediction)."""
        return self.trunk(x)
