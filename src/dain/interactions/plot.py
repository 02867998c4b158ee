"""Plots of interaction estimates (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

ATOMS = ("R", "U1", "U2", "S")


def _as_dict(r: Any) -> dict[str, Any]:
    return r if isinstance(r, dict) else r.to_dict()


def plot_interactions(results: Sequence[Any], path: str | Path, title: str | None = None) -> Path:
    """Save R/U1/U2/S as a PNG: one panel per modality pair; lines over lag when lags are present, else bars.

    ``results``: dicts from :func:`dain.interactions.estimate_pairs` or :class:`PIDResult` objects."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [_as_dict(r) for r in results]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        key = " / ".join(r.get("modalities", ["x1", "x2"]))
        groups.setdefault(key, []).append(r)
    n = max(1, len(groups))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, (key, rs) in zip(axes[0], groups.items()):
        lagged = [r for r in rs if r.get("lag") is not None]
        if lagged:
            lagged.sort(key=lambda r: r["lag"])
            lags = [r["lag"] for r in lagged]
            for a in ATOMS:
                ax.plot(lags, [r[a] for r in lagged], marker="o", label=a)
            ax.set_xlabel("lag τ")
        else:
            ax.bar(list(ATOMS), [rs[0][a] for a in ATOMS], color=["C0", "C1", "C2", "C3"])
        ax.set_title(key)
        ax.set_ylabel("bits")
        ax.set_ylim(bottom=0)
        if lagged:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
