"""The catalogue ``dain datasets`` lists: each registered dataset, where its files were found, and a table of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dain.data.registry_api import dataset_info
from dain.errors import DainError


def dataset_rows(data_root: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per registered dataset: name, found, where (its folder, or why it was not found), task, modalities,
    n_samples, description."""
    from dain.data.paths import find_data_dir
    from dain.registry import DATASETS

    rows = []
    for name in DATASETS.names():
        info = dataset_info(name)
        if info.subdir is None:
            found, where = (
                True,
                "shipped with dain" if not info.source.startswith("generated") else "generated",
            )
        else:
            try:  # the loader's own lookup when it has one: found exactly when a default load finds its files
                if info.locate is not None:
                    where = str(info.locate(data_root))
                else:
                    where = str(find_data_dir(info.subdir, data_root, info.required))
                found = True
            except DainError as e:
                found, where = False, str(e)
        rows.append(
            {
                "name": name,
                "found": found,
                "where": where,
                "task": info.task,
                "modalities": info.modalities,
                "n_samples": info.n_samples,
                "description": info.description,
            }
        )
    return rows


def print_datasets(rows: list[dict[str, Any]]) -> None:
    """The catalogue as a compact table (fits 80 columns, plain box lines that survive a pipe) and where the data is
    or should go, then how to point dain at a folder of one's own."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    t = Table(
        box=box.SIMPLE_HEAD,
        title="dain datasets",
        title_justify="left",
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    t.add_column("name", no_wrap=True)
    t.add_column("task", no_wrap=True)
    t.add_column("n", justify="right", no_wrap=True)
    t.add_column("modalities [shape]", min_width=19, overflow="fold")
    t.add_column("data", no_wrap=True)
    missing, roots = [], []
    for r in rows:
        info = dataset_info(r["name"])
        mods = " ".join(f"{k}[{'x'.join(str(d) for d in v)}]" if v else k for k, v in r["modalities"].items())
        if info.subdir is None:
            state = "bundled"  # shipped with dain or generated: no files needed
        elif r["found"]:
            state = "found"
            root = str(Path(r["where"]).parent)
            if root not in roots:
                roots.append(root)
        else:
            state = "missing"
            missing.append(f"{r['name']} -> {info.subdir}/")
        t.add_row(r["name"], r["task"], str(r["n_samples"] or "?"), mods, state)
    con = Console(soft_wrap=False)
    con.print(t)
    con.print("bundled: shipped with dain or generated, no files needed", highlight=False)
    if roots:
        con.print("found under: " + ", ".join(roots), highlight=False)
    if missing:
        con.print(
            "missing: put the files in $DAIN_DATA/<folder> or --data-root: " + ", ".join(missing),
            highlight=False,
        )
    con.print("own data: --data DIR holding modalities/<m>.npy, labels.npy (docs/datasets.md)", highlight=False)
