"""What every model returns and how models are registered and built.

A model is a plain ``torch.nn.Module`` built as ``Model(spec, cfg)`` where ``cfg`` is the model's own dataclass
config (``Model.Config``). ``forward(batch) -> ModelOutput``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dain.data.spec import DatasetSpec
from dain.errors import ConfigError
from dain.registry import MODELS


@dataclass
class ModelOutput:
    """``logits`` [B, num_outputs]; ``losses``: named auxiliary terms (already weighted, added to the task loss);
    ``routing``: per-sample routing record (gates, active sets, messages), empty for static fusion models;
    ``stats``: scalar diagnostics logged but not optimised (e.g. active agents, bits)."""

    logits: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    routing: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class BaseModelConfig:
    """Options shared by all models."""

    hidden: int = 128
    dropout: float = 0.1
    encoder_layers: int = 1


def register_model(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register a model class (which must define a nested dataclass ``Config``)."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if not dataclasses.is_dataclass(getattr(cls, "Config", None)):
            raise TypeError(f"model {name!r} must define a dataclass Config")
        MODELS.register(name)(cls)
        return cls

    return deco


def make_config(name: str, overrides: dict[str, Any] | None = None) -> Any:
    """Build model ``name``'s config from defaults + overrides, rejecting unknown keys with the valid ones."""
    cls = MODELS.get(name)
    overrides = dict(overrides or {})
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; its options: {', '.join(sorted(fields))}"
        )
    from dain.validation import coerce_fields

    # typed before anything is built: "hidden=abc" or "active_agents=2.5" is a clear error, not a torch traceback
    return cls.Config(**coerce_fields(cls.Config, overrides, lambda k: f"model {name!r} option {k} (--set {k}=...)"))


def build_model(name: str, spec: DatasetSpec, **overrides: Any) -> nn.Module:
    """Build a registered model for a dataset spec: ``build_model("dain", data.spec, num_agents=12)``."""
    cfg = make_config(name, overrides)
    cls = MODELS.get(name)
    return cls(spec, cfg)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
