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


def test_overrides_read_yaml_1_2_booleans_and_integers() -> None:
    """Only true/false are booleans (``--set adaptive=off`` is the documented string) and a leading zero is no
    octal number (``010`` is an error, not 8)."""
    from dain.config import load_yaml, parse_override
    from dain.models.base import make_config

    assert parse_override("adaptive=off") == ("adaptive", "off")
    words = ("on", "yes", "true", "False", "10", "-3", "0.5", "010")
    assert [load_yaml(t) for t in words] == ["on", "yes", True, False, 10, -3, 0.5, "010"]
    assert make_config("dain", dict([parse_override("adaptive=off")])).adaptive == "off"
    with pytest.raises(ConfigError, match="must be an integer, got '010'"):
        make_config("late_fusion", dict([parse_override("hidden=010")]))


def test_union_fields_take_the_alternative_that_fits() -> None:
    """``rus_lags: str | tuple[int, ...]``: a list is the lags, a word the mode, and a number neither (a clear
    error when the model is built, not a TypeError)."""
    from dain.models import build_model
    from dain.models.base import make_config
    from tests.conftest import tiny_spec

    assert make_config("timemoe", {"rus_lags": [0, 2]}).rus_lags == (0, 2)
    assert make_config("timemoe", {"rus_lags": "static"}).rus_lags == "static"
    with pytest.raises(ValueError, match="rus_lags must be"):
        build_model("timemoe", tiny_spec("sequence"), rus_lags=2)
