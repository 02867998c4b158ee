"""Run configs round-trip through YAML and reject unknown keys."""

from __future__ import annotations

import pytest

from dain.config import RunConfig
from dain.errors import ConfigError


def test_yaml_round_trip(tmp_path) -> None:
    cfg = RunConfig()
    cfg.data.name = "basicmotions"
    cfg.data.options = {"protocol": "default"}
    cfg.model.name = "dain"
    cfg.model.params = {"hidden": 64, "roles": ["free", "unique:a"]}
    cfg.train.seed = 3
    cfg.train.lr = 3e-4
    cfg.to_yaml(tmp_path / "c.yaml")
    again = RunConfig.from_yaml(tmp_path / "c.yaml")
    assert again == cfg


def test_unknown_section_and_key() -> None:
    with pytest.raises(ConfigError, match="unknown section"):
        RunConfig.from_dict({"dataz": {}})
    with pytest.raises(ConfigError, match="unknown key"):
        RunConfig.from_dict({"train": {"epochs": 3}})


def test_type_coercion_and_bool_check() -> None:
    cfg = RunConfig.from_dict({"train": {"lr": 1, "max_epochs": 5}})
    assert isinstance(cfg.train.lr, float)
    with pytest.raises(ConfigError, match="true/false"):
        RunConfig.from_dict({"train": {"deterministic": "yes"}})
