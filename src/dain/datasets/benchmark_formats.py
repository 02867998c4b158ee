"""One-time conversions of pickle-based benchmark files to formats dain reads without unpickling.

``python -m dain.datasets.benchmark_formats mosi-to-npz cmu-mosi/mosi_data.pkl`` (see :mod:`dain.datasets.mosi`) and
``... pt-to-npy mimic4/lab_x.pt`` (see :mod:`dain.datasets.mimic4`). The loaders live in one module per dataset.
"""

from __future__ import annotations

from dain.datasets.mimic4 import pt_to_npy
from dain.datasets.mosi import mosi_pickle_to_npz

__all__ = ["mosi_pickle_to_npz", "pt_to_npy"]


def _main(argv: list[str] | None = None) -> int:
    """One-time conversions of pickle-based benchmark files (of a trusted source) to formats read without pickles."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m dain.datasets.benchmark_formats", description=_main.__doc__)
    p.add_argument("action", choices=["mosi-to-npz", "pt-to-npy"])
    p.add_argument("path", help="the .pkl / .pt file")
    p.add_argument("--out", help="destination (default: beside it, .npz / .npy)")
    args = p.parse_args(argv)
    dest = (mosi_pickle_to_npz if args.action == "mosi-to-npz" else pt_to_npy)(args.path, args.out)
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
