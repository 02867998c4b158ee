"""Name -> factory registries for models, datasets and encoders (in the spirit of timm's ``register_model``).

``dain fit --model X`` and ``build_model("X")`` both resolve through the same registry, so every registered entry is
reachable from the CLI and covered by the parametrised tests. Each registry imports the package that registers its
built-ins on the first lookup (``builtins=``), so no lower layer has to import a higher one to fill it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from dain.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories with helpful errors on unknown names.

    ``builtins``: a module imported on the first lookup (``get``/``meta``/``names``/``in``/``len``) whose import
    registers the built-in entries; registering never triggers it."""

    def __init__(self, kind: str, builtins: str | None = None) -> None:
        self.kind = kind
        self.builtins = builtins
        self._builtins_loaded = builtins is None
        self._entries: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def _load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        self._builtins_loaded = True  # first: lookups made while the package imports must not recurse
        try:
            importlib.import_module(str(self.builtins))
        except BaseException:
            self._builtins_loaded = False
            raise

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name`` (names are unique)."""

        def deco(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            self._meta[name] = dict(meta)
            return obj

        return deco

    def get(self, name: str) -> T:
        self._load_builtins()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}")
        return self._entries[name]

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return self._meta[name]

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._entries

    def __len__(self) -> int:
        self._load_builtins()
        return len(self._entries)


MODELS: Registry[Any] = Registry("model", builtins="dain.models")
DATASETS: Registry[Any] = Registry("dataset", builtins="dain.datasets")
ENCODERS: Registry[Any] = Registry("encoder", builtins="dain.encoders")
