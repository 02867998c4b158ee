"""Dataset registry front-end: ``register_dataset``, ``load_dataset`` and catalogue info for ``dain datasets``."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dain.data.spec import MultimodalDataset
from dain.errors import ConfigError, DainError, DataNotFoundError
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
    # ``locate(root) -> folder``: the very function the loader calls to find its files for a default load, raising
    # DataNotFoundError when they are absent; ``dain datasets`` uses it (when set) to say found / missing, so the
    # listing and the loader cannot disagree. None: the listing checks ``subdir`` holds ``required``.
    locate: Callable[[str | Path | None], Path] | None = field(default=None, repr=False, compare=False)


def register_dataset(
    info: DatasetInfo,
) -> Callable[[Callable[..., MultimodalDataset]], Callable[..., MultimodalDataset]]:
    """Register a loader ``fn(root=None, seed=0, **options) -> MultimodalDataset`` under ``info.name``."""

    def deco(fn: Callable[..., MultimodalDataset]) -> Callable[..., MultimodalDataset]:
        DATASETS.register(info.name, info=info)(fn)
        return fn

    return deco


FOLDER_FORMAT_HINT = (
    "A bring-your-own dataset is a folder holding modalities/<name>.npy (one array per modality, rows = samples) "
    "and labels.npy or labels.csv; the format is in docs/datasets.md, 'Bring your own data'."
)


def looks_like_path(name: str) -> bool:
    """A ``--data`` value meant as a folder rather than a registered name: it has a path separator or starts with
    ``.`` or ``~``."""
    seps = {"/", "\\"} | {os.sep}
    return any(c in name for c in seps) or name.startswith((".", "~"))


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS.meta(name)["info"]


def load_dataset(name: str, root: str | Path | None = None, seed: int = 0, **options: Any) -> MultimodalDataset:
    """Load a registered dataset, or a bring-your-own folder when ``name`` is a path to one."""
    if name not in DATASETS and Path(name).expanduser().is_dir():
        from dain.datasets.folder import load_folder

        return load_folder(Path(name).expanduser(), seed=seed, **options)
    if name not in DATASETS and looks_like_path(name):
        where = Path(name).expanduser().absolute()
        what = "is a file, not a folder" if where.exists() else "does not exist"
        raise DataNotFoundError(f"no dataset folder {name!r}: {where} {what}. {FOLDER_FORMAT_HINT}")
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
