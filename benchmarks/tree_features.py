"""The tree agent alone on P12 (Raindrop split S) under a feature variant, before any network is trained: the
out-of-fold AUROC of its cross-fit on the training rows and the validation AUROC of its fold boosters' mean.

    python benchmarks/tree_features.py SPLIT {zscore|ple} [base|vectors|stdfirst]

``zscore`` / ``ple``: the loader's encoding of the summary modality (DAIN's P12 configs use ``ple``, the ``gbm``
baseline ``zscore``). Variants of :func:`dain.models.gbm.summary_features`: ``base`` as it is; ``vectors`` only the
vector modalities (static + summary, no sequence statistics); ``stdfirst`` adds each sequence channel's standard
deviation and first observed value. One JSON line on stdout (docs/results.md, issue 12, 2026-12-04)."""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import numpy as np
import torch

import dain.models.dain_parts.tree_agent as tree_agent
from dain.data import load_dataset
from dain.data.spec import make_batch
from dain.models.gbm import summary_features
from dain.training.metrics import compute_metrics


def auroc(logits: np.ndarray | torch.Tensor, y: np.ndarray) -> float:
    """The project's AUROC (as ``dain fit`` reports it) of binary logits [N, 1]."""
    return compute_metrics("binary", torch.as_tensor(logits), torch.as_tensor(y), 1, only="auroc")["auroc"]


def variant_features(variant: str):  # noqa: ANN201
    """A drop-in for ``summary_features`` computing ``variant``."""

    def features(spec, inputs, mask, steps=None):  # noqa: ANN001, ANN202
        if variant == "base":
            return summary_features(spec, inputs, mask, steps)
        if variant == "vectors":
            keep = [j for j, m in enumerate(spec.modalities) if m.kind != "sequence"]
            sub = dataclasses.replace(spec, modalities=tuple(spec.modalities[j] for j in keep))
            return summary_features(
                sub, {spec.modalities[j].name: inputs[spec.modalities[j].name] for j in keep}, mask[:, keep], steps
            )
        if variant == "stdfirst":
            cols = [summary_features(spec, inputs, mask, steps)]
            for j, m in enumerate(spec.modalities):
                if m.kind != "sequence":
                    continue
                x, st = np.asarray(inputs[m.name], np.float32), np.asarray(steps[m.name], bool)
                w = st[..., None].astype(np.float32)
                n = np.maximum(w.sum(1), 1)
                mean = (x * w).sum(1) / n
                std = np.sqrt(((x - mean[:, None]) ** 2 * w).sum(1) / n)
                first = x[np.arange(len(x)), np.argmax(st, axis=1)]
                f = np.concatenate([std, first], 1)
                f[~st.any(1)] = np.nan
                f[~mask[:, j]] = np.nan
                cols.append(f.astype(np.float32))
            return np.concatenate(cols, 1)
        raise SystemExit(f"unknown variant {variant!r}: base | vectors | stdfirst")

    return features


def main() -> None:
    split, encoding = int(sys.argv[1]), sys.argv[2]
    variant = sys.argv[3] if len(sys.argv) > 3 else "base"
    tree_agent.summary_features = variant_features(variant)  # what TreeAgent.arrays / forward call
    data = load_dataset(
        "physionet2012", protocol="raindrop", split=split, summary=True, summary_encoding=encoding, summary_bins=16
    )
    agent = tree_agent.TreeAgent(data.spec)
    t0 = time.time()
    info = agent.fit(data, seed=0, threads=1)
    x, y, tr, va = agent.arrays(data)
    oof = np.stack([agent._oof[int(r)] for r in tr])  # out-of-fold logits of the training rows
    with torch.no_grad():
        val = agent.eval()(make_batch(data, va))  # the fold boosters' mean, as the agent answers at inference
    print(
        json.dumps(
            {
                "split": split,
                "summary_encoding": encoding,
                "variant": variant,
                "features": int(x.shape[1]),
                "trees": info["trees"],
                "oof_auroc": auroc(oof, y[tr]),
                "val_auroc": auroc(val, y[va]),
                "fit_s": round(time.time() - t0, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
