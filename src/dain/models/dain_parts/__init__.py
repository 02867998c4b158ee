"""Building blocks of the ``dain`` model: roles/agents, meta-controller, communication, sparse dispatch,
objectives."""

from dain.models.dain_parts.agents import AgentRole, InteractionAgent, default_roles, parse_role
from dain.models.dain_parts.communication import CommRound, count_bits, quantise
from dain.models.dain_parts.controller import MetaController, Schedule
from dain.models.dain_parts.dispatch import dispatch_rows, dispatch_slots

__all__ = [
    "AgentRole",
    "CommRound",
    "InteractionAgent",
    "MetaController",
    "Schedule",
    "count_bits",
    "default_roles",
    "dispatch_rows",
    "dispatch_slots",
    "parse_role",
    "quantise",
]
