"""Where dataset files are looked for: ``root=`` argument, ``$DAIN_DATA``, then ``../shared/data`` near the cwd."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from dain.errors import DataNotFoundError


def candidate_roots() -> list[Path]:
    """Ordered list of folders that may hold dataset subfolders."""
    roots: list[Path] = []
    env = os.environ.get("DAIN_DATA")
    if env:
        roots.append(Path(env).expanduser())
    cwd = Path.cwd()
    for base in (cwd, *cwd.parents[:3]):
        roots.append(base / "shared" / "data")
        roots.append(base.parent / "shared" / "data")
    here = Path(__file__).resolve()
    for base in here.parents[:6]:
        roots.append(base.parent / "shared" / "data")
    seen: list[Path] = []
    for r in roots:
        if r not in seen:
            seen.append(r)
    return seen


def find_data_dir(subdir: str, root: str | Path | None = None, required: tuple[str, ...] = (), hint: str = "") -> Path:
    """Return the folder holding ``subdir`` (with every file in ``required``) or raise a DataNotFoundError.

    ``root`` may point at the folder itself or at its parent.
    """
    tried: list[Path] = []
    if root is not None:
        cands = [Path(root).expanduser(), Path(root).expanduser() / subdir]
    else:
        cands = [r / subdir for r in candidate_roots()]
    for c in cands:
        tried.append(c)
        if c.is_dir() and all((c / f).exists() for f in required):
            return c
    shown = ", ".join(str(t) for t in tried[:4]) + (" ..." if len(tried) > 4 else "")
    msg = f"data folder {subdir!r} not found (looked in {shown})."
    msg += " Set DAIN_DATA to the folder that contains it, or pass --data-root."
    if hint:
        msg += " " + hint
    raise DataNotFoundError(msg)


def cache_dir() -> Path:
    """Folder for preprocessing caches (``$DAIN_CACHE`` or ``~/.cache/dain``)."""
    d = Path(os.environ.get("DAIN_CACHE", Path.home() / ".cache" / "dain")).expanduser()
    d.mkdir(parents=True, exist_ok=True)
    return d


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through a private temporary file beside it, then rename: concurrent writers (parallel fits
    sharing a cache) never collide, and readers never see a partial file."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
