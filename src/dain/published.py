"""Published results to print beside ours — only for the protocol they were measured under, always marked.

Sources are quoted in ``../shared/notes/benchmarks.md`` of the project: the P12 mortality rows are ViTST's re-run on
the five Raindrop splits (github Leezekun/ViTST README @7774e59; AUROC / AUPRC in %, mean ± std over the splits);
TMC's mfeat number is from Han et al., ICLR 2021 (1600/400 split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_VITST = "ViTST README @7774e59 (Raindrop splits, in-hospital mortality)"

PUBLISHED: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("physionet2012", "raindrop"): [
        {"method": m, "metrics": {"auroc": a, "auprc": p}, "source": _VITST}
        for m, a, p in [
            ("Transformer", "83.3 ± 0.7", "47.9 ± 3.6"),
            ("Trans-mean", "82.6 ± 2.0", "46.3 ± 4.0"),
            ("GRU-D", "81.9 ± 2.1", "46.1 ± 4.7"),
            ("SeFT", "73.9 ± 2.5", "31.1 ± 4.1"),
            ("mTAND", "84.2 ± 0.8", "48.2 ± 3.4"),
            ("IP-Net", "82.6 ± 1.4", "47.6 ± 3.1"),
            ("DGM²-O", "84.4 ± 1.6", "47.3 ± 3.6"),
            ("MTGNN", "74.4 ± 6.7", "35.5 ± 6.0"),
            ("Raindrop", "82.8 ± 1.7", "44.0 ± 3.0"),
            ("ViTST", "85.1 ± 0.8", "51.1 ± 4.1"),
        ]
    ],
    ("mfeat", "tmc"): [
        {"method": "TMC", "metrics": {"acc": "98.51 ± 0.15"}, "source": "Han et al., ICLR 2021 (1600/400 split)"},
    ],
}


def published_rows(dataset: str, protocol: str) -> list[dict[str, Any]]:
    """Rows published under exactly this dataset + protocol (empty when none are comparable)."""
    return [dict(r, published=True) for r in PUBLISHED.get((dataset, protocol), [])]


def append_published(table: Path, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` (from :func:`published_rows`) to the markdown ``table`` as a marked section; nothing if none."""
    if not rows:
        return
    lines = [
        "",
        "Published results on the same protocol (not re-run by dain):",
        "",
        "| method | " + " | ".join(k for k in rows[0]["metrics"]) + " | source |",
        "|---|" + "---|" * (len(rows[0]["metrics"]) + 1),
    ]
    for r in rows:
        lines.append(f"| {r['method']} (published) | " + " | ".join(r["metrics"].values()) + f" | {r['source']} |")
    table.write_text(table.read_text() + "\n".join(lines) + "\n")
