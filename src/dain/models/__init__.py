"""Model registry; importing this package registers every model module in it."""

import importlib
import pkgutil

from dain.models.base import ModelOutput, build_model, make_config, register_model

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base" and not _mod.ispkg:
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["ModelOutput", "build_model", "make_config", "register_model"]
