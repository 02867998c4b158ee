"""Tests of the Time-MoE / MERGE model: router, experts, auxiliary losses, masking, interactions and
prepare()."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset
from dain.models import build_model, timemoe_rus
from dain.models.timemoe import RUSRouter, TimeMoE, jsd, load_balance_loss, rus_losses

torch.set_num_threads(1)

SPEC = DatasetSpec(
    "toy",
    "multiclass",
    3,
    (
        ModalitySpec("a", "sequence", (12, 3)),
        ModalitySpec("b", "sequence", (6, 2)),
        ModalitySpec("v", "vector", (4,)),
    ),
)


def _batch(B: int = 4, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "inputs": {
            "a": torch.randn(B, 12, 3, generator=g),
            "b": torch.randn(B, 6, 2, generator=g),
            "v": torch.randn(B, 4, generator=g),
        },
        "mask": torch.ones(B, 3, dtype=torch.bool),
        "target": torch.randint(0, 3, (B,), generator=g),
    }


def _model(**kw: object) -> TimeMoE:
    torch.manual_seed(0)
    opts = {
        "max_tokens": 6,
        "hidden": 16,
        "heads": 2,
        "expert_hidden": 16,
        "d_ff": 16,
        "router_hidden": 8,
        "router_key_dim": 4,
        "router_gru_hidden": 8,
    }
    opts.update(kw)
    return build_model("timemoe", SPEC, **opts)  # type: ignore[return-value]


def _rus(M: int = 3, T: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(M, T, generator=g), torch.rand(M, M, T, generator=g), torch.rand(M, M, T, generator=g)


def test_router_shapes() -> None:
    r = RUSRouter(16, 5, hidden=8, key_dim=4, gru_hidden=8)
    x = torch.randn(2, 3, 7, 16)
    present = torch.ones(2, 3, 7, dtype=torch.bool)
    present[1, 2] = False
    U, R, S = _rus(3, 7)
    logits = r(x, present, U, R, S)
    assert logits.shape == (2, 3, 7, 5) and torch.isfinite(logits).all()
    assert RUSRouter(16, 5, use_rus=False)(x, present, U, R, S).shape == (2, 3, 7, 5)


def test_model_outputs_and_topk() -> None:
    m = _model(num_experts=4, top_k=2)
    m.set_interactions(*_rus())
    out = m(_batch())
    assert out.logits.shape == (4, 3)
    assert set(out.losses) == {"rus_unique", "rus_redundant", "rus_synergy", "load_balance"}
    probs, choice = out.routing["router_probs"], out.routing["expert_choice"]
    assert probs.shape == (4, 3, 6, 4) and choice.shape == (4, 3, 6, 2)
    assert torch.allclose(probs.sum(-1), torch.ones(4, 3, 6), atol=1e-5)
    # exactly k distinct experts per token, and they are the k most probable ones
    srt = choice.sort(-1).values
    assert (srt[..., 1] != srt[..., 0]).all()
    kth = probs.topk(2, -1).values[..., -1:]
    assert (probs.gather(-1, choice) >= kth - 1e-6).all()


def test_gradients_reach_every_parameter() -> None:
    m = _model(num_experts=3, top_k=3, num_layers=3, num_moe_layers=2)
    m.set_interactions(*_rus())
    out = m(_batch(6))
    loss = torch.nn.functional.cross_entropy(out.logits, _batch(6)["target"]) + sum(out.losses.values())
    loss.backward()
    dead = [
        n
        for n, p in m.named_parameters()
        if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0
    ]
    # the learned missing-modality embeddings only get gradients when a modality is missing
    assert [n for n in dead if not n.startswith("encode.missing")] == []


def test_losses_zero_when_no_pair_passes_threshold() -> None:
    probs = torch.softmax(torch.randn(2, 3, 5, 4), -1)
    present = torch.ones(2, 3, 5, dtype=torch.bool)
    U, R, S = torch.full((3, 5), 0.01), torch.full((3, 3, 5), 0.01), torch.full((3, 3, 5), 0.01)
    out = rus_losses(probs, present, U, R, S, 1)
    assert all(float(v) == 0.0 for v in out.values())


def test_redundant_loss_positive_iff_routing_differs() -> None:
    U, R, S = torch.zeros(2, 5), torch.zeros(2, 2, 5), torch.zeros(2, 2, 5)
    R[0, 1] = R[1, 0] = 1.0
    present = torch.ones(1, 2, 5, dtype=torch.bool)
    p = torch.softmax(torch.randn(1, 1, 5, 4), -1)
    same = rus_losses(torch.cat([p, p], 1), present, U, R, S, 1)["rus_redundant"]
    q = torch.softmax(torch.randn(1, 1, 5, 4) * 3, -1)
    diff = rus_losses(torch.cat([p, q], 1), present, U, R, S, 1)["rus_redundant"]
    assert abs(float(same)) < 1e-6 and float(diff) > 1e-3


def test_unique_loss_negative_and_jsd_bounds() -> None:
    U = torch.ones(2, 3)
    present = torch.ones(1, 2, 3, dtype=torch.bool)
    a = torch.tensor([1.0, 0.0]).expand(1, 1, 3, 2)
    b = torch.tensor([0.0, 1.0]).expand(1, 1, 3, 2)
    zeros = torch.zeros(2, 2, 3)
    lu = rus_losses(torch.cat([a, b], 1), present, U, zeros, zeros, 1)["rus_unique"]
    assert math.isclose(float(lu), -math.log(2), rel_tol=1e-4)
    assert float(jsd(a, a).max()) < 1e-6


def test_synergy_loss_decreases_with_synergy_mass() -> None:
    U, R, S = torch.zeros(2, 4), torch.zeros(2, 2, 4), torch.zeros(2, 2, 4)
    S[0, 1] = S[1, 0] = 1.0
    present = torch.ones(1, 2, 4, dtype=torch.bool)
    vals = []
    for mass in (0.1, 0.4, 0.7, 0.95):
        p = torch.tensor([mass, (1 - mass) / 2, (1 - mass) / 2]).expand(1, 2, 4, 3)
        vals.append(float(rus_losses(p, present, U, R, S, 1)["rus_synergy"]))
    assert all(x > y for x, y in zip(vals, vals[1:]))
    assert math.isclose(vals[-1], 0.05, abs_tol=1e-5)


def test_load_balance_minimal_for_uniform() -> None:
    E, N = 4, 64
    valid = torch.ones(N, dtype=torch.bool)
    uni = torch.full((N, E), 1 / E)
    choice_uni = torch.stack([torch.arange(N) % E, (torch.arange(N) + 1) % E], -1)
    lo = float(load_balance_loss(uni, choice_uni, valid, 1.0))
    peaked = torch.softmax(torch.tensor([5.0, 1.0, 0.0, 0.0]), -1).expand(N, E)
    hi = float(load_balance_loss(peaked, peaked.topk(2, -1).indices, valid, 1.0))
    assert math.isclose(lo, 1.0, rel_tol=1e-5) and hi > lo


def test_missing_modality_and_step_masks() -> None:
    m = _model().eval()
    m.set_interactions(*_rus())
    b = _batch(3)
    b["mask"][0, 1] = False  # modality b missing in sample 0
    b["steps"] = {"a": torch.ones(3, 12, dtype=torch.bool), "b": torch.ones(3, 6, dtype=torch.bool)}
    b["steps"]["a"][1, 5:] = False  # variable length
    b["steps"]["b"][2, ::2] = False  # irregular
    with torch.no_grad():
        out = m(b)
        assert torch.isfinite(out.logits).all() and all(torch.isfinite(v) for v in out.losses.values())
        b2 = {**b, "inputs": {k: v.clone() for k, v in b["inputs"].items()}}
        b2["inputs"]["b"][0] = 1e3  # missing modality's values
        b2["inputs"]["a"][1, 5:] = -50.0  # masked steps
        b2["inputs"]["b"][2, ::2] = 7.0
        out2 = m(b2)
    assert torch.allclose(out.logits, out2.logits, atol=1e-5)
    assert torch.allclose(out.losses["rus_redundant"], out2.losses["rus_redundant"], atol=1e-6)


def test_all_modalities_missing_is_finite() -> None:
    m = _model().eval()
    b = _batch(2)
    b["mask"][0] = False
    with torch.no_grad():
        assert torch.isfinite(m(b).logits).all()


def test_set_interactions_changes_routing_and_is_saved() -> None:
    m = _model().eval()
    b = _batch()
    with torch.no_grad():
        p0 = m(b).routing["router_probs"]
        U, R, S = _rus(seed=1)
        m.set_interactions(U * 5, R * 5, S * 5)
        p1 = m(b).routing["router_probs"]
    assert not torch.allclose(p0, p1, atol=1e-4)
    sd = m.state_dict()
    assert {"rus_U", "rus_R", "rus_S", "rus_ready"} <= set(sd)
    m2 = _model().eval()
    m2.load_state_dict(sd)
    assert bool(m2.rus_ready) and torch.equal(m2.rus_U, m.rus_U)
    # resampling onto the grid and symmetrisation
    m2.set_interactions(torch.ones(3, 2), torch.rand(3, 3, 12), torch.rand(3, 3, 1))
    assert torch.allclose(m2.rus_R, m2.rus_R.transpose(0, 1))


def test_norus_and_noaux_presets() -> None:
    a = build_model("timemoe_norus", SPEC, max_tokens=6, hidden=16, heads=2)
    assert a.cfg.use_rus is False and not hasattr(a.layers[1].moe.router, "gru")
    n = build_model("timemoe_noaux", SPEC, max_tokens=6, hidden=16, heads=2)
    assert set(n(_batch()).losses) == {"load_balance"}


def test_rus_tensors_lag_mapping() -> None:
    pairs = [
        {"modalities": ["a", "b"], "lag": lag, "R": r, "U1": 0.2, "U2": u2, "S": 0.0, "total": 1.0}
        for lag, r, u2 in [(0, 1.0, 0.0), (1, 2.0, 0.5), (2, 3.0, 0.0)]
    ]
    pairs.append({"modalities": ["a", "v"], "lag": None, "R": 0.0, "U1": 0.9, "U2": 0.3, "S": 0.4, "total": 1.0})
    U, R, S = timemoe_rus.rus_tensors(pairs, ["a", "b", "v"], 7)
    # 3 lags on 7 tokens: segments [0,2), [2,4), [4,7)
    assert R[0, 1].tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0] and torch.equal(R[0, 1], R[1, 0])
    assert torch.allclose(U[0], torch.full((7,), 0.9)) and torch.allclose(U[2], torch.full((7,), 0.3))
    assert U[1].tolist() == [0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0]
    assert torch.allclose(S[0, 2], torch.full((7,), 0.4))
    W = timemoe_rus.lag_to_token_weights(list(range(10)), 4)
    assert torch.allclose(W.sum(0), torch.ones(4))


def _tiny_dataset() -> MultimodalDataset:
    rng = np.random.default_rng(0)
    n = 30
    spec = DatasetSpec(
        "tiny",
        "multiclass",
        2,
        (ModalitySpec("a", "sequence", (12, 3)), ModalitySpec("b", "sequence", (6, 2))),
    )
    y = rng.integers(0, 2, n)
    idx = rng.permutation(n)
    return MultimodalDataset(
        spec,
        {
            "a": rng.normal(size=(n, 12, 3)).astype(np.float32),
            "b": rng.normal(size=(n, 6, 2)).astype(np.float32),
        },
        np.ones((n, 2), dtype=bool),
        y,
        {"train": np.sort(idx[:20]), "val": np.sort(idx[20:25]), "test": np.sort(idx[25:])},
    )


def test_prepare_caches_and_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _tiny_dataset()
    calls: list[dict] = []

    def fake(sub: MultimodalDataset, **kw: object) -> list[dict]:
        calls.append({"train": sub.splits["train"].copy(), "val": len(sub.splits["val"]), **kw})
        return [
            {"modalities": ["a", "b"], "lag": lag, "R": 0.5, "U1": 0.7, "U2": 0.6, "S": 0.2, "total": 2.0}
            for lag in kw["lags"]
        ]  # type: ignore[union-attr]

    monkeypatch.setattr(timemoe_rus, "_estimate", fake)
    m = build_model("timemoe", data.spec, max_tokens=6, hidden=16, heads=2, rus_max_samples=8, rus_lags=[0, 1, 2])
    info = m.prepare(data, tmp_path)
    assert len(calls) == 1 and not info["from_cache"] and bool(m.rus_ready)
    assert set(calls[0]["train"]) <= set(data.splits["train"]) and len(calls[0]["train"]) == 8
    assert calls[0]["val"] == 0 and calls[0]["split"] == "train"
    assert torch.allclose(m.rus_R[0, 1], torch.full((6,), 0.5))
    assert len(list(tmp_path.glob("timemoe_rus_*.json"))) == 1
    m2 = build_model("timemoe", data.spec, max_tokens=6, hidden=16, heads=2, rus_max_samples=8, rus_lags=[0, 1, 2])
    assert m2.prepare(data, tmp_path)["from_cache"] and len(calls) == 1
    assert torch.equal(m2.rus_U, m.rus_U)
    m3 = build_model("timemoe", data.spec, max_tokens=6, hidden=16, heads=2, rus_max_samples=8, rus_lags=[0, 2])
    assert not m3.prepare(data, tmp_path)["from_cache"] and len(calls) == 2


def test_prepare_default_is_static(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _tiny_dataset()
    seen: list[object] = []

    def fake(sub: MultimodalDataset, **kw: object) -> list[dict]:
        seen.append(kw["lags"])
        return [{"modalities": ["a", "b"], "lag": None, "R": 0.3, "U1": 0.1, "U2": 0.9, "S": 0.0, "total": 1.3}]

    monkeypatch.setattr(timemoe_rus, "_estimate", fake)
    m = build_model("timemoe", data.spec, max_tokens=6, hidden=16, heads=2)
    m.prepare(data, tmp_path)
    assert seen == [None] and torch.allclose(m.rus_U[1], torch.full((6,), 0.9))
