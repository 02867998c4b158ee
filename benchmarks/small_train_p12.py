"""DAIN against late fusion when the training split is small, judged on a validation split large enough to trust:
P12 (Raindrop split 1, the zscore summary) as bring-your-own folders whose train split is a random subsample of
``n`` training stays, with the split's own validation and test stays (1199 each).

    python benchmarks/small_train_p12.py export ROOT        # ROOT/n<n>_s<k>/ for n in 70, 300, 1000 and k in 0..4
    python benchmarks/small_train_p12.py summary ROOT       # after the fits of benchmarks/run_issue12g.sh

The folders share one copy of the arrays (symlinks). ``summary`` prints one JSON line per (n, model): mean
validation and test AUROC / AUPRC over the subsamples that finished (docs/results.md, issue 12, 2026-12-04 and
2026-12-05; the 1000-stay draws were added on 2026-12-05, the earlier draws are unchanged)."""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import yaml

SIZES = (70, 300, 1000)
SUBSAMPLES = 5
RUNS = {  # label -> run folder under ROOT, relative to one (n, subsample)
    "dain": "out/{name}/dain-s0",
    "late_fusion": "out/{name}/late_fusion-s0",
    "gbm": "out/{name}/gbm-s0",
    "dain (gating=dense)": "out_dense/{name}/dain-s0",
    # ablations (n = 70 only): dain fit --set ... --out ROOT/abl/<tag>/<name>
    "dain (lambda_agents=0)": "abl/noagents/{name}",
    "dain (lambda_route=0, lambda_spec=0)": "abl/noroute/{name}",
    "dain (every auxiliary term 0)": "abl/noaux/{name}",
    "dain (active_agents=0: the shared agent alone)": "abl/budget0/{name}",
    "dain (active_agents=4)": "abl/topk4/{name}",
    "dain (agent_width=128)": "abl/width128/{name}",
    "dain (one unique agent per modality, gating=dense)": "abl/uniquedense/{name}",
    "dain (the same, comm_rounds=0)": "abl/uniquedense_nocomm/{name}",
    # 2026-12-05 (benchmarks/run_issue12h.sh): DAIN with one-hidden-layer agents, under h/<tag>/<name>
    "dain, one-hidden-layer agents (the default since 2026-12-05)": "h/dain/{name}",
    "late fusion (2026-12-05)": "h/late_fusion/{name}",
    "gbm (2026-12-05)": "h/gbm/{name}",
    "dain, one-hidden-layer agents, gating=dense": "h/dense/{name}",
    "dain, one-hidden-layer agents, uniform consensus weights": "h/uniform/{name}",
    "dain, one-hidden-layer agents without the input LayerNorm": "h/no_input_norm/{name}",
    "dain, one-hidden-layer agents, agent_width=32": "h/width32/{name}",
    "dain, one-hidden-layer agents, agent_width=128": "h/width128/{name}",
    "dain, the first design's two-hidden-layer agents (agent_shape_small.py two_layer)": "h/two_layer/{name}",
    # 2026-12-05, later (benchmarks/run_issue12i.sh): the tree agent below 1000 rows
    "dain, tree_agent=always": "h/tree/{name}",
}


def write_arrays(data, shared: Path) -> None:  # noqa: ANN001
    """The arrays every folder links to: one file per modality (sequences with their step masks) and the mask."""
    (shared / "modalities").mkdir(parents=True, exist_ok=True)
    for m in data.spec.modalities:
        x = data.inputs[m.name].astype(np.float32)
        if m.kind == "sequence":
            np.savez(shared / "modalities" / f"{m.name}.npz", x=x, steps=data.steps[m.name].astype(bool))
        else:
            np.save(shared / "modalities" / f"{m.name}.npy", x)
    np.save(shared / "mask.npy", data.mask.astype(bool))


def write_folder(folder: Path, shared: Path, labels: str, split: dict, meta: dict) -> None:
    """One bring-your-own folder: symlinks to the shared arrays (``labels``: the labels file under ``shared``), its
    ``split.json`` and ``dataset.yaml`` (the inputs are already z-scored with train statistics: no standardising)."""
    folder.mkdir(exist_ok=True)
    for name, src in (("modalities", "modalities"), ("labels.npy", labels), ("mask.npy", "mask.npy")):
        if not (folder / name).is_symlink():
            os.symlink((shared / src).resolve(), folder / name)
    (folder / "split.json").write_text(json.dumps(split))
    (folder / "dataset.yaml").write_text(yaml.safe_dump({**meta, "standardize": False}))


def export(root: Path) -> None:
    from dain.data import load_dataset

    data = load_dataset("physionet2012", protocol="raindrop", split=1, summary=True, summary_encoding="zscore")
    shared = root / "arrays"
    write_arrays(data, shared)
    np.save(shared / "labels.npy", data.target.astype(np.int64))
    train = np.asarray(data.splits["train"])
    for n in SIZES:
        for k in range(SUBSAMPLES):
            rows = np.random.default_rng(100 + k).choice(train, n, replace=False)
            split = {"train": sorted(int(i) for i in rows)}
            split.update({s: [int(i) for i in data.splits[s]] for s in ("val", "test")})
            meta = {"name": f"p12_n{n}_s{k}", "task": "binary", "modalities": [m.name for m in data.spec.modalities]}
            write_folder(root / f"n{n}_s{k}", shared, "labels.npy", split, meta)


def summary(root: Path) -> None:
    for n in SIZES:
        for label, pattern in RUNS.items():
            got = []
            for k in range(SUBSAMPLES):
                path = root / pattern.format(name=f"n{n}_s{k}") / "metrics.json"
                if path.exists():
                    got.append(json.loads(path.read_text()))
            if not got:
                continue
            row = {"train_rows": n, "model": label, "subsamples": len(got)}
            for split in ("val", "test"):
                for metric in ("auroc", "auprc"):
                    row[f"{split}_{metric}"] = statistics.fmean(float(m[split][metric]) for m in got)
            row["val_auroc_each"] = [round(float(m["val"]["auroc"]), 4) for m in got]
            print(json.dumps(row))


if __name__ == "__main__":
    command, root = sys.argv[1], Path(sys.argv[2])
    {"export": export, "summary": summary}[command](root)
