"""Every shipped config under configs/ is valid: known sections/keys, a registered dataset and model options."""

from __future__ import annotations

from pathlib import Path

import pytest

import dain.datasets  # noqa: F401
from dain.config import RunConfig
from dain.models import make_config
from dain.registry import DATASETS

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_configs_exist() -> None:
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid(path: Path) -> None:
    cfg = RunConfig.from_yaml(path)
    assert cfg.data.name in DATASETS
    make_config(cfg.model.name, cfg.model.params)  # raises on an unknown option
