"""Dataset registry front-end: ``register_dataset``, ``load_dataset`` and catalogue info for ``dain datasets``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dain.data.spec import MultimodalDataset
from dain.errors import ConfigError, DainError
from dain.registry import DATASETS


@dataclass
class DatasetInfo:
    """Static description of a registered dataset (available without loading it)."""

    name: str
    task: str
    modalities: dict[str, list[int]]
    description: str
    source: str = ""
    subdir: str | None = None  # folder under the data root; None = generated or shipped in the package
    required: tuple[str, ...] = ()
    n_samples: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def register_dataset(
    info: DatasetInfo,
) -> Callable[[Callable[..., MultimodalDataset]], Callable[..., MultimodalDataset]]:
    """Register a loader ``fn(root=None, seed=0, **options) -> MultimodalDataset`` under ``info.name``."""

    def deco(fn: Callable[..., MultimodalDataset]) -> Callable[..., MultimodalDataset]:
        DATASETS.register(info.name, info=info)(fn)
        return fn

    return deco


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS.meta(name)["info"]


def load_dataset(name: str, root: str | Path | None = None, seed: int = 0, **options: Any) -> MultimodalDataset:
    """Load a registered dataset, or a bring-your-own folder when ``name`` is a path to one."""
    import dain.datasets  # noqa: F401  (registers the built-in loaders)

    if name not in DATASETS and Path(name).expanduser().is_dir():
        from dain.datasets.folder import load_folder

        return load_folder(Path(name).expanduser(), seed=seed, **options)
    fn = DATASETS.get(name)
    params = inspect.signature(fn).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for k in options:
        if k not in params and not accepts_any:
            opts = sorted(p for p in params if p not in ("root", "seed"))
            raise ConfigError(f"dataset {name!r} has no option {k!r}; its options: {', '.join(opts) or '(none)'}")
    try:
        return fn(root=root, seed=seed, **options)
    except DainError:
        raise
    except (FileNotFoundError, OSError) as e:  # pragma: no cover - defensive
        raise DainError(f"dataset {name!r}: {e}") from e
