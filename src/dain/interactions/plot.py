"""Plots of interaction estimates (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

ATOMS = ("R", "U1", "U2", "S")


def _as_dict(r: Any) -> dict[str, Any]:
    return r if isinstance(r, dict) else r.to_dict()


def _atom_labels(pair: list[str]) -> list[str]:
    """R, U(first modality), U(second modality), S."""
    a, b = (pair + ["x1", "x2"])[:2]
    return ["R", f"U({a})", f"U({b})", "S"]


def _upper(r: dict[str, Any], atom: str) -> float:
    """Top of a window's error bar (raw + SE), 0 without one."""
    return float(r.get(f"{atom}_raw", 0.0)) + float(r.get(f"{atom}_se", 0.0)) if f"{atom}_se" in r else 0.0


def _plot_windows(ax: Any, rs: list[dict[str, Any]], labels: list[str]) -> None:
    """Per-window profile: shrunk values as lines, raw (null-corrected) values with +-1 SE error bars."""
    rs = sorted(rs, key=lambda r: r["span"][0])
    x = list(range(len(rs)))
    for j, (a, lab) in enumerate(zip(ATOMS, labels)):
        ax.plot(x, [r[a] for r in rs], marker="o", color=f"C{j}", label=lab)
        if f"{a}_se" in rs[0]:
            off = (j - 1.5) * 0.06
            ax.errorbar(
                [v + off for v in x],
                [r[f"{a}_raw"] for r in rs],
                yerr=[r[f"{a}_se"] for r in rs],
                fmt="x",
                color=f"C{j}",
                alpha=0.45,
                capsize=2,
                lw=1,
            )
    ax.set_xticks(x)
    ax.set_xlabel("window (0 = first; line shrunk, x raw ± SE)")
    ax.legend(fontsize=8)


def plot_interactions(results: Sequence[Any], path: str | Path, title: str | None = None, max_cols: int = 3) -> Path:
    """Save R/U/S as a PNG: one panel per modality pair (``max_cols`` per row, then wrapped), every panel on one
    y-scale so pairs compare at a glance; lines over window when results have spans (``lags="auto"``: shrunk values,
    with the raw ones and +-1 SE error bars), lines over lag when lags are present, else bars. Uniqueness is named
    by its modality, U(a) and U(b).

    ``results``: dicts from :func:`dain.interactions.estimate_pairs` or :class:`PIDResult` objects."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [_as_dict(r) for r in results]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get("modalities", ["x1", "x2"])), []).append(r)
    n = max(1, len(groups))
    cols = min(n, max_cols)
    nrows = -(-n // cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False, sharey=True, layout="constrained"
    )
    top = max([r[a] for r in rows for a in ATOMS] + [_upper(r, a) for r in rows for a in ATOMS] + [0.05]) * 1.1
    for ax, (pair, rs) in zip(axes.flat, groups.items()):
        labels = _atom_labels(list(pair))
        lagged = [r for r in rs if r.get("lag") is not None]
        spanned = [r for r in rs if r.get("span") is not None]
        if spanned:
            _plot_windows(ax, spanned, labels)
        elif lagged:
            lagged.sort(key=lambda r: r["lag"])
            lags = [r["lag"] for r in lagged]
            for a, lab in zip(ATOMS, labels):
                ax.plot(lags, [r[a] for r in lagged], marker="o", label=lab)
            ax.set_xlabel("lag τ")
            ax.legend(fontsize=8)
        else:
            ax.bar(labels, [rs[0][a] for a in ATOMS], color=["C0", "C1", "C2", "C3"])
            ax.tick_params(axis="x", labelsize=8)
        ax.set_title(" / ".join(pair))
        ax.set_ylim(0, top)
    for ax in axes[:, 0]:
        ax.set_ylabel("bits")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
