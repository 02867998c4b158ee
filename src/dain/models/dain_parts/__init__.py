"""Building blocks of the ``dain`` model: glimpses, roles/agents, meta-controller, communication, sparse dispatch,
objectives."""

from dain.models.dain_parts.agents import Agent, AgentRole, default_roles, parse_role
from dain.models.dain_parts.communication import CommRound, count_bits, quantise
from dain.models.dain_parts.controller import MetaController, Schedule, confidence, schedule
from dain.models.dain_parts.dispatch import dispatch_rows, dispatch_slots
from dain.models.dain_parts.glimpse import Glimpse, summarise

__all__ = [
    "Agent",
    "AgentRole",
    "CommRound",
    "Glimpse",
    "MetaController",
    "Schedule",
    "confidence",
    "count_bits",
    "default_roles",
    "dispatch_rows",
    "dispatch_slots",
    "parse_role",
    "quantise",
    "schedule",
    "summarise",
]
