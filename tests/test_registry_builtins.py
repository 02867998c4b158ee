"""The registry's lazy built-ins hook: the registering package is imported on the first lookup, not on register."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dain.errors import UnknownNameError
from dain.registry import DATASETS, ENCODERS, MODELS, Registry

REG: Registry[object] = Registry("thing", builtins="dain_fake_builtins")


def test_builtins_imported_on_first_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dain_fake_builtins.py").write_text(
        "from tests.test_registry_builtins import REG\n\nREG.register('builtin')(object)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "dain_fake_builtins", raising=False)
    REG.register("own")(int)  # registering does not import the built-ins
    assert "dain_fake_builtins" not in sys.modules
    assert REG.names() == ["builtin", "own"]
    assert REG.get("own") is int and len(REG) == 2
    with pytest.raises(UnknownNameError, match="builtin, own"):
        REG.get("nope")


def test_builtin_registries_fill_themselves() -> None:
    assert "dain" in MODELS and "gru" in ENCODERS and "mfeat" in DATASETS
