"""Shared fixtures: tiny specs/batches for unit tests and the real-data root for end-to-end tests."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset, stratified_split

REPO = Path(__file__).resolve().parents[1]

# Unit tests use tiny tensors: one intra-op thread is faster and immune to a busy machine's oversubscription.
torch.set_num_threads(1)


def shared_data_root() -> Path | None:
    """../shared/data (or $DAIN_DATA) if present."""
    env = os.environ.get("DAIN_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data", REPO / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("real datasets not found (set DAIN_DATA or put ../shared/data beside the repo)")
    return root


def tiny_spec(kind: str = "vector", task: str = "multiclass") -> DatasetSpec:
    if kind == "vector":
        mods = (
            ModalitySpec("a", "vector", (7,)),
            ModalitySpec("b", "vector", (5,)),
            ModalitySpec("c", "vector", (3,)),
        )
    elif kind == "sequence":
        mods = (ModalitySpec("s1", "sequence", (6, 3)), ModalitySpec("s2", "sequence", (6, 2)))
    else:
        mods = (ModalitySpec("img", "image", (1, 8, 8)), ModalitySpec("v", "vector", (4,)))
    n_out = {"multiclass": 3, "binary": 1, "multilabel": 4, "regression": 1}[task]
    return DatasetSpec("tiny", task, n_out, mods)


def tiny_batch(spec: DatasetSpec, n: int = 16, seed: int = 0, missing: bool = False) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs = {m.name: torch.randn((n, *m.shape), generator=g) for m in spec.modalities}
    mask = torch.ones(n, spec.num_modalities, dtype=torch.bool)
    if missing:
        mask[0, 0] = False
        mask[1, -1] = False
        for j, m in enumerate(spec.modalities):
            inputs[m.name][~mask[:, j]] = 0.0
    if spec.task == "multiclass":
        target = torch.randint(0, spec.num_outputs, (n,), generator=g)
    elif spec.task == "multilabel":
        target = (torch.rand(n, spec.num_outputs, generator=g) > 0.5).float()
    else:
        target = (torch.rand(n, generator=g) > 0.5).float()
    batch = {"inputs": inputs, "mask": mask, "target": target, "index": torch.arange(n)}
    seq = [m.name for m in spec.modalities if m.kind == "sequence"]
    if seq:
        steps = {}
        for name in seq:
            s = torch.ones(n, spec.modality(name).shape[0], dtype=torch.bool)
            s[2, -2:] = False
            steps[name] = s
        batch["steps"] = steps
    return batch


def tiny_dataset(n: int = 60, seed: int = 0) -> MultimodalDataset:
    rng = np.random.default_rng(seed)
    spec = tiny_spec("vector")
    y = rng.integers(0, 3, n)
    inputs = {m.name: (rng.normal(size=(n, *m.shape)) + y[:, None]).astype(np.float32) for m in spec.modalities}
    return MultimodalDataset(spec, inputs, np.ones((n, 3), bool), y, stratified_split(y, seed=seed))


def retarget(data: MultimodalDataset, task: str, target: np.ndarray) -> MultimodalDataset:
    """``data`` with another task and target (outputs: the target's columns for multilabel and a 2-D regression
    target, else 1)."""
    outputs = target.shape[1] if task == "multilabel" or (task == "regression" and target.ndim == 2) else 1
    spec = dataclasses.replace(data.spec, task=task, num_outputs=outputs, class_names=())
    return dataclasses.replace(data, spec=spec, target=target)


def tiny_multilabel_dataset(n: int = 240) -> MultimodalDataset:
    """:func:`tiny_dataset` with three different labels per row, each read from the inputs."""
    d = tiny_dataset(n=n)
    a = d.inputs[d.spec.modalities[0].name]
    y = np.stack([a[:, 0] > 0.5, a[:, 1] < 1.5, d.target == 2], 1).astype(np.int64)
    return retarget(d, "multilabel", y)


# DAIN's tree agent on mfeat's 10 classes is a cross-fit of minutes; tests of routing, resuming and the CLI run
# without it (the tree agent's own tests use tiny data, tests/test_dain.py)
NO_TREES = ("--set", "tree_agent=never")


def fit_mfeat(out: Path, model: str, *extra: str, epochs: int = 1, hidden: int = 16) -> dict:
    """Train a small model on mfeat through the CLI; return its metrics.json (the run directory is ``out``)."""
    import json

    from dain.cli import main

    args = [
        "fit",
        "--data",
        "mfeat",
        "--model",
        model,
        "--max-epochs",
        str(epochs),
        "--set",
        f"hidden={hidden}",
        "--out",
        str(out),
        "--json",
        "--no-progress",
        *extra,
    ]
    assert main(args) == 0
    return json.loads((out / "metrics.json").read_text())
