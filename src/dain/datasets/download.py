"""Fetch public datasets on request (never at import or test time): ``download(name, dest)``.

Supported: ``physionet2012`` (PhysioNet Challenge 2012 sets a/b/c + outcomes, ODC-BY 1.0) and ``fsdd`` (Free
Spoken Digit Dataset, CC BY-SA 4.0, GitHub archive; only ``recordings/`` is kept). Files land in
``dest/<subdir>/`` so that ``DAIN_DATA=dest`` (or ``--data-root dest``) finds them. Command line:
``python -m dain.datasets.download physionet2012 ~/dain-data``.
"""

from __future__ import annotations

import http.client
import shutil
import sys
import urllib.request
import zipfile
from pathlib import Path

from dain.errors import DainError, UnknownNameError

PHYSIONET_BASE = "https://physionet.org/files/challenge-2012/1.0.0/"
PHYSIONET_FILES = (
    "set-a.tar.gz",
    "set-b.tar.gz",
    "set-c.tar.gz",
    "Outcomes-a.txt",
    "Outcomes-b.txt",
    "Outcomes-c.txt",
)
FSDD_ZIP = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/heads/master.zip"
SUBDIRS = {"physionet2012": "physionet2012", "fsdd": "fsdd"}


def plan(name: str, dest: str | Path) -> list[tuple[str, Path]]:
    """The (url, local file) pairs that ``download(name, dest)`` fetches."""
    if name not in SUBDIRS:
        raise UnknownNameError(f"no download for {name!r}; downloadable: {', '.join(sorted(SUBDIRS))}")
    root = Path(dest).expanduser() / SUBDIRS[name]
    if name == "physionet2012":
        return [(PHYSIONET_BASE + f, root / f) for f in PHYSIONET_FILES]
    return [(FSDD_ZIP, root / "fsdd-master.zip")]


def _fetch(url: str, path: Path, chunk: int = 1 << 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0)
            done = 0
            while True:
                b = r.read(chunk)
                if not b:
                    break
                f.write(b)
                done += len(b)
                pct = f" {100 * done / total:5.1f}%" if total else ""
                print(f"\r{path.name}: {done / 1e6:7.1f} MB{pct}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if total and done != total:  # the server closed early: urllib returns b"" without raising
            raise DainError(f"download of {url} stopped at {done} of {total} bytes; run it again")
        tmp.replace(path)
    except (OSError, http.client.HTTPException, DainError) as e:  # IncompleteRead is no OSError
        tmp.unlink(missing_ok=True)
        raise e if isinstance(e, DainError) else DainError(f"download of {url} failed: {e}") from e


def _unpack_fsdd(zip_path: Path) -> Path:
    """``recordings/*.wav`` of the archive into ``recordings/``, which appears only once complete (a failed unpack
    leaves nothing that a later call would take for a finished download)."""
    out = zip_path.parent / "recordings"
    part = zip_path.parent / "recordings.part"
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        with zipfile.ZipFile(zip_path) as z:
            for info in z.infolist():
                parts = Path(info.filename).parts
                if len(parts) >= 3 and parts[-2] == "recordings" and parts[-1].endswith(".wav"):
                    with z.open(info) as src, open(part / parts[-1], "wb") as dst:
                        shutil.copyfileobj(src, dst)
        if not any(part.iterdir()):
            raise DainError(f"{zip_path} holds no recordings/*.wav")
    except (zipfile.BadZipFile, OSError, DainError) as e:
        shutil.rmtree(part, ignore_errors=True)
        zip_path.unlink(missing_ok=True)  # a bad archive is fetched again next time
        raise e if isinstance(e, DainError) else DainError(f"{zip_path} cannot be unpacked ({e}); run again") from e
    part.replace(out)
    zip_path.unlink()
    return out


def download(name: str, dest: str | Path, force: bool = False) -> Path:
    """Download dataset ``name`` into ``dest/<subdir>``; files already there are kept unless ``force``."""
    items = plan(name, dest)
    folder = items[0][1].parent
    if name == "fsdd" and (folder / "recordings").is_dir() and not force:
        print(f"{folder / 'recordings'} exists; skipping", file=sys.stderr)
        return folder
    for url, path in items:
        if path.exists() and not force:
            print(f"{path} exists; skipping", file=sys.stderr)
            continue
        _fetch(url, path)
    if name == "fsdd":
        _unpack_fsdd(items[0][1])
    return folder


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m dain.datasets.download", description=__doc__)
    p.add_argument("name", choices=sorted(SUBDIRS))
    p.add_argument("dest")
    p.add_argument("--force", action="store_true")
    a = p.parse_args(argv)
    try:
        print(download(a.name, a.dest, a.force))
    except DainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
