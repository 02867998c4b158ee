"""Does Time-MoE's routing follow the estimated interactions? (issue 17: with the model's default settings)

A generated 3-modality sequence dataset with a known structure. The label is ``y = 2*y1 + y2`` (4 classes);
modalities ``A`` and ``B`` are independent noisy copies of the ``y1`` signal (a redundant pair), ``C`` carries ``y2``
only (unique w.r.t. A and B). R/U/S are estimated on the train split by the training harness
(``dain.training.interaction_cache.provide_interactions``: the default temporal, per-window estimate on the whole
training split) and the thresholds are the defaults (fractions of H(Y)). We train ``timemoe`` and ``timemoe_noaux``
and report, on the test split, the mean JSD (nats) between the router distributions of the redundant pair (A, B) and
of the unique pairs (A, C), (B, C) in the last MoE layer. Expected: redundant JSD < unique JSD for ``timemoe``.
``--part temporal``: interactions that change over time (A, B redundant in the first half of the sequence, each
unique in the second): per-window R/U/S (``timemoe``) against one static estimate (``timemoe_static``), the JSD of
A's and B's routing per half. Accuracy on the real benchmarks is ``dain compare``'s job (benchmarks/run_issue17.sh).

Run: ``python benchmarks/routing_follows_interactions.py [--part all --epochs 6 --seeds 0 1 2 --out result.json]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dain.data import DatasetSpec, ModalitySpec, MultimodalDataset, make_batch, stratified_split
from dain.models import build_model
from dain.models.timemoe import jsd
from dain.training.interaction_cache import provide_interactions


def make_redundant_unique(n: int = 800, T: int = 16, noise: float = 0.6, seed: int = 0) -> MultimodalDataset:
    """A, B: noisy copies of bit y1 (redundant); C: bit y2 (unique); target 2*y1 + y2."""
    rng = np.random.default_rng(seed)
    y1, y2 = rng.integers(0, 2, n), rng.integers(0, 2, n)
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    wave = np.sin(np.linspace(0, 2 * np.pi, T)[None] + phase)  # nuisance shared by all channels

    def channel(bit: np.ndarray) -> np.ndarray:
        x = rng.normal(0, noise, (n, T, 3))
        x[..., 0] += (2 * bit[:, None] - 1) * 1.0
        x[..., 1] += wave
        return x.astype(np.float32)

    inputs = {"A": channel(y1), "B": channel(y1), "C": channel(y2)}
    y = 2 * y1 + y2
    spec = DatasetSpec("redundant-unique", "multiclass", 4, tuple(ModalitySpec(m, "sequence", (T, 3)) for m in inputs))
    return MultimodalDataset(
        spec, inputs, np.ones((n, 3), dtype=bool), y, stratified_split(y, (0.6, 0.2, 0.2), seed=seed)
    )


def make_changing(n: int = 800, T: int = 16, noise: float = 0.6, seed: int = 0) -> MultimodalDataset:
    """Interactions that change over time: in the first half of the sequence A and B both carry bit y1 (redundant);
    in the second half A still carries y1 and B carries y2 (each unique). Target 2*y1 + y2."""
    rng = np.random.default_rng(seed)
    y1, y2 = rng.integers(0, 2, n), rng.integers(0, 2, n)
    a = rng.normal(0, noise, (n, T, 3)).astype(np.float32)
    b = rng.normal(0, noise, (n, T, 3)).astype(np.float32)
    half = T // 2
    a[..., 0] += (2 * y1[:, None] - 1).astype(np.float32)
    b[:, :half, 0] += (2 * y1[:, None] - 1).astype(np.float32)
    b[:, half:, 0] += (2 * y2[:, None] - 1).astype(np.float32)
    y = 2 * y1 + y2
    spec = DatasetSpec(
        "changing-interactions", "multiclass", 4, tuple(ModalitySpec(m, "sequence", (T, 3)) for m in "AB")
    )
    return MultimodalDataset(
        spec, {"A": a, "B": b}, np.ones((n, 2), dtype=bool), y, stratified_split(y, (0.6, 0.2, 0.2), seed=seed)
    )


def train(
    model: nn.Module, data: MultimodalDataset, epochs: int, lr: float = 1e-3, bs: int = 32, seed: int = 0
) -> tuple[nn.Module, float]:
    """AdamW + cosine + grad clip 1.0; keeps the best-val-accuracy state; returns (model, best val acc)."""
    g = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    tr = np.asarray(data.splits["train"])
    best, best_state = -1.0, None
    for _ in range(epochs):
        model.train()
        perm = g.permutation(tr)
        for i in range(0, len(perm), bs):
            b = make_batch(data, perm[i : i + bs])
            out = model(b)
            loss = nn.functional.cross_entropy(out.logits, b["target"]) + sum(out.losses.values())
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        sched.step()
        acc = accuracy(model, data, "val")
        if acc > best:
            best, best_state = acc, {k: v.clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, best


@torch.no_grad()
def predict(model: nn.Module, data: MultimodalDataset, split: str) -> tuple[np.ndarray, torch.Tensor]:
    model.eval()
    rows = np.asarray(data.splits[split])
    logits, probs = [], []
    for i in range(0, len(rows), 128):
        out = model(make_batch(data, rows[i : i + 128]))
        logits.append(out.logits)
        probs.append(out.routing["router_probs"])
    return torch.cat(logits).argmax(-1).numpy(), torch.cat(probs)


def accuracy(model: nn.Module, data: MultimodalDataset, split: str) -> float:
    pred, _ = predict(model, data, split)
    return float((pred == data.target[np.asarray(data.splits[split])]).mean())


def fit_one(
    name: str, data: MultimodalDataset, seed: int, epochs: int, cache: Path
) -> tuple[Any, Any, float, float, torch.Tensor]:
    """Build ``name`` with an 8-token grid, give it its interactions (harness cache), train it; returns (model, the
    interactions, seconds the interactions took, test accuracy, test router probabilities [N, M, T, E])."""
    torch.manual_seed(seed)
    model = build_model(name, data.spec, max_tokens=8)
    t0 = time.time()
    ri = provide_interactions(model, data, cache)
    t_prep = time.time() - t0
    model, _ = train(model, data, epochs, seed=seed)
    pred, probs = predict(model, data, "test")
    acc = float((pred == data.target[np.asarray(data.splits["test"])]).mean())
    return model, ri, t_prep, acc, probs


def routing_part(epochs: int, seeds: list[int]) -> dict[str, Any]:
    data = make_redundant_unique()
    res: dict[str, Any] = {}
    cache = Path(tempfile.gettempdir()) / "dain_timemoe_rus"  # reused across runs (keyed by data + request)
    for name in ("timemoe", "timemoe_noaux"):
        rows = []
        for seed in seeds:
            model, ri, t_prep, acc, probs = fit_one(name, data, seed, epochs, cache)
            if seed == seeds[0] and name == "timemoe" and ri is not None:
                print(f"R/U/S estimation: {t_prep:.1f}s (cached: {ri.from_cache}); H(Y) = {ri.label_entropy:.3f} bit")
                print("  thresholds (bits):", [round(t, 3) for t in model.thresholds()])
                for p in ri.pairs:
                    print(
                        f"  {p['modalities']} lag={p['lag']} span={p.get('span')}: R={p['R']:.3f} U1={p['U1']:.3f} "
                        f"U2={p['U2']:.3f} S={p['S']:.3f}"
                    )
                print("  U[m] mean over t:", [round(float(u), 3) for u in model.rus_U.mean(1)])
                res["interactions"] = {"seconds": t_prep, "label_entropy": ri.label_entropy, "pairs": ri.pairs}
            j_red = float(jsd(probs[:, 0], probs[:, 1]).mean())
            j_uni = float(0.5 * (jsd(probs[:, 0], probs[:, 2]).mean() + jsd(probs[:, 1], probs[:, 2]).mean()))
            rows.append((acc, j_red, j_uni))
            print(f"{name:14s} seed={seed} test_acc={acc:.3f} JSD redundant(A,B)={j_red:.4f}", end=" ")
            print(f"unique={j_uni:.4f}")
        a = np.asarray(rows)
        res[name] = {
            "per_seed": [
                {"seed": s, "acc": r[0], "jsd_redundant": r[1], "jsd_unique": r[2]} for s, r in zip(seeds, rows)
            ],
            "acc": a[:, 0].mean(),
            "jsd_redundant": a[:, 1].mean(),
            "jsd_redundant_sd": a[:, 1].std(),
            "jsd_unique": a[:, 2].mean(),
            "jsd_unique_sd": a[:, 2].std(),
        }
        print(
            f"{name:14s} MEAN test_acc={a[:, 0].mean():.3f} JSD redundant={a[:, 1].mean():.4f} "
            f"(sd {a[:, 1].std():.4f}) unique={a[:, 2].mean():.4f} (sd {a[:, 2].std():.4f})"
        )
    return res


def temporal_part(epochs: int, seeds: list[int]) -> dict[str, Any]:
    """Per-window (``timemoe``) against static (``timemoe_static``) R/U/S on :func:`make_changing`: the mean JSD
    between A's and B's routing over the first-half tokens (redundant there) and the second-half tokens (unique
    there). Expected for the windowed estimate: early JSD < late JSD, a wider gap than the static one gives."""
    data = make_changing()
    res: dict[str, Any] = {}
    cache = Path(tempfile.gettempdir()) / "dain_timemoe_rus"
    for name in ("timemoe", "timemoe_static"):
        rows = []
        for seed in seeds:
            _, ri, t_prep, acc, probs = fit_one(name, data, seed, epochs, cache)
            if seed == seeds[0] and ri is not None:
                prof = [(p.get("lag"), round(p["R"], 3), round(p["U1"], 3), round(p["U2"], 3)) for p in ri.pairs]
                print(f"{name}: R/U/S in {t_prep:.1f}s (lag, R, U(A), U(B)): {prof}")
                res[f"{name}_interactions"] = ri.pairs
            d = jsd(probs[:, 0], probs[:, 1])  # [N, T]
            half = d.shape[1] // 2
            early, late = float(d[:, :half].mean()), float(d[:, half:].mean())
            rows.append((acc, early, late))
            print(f"{name:14s} seed={seed} test_acc={acc:.3f} JSD(A,B) early={early:.4f} late={late:.4f}")
        a = np.asarray(rows)
        res[name] = {
            "per_seed": [{"seed": s, "acc": r[0], "jsd_early": r[1], "jsd_late": r[2]} for s, r in zip(seeds, rows)],
            "acc": a[:, 0].mean(),
            "jsd_early": a[:, 1].mean(),
            "jsd_early_sd": a[:, 1].std(),
            "jsd_late": a[:, 2].mean(),
            "jsd_late_sd": a[:, 2].std(),
        }
        print(f"{name:14s} MEAN acc={a[:, 0].mean():.3f} JSD early={a[:, 1].mean():.4f} late={a[:, 2].mean():.4f}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("routing", "temporal", "all"), default="all")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res: dict[str, Any] = {}
    if args.part in ("routing", "all"):
        res["routing"] = routing_part(args.epochs, args.seeds)
    if args.part in ("temporal", "all"):
        res["temporal"] = temporal_part(args.epochs, args.seeds)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
