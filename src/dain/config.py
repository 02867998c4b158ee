"""Typed run configuration that round-trips through YAML (in the spirit of litgpt's ``Config``).

A run's ``config.yaml`` holds the *expanded* model config (every field, defaults included), the data options and the
training options, so ``dain fit --config run/config.yaml`` rebuilds the same run.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dain.errors import ConfigError


@dataclass
class DataConfig:
    """Which dataset and how to load it (``options`` go to the loader: protocol, split, sets, ...)."""

    name: str = "mfeat"
    root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """Model name in the registry plus its config fields (expanded to every field when a run is saved)."""

    name: str = "late_fusion"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Optimisation and harness options."""

    seed: int = 0
    max_epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 15  # early stopping on the monitored validation metric; 0 disables it
    grad_clip: float = 1.0
    monitor: str = "auto"  # auto: val AUROC (binary), accuracy (multiclass), macro AUROC (multilabel), MAE (regression)
    class_weight: str = "none"  # none | balanced (class-weighted task loss)
    balanced_batches: bool = False  # upsample the minority class(es) in training batches
    # remove each present modality of each training sample with this probability, drawn anew every step (never a
    # sample's last one): trains a model for modalities missing at test time (dain.data.missing)
    modality_dropout: float = 0.0
    accelerator: str = "cpu"  # cpu | gpu | auto
    devices: int = 1
    strategy: str = "auto"  # e.g. ddp for several GPUs / nodes
    num_nodes: int = 1
    precision: str = "32-true"
    num_threads: int = 0  # torch intra-op threads on CPU; 0 = torch default
    deterministic: bool = True


@dataclass
class RunConfig:
    """Everything that defines a run."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        if not isinstance(d, dict):
            raise ConfigError("config must be a mapping with sections data, model, train")
        unknown = sorted(set(d) - {"data", "model", "train"})
        if unknown:
            raise ConfigError(f"config has unknown section(s) {unknown}; sections: data, model, train")
        return cls(
            data=_build(DataConfig, d.get("data") or {}, "data"),
            model=_build(ModelConfig, d.get("model") or {}, "model"),
            train=_build(TrainConfig, d.get("train") or {}, "train"),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            d = load_yaml(p.read_text()) or {}
        except yaml.YAMLError as e:
            from dain.validation import yaml_problem

            raise ConfigError(f"config file {p} is not valid YAML ({yaml_problem(e)})") from e
        return cls.from_dict(d)


def _build(cls: type, d: dict[str, Any], section: str) -> Any:
    from dain.validation import coerce_fields

    if not isinstance(d, dict):
        raise ConfigError(f"config section {section!r} must be a mapping of key: value, got {d!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ConfigError(f"config section {section!r} has unknown key(s) {unknown}; valid keys: {', '.join(names)}")
    return cls(**coerce_fields(cls, d, lambda k: f"config key {section}.{k}"))


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's booleans and integers: only true/false are booleans (``adaptive: off``
    stays the string ``off``) and a decimal with a leading zero is no octal number (``010`` is not 8)."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789")
)


def load_yaml(text: str) -> Any:
    """A config document or ``--set`` value read with YAML 1.2's booleans and integers (see ``_Yaml12Loader``)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 (a SafeLoader subclass)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` (value as YAML scalar/list) for ``--set``-style overrides."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value")
    k, v = text.split("=", 1)
    return k.strip(), load_yaml(v)
