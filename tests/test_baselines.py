"""Baseline fusion models: lrtf, moe_topk, fusemoe, flexmoe, i2moe (+ the shared MoE layers)."""

from __future__ import annotations

import pytest
import torch

from dain.data.spec import DatasetSpec, ModalitySpec
from dain.models import build_model
from dain.models.moe_layers import (
    MoEFFN,
    TopKRouter,
    capacity_keep,
    dense_dispatch,
    load_balancing_loss,
    router_z_loss,
    sparse_dispatch,
)

MODELS = ["lrtf", "moe_topk", "fusemoe", "flexmoe", "i2moe"]
SMALL = {"hidden": 16, "dropout": 0.0}
# parameters that receive an all-zero gradient by design (they are in the graph with zero contribution)
ZERO_GRAD_BY_DESIGN = {
    "flexmoe": {"encode.missing"},  # replaced by flexmoe's own (combination, modality) bank
    "fusemoe": {"encode.missing"},  # absent modalities are masked out of attention/routing/pooling
}

VEC = DatasetSpec(
    "tiny_vec",
    "multiclass",
    4,
    (ModalitySpec("a", "vector", (5,)), ModalitySpec("b", "vector", (7,)), ModalitySpec("c", "vector", (3,))),
)
SEQ = DatasetSpec(
    "tiny_seq",
    "binary",
    1,
    (ModalitySpec("v", "vector", (6,)), ModalitySpec("s", "sequence", (10, 3))),
)


def make_batch(spec: DatasetSpec, B: int = 48, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs = {m.name: torch.randn((B, *m.shape), generator=g) for m in spec.modalities}
    mask = torch.ones(B, spec.num_modalities, dtype=torch.bool)
    mask[1, 0] = False  # one missing modality
    mask[2, -1] = False
    mask[3, :] = False  # nothing observed
    for j in range(spec.num_modalities):  # masked rows carry zeros, as the loaders write them
        inputs[spec.modalities[j].name][~mask[:, j]] = 0.0
    batch = {"inputs": inputs, "mask": mask}
    if spec.task == "multiclass":
        batch["target"] = torch.randint(0, spec.num_outputs, (B,), generator=g)
    else:
        batch["target"] = torch.randint(0, 2, (B,), generator=g).float()
    steps = {}
    for m in spec.modalities:
        if m.kind == "sequence":
            st = torch.ones(B, m.shape[0], dtype=torch.bool)
            st[4, 6:] = False
            steps[m.name] = st
    if steps:
        batch["steps"] = steps
    return batch


def task_loss(spec: DatasetSpec, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if spec.task == "multiclass":
        return torch.nn.functional.cross_entropy(logits, target)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits.squeeze(-1), target)


@pytest.mark.parametrize("spec", [VEC, SEQ], ids=["vec", "seq"])
@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_all_params(name: str, spec: DatasetSpec) -> None:
    torch.manual_seed(0)
    # router noise makes every expert receive tokens in this small batch (routing at init is near-collapsed)
    extra = {"router_noise": 1.0} if name in ("moe_topk", "fusemoe", "flexmoe") else {}
    model = build_model(name, spec, **SMALL, **extra)
    model.train()
    if hasattr(model, "set_epoch"):
        model.set_epoch(10**6)  # past warm-up: every path active
    batch = make_batch(spec)
    out = model(batch)
    assert out.logits.shape == (48, spec.num_outputs)
    assert torch.isfinite(out.logits).all()
    for k, v in out.losses.items():
        assert v.dim() == 0 and torch.isfinite(v), k
    loss = task_loss(spec, out.logits, batch["target"]) + sum(out.losses.values())
    loss.backward()
    allowed = ZERO_GRAD_BY_DESIGN.get(name, set())
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname
        if pname not in allowed:
            assert p.grad.abs().sum() > 0, f"{name}: {pname} has an all-zero gradient"


@pytest.mark.parametrize("name", MODELS)
def test_missing_modality_values_ignored(name: str) -> None:
    """Rows with a masked modality give finite outputs that do not depend on the masked values."""
    torch.manual_seed(0)
    model = build_model(name, VEC, **SMALL).eval()
    batch = make_batch(VEC, B=8)
    with torch.no_grad():
        out1 = model(batch).logits
        batch["inputs"]["a"][1] = 1e3 * torch.randn(5)  # sample 1 has modality a masked
        batch["inputs"]["c"][3] = 5.0  # sample 3 has nothing observed
        out2 = model(batch).logits
    assert torch.isfinite(out1).all() and torch.isfinite(out2).all()
    torch.testing.assert_close(out1[[1, 3]], out2[[1, 3]])


def test_flexmoe_uses_bank() -> None:
    torch.manual_seed(0)
    model = build_model("flexmoe", VEC, **SMALL)
    model.set_epoch(10**6)
    batch = make_batch(VEC, B=8)
    combo = model.combination(batch["mask"])
    assert int(combo[1]) == 0b110 and int(combo[3]) == 0 and int(combo[0]) == 0b111
    out = model(batch)
    assert int(out.routing["target_expert"][0]) == -1  # complete samples are not supervised
    assert "router_supervision" in out.losses
    task_loss(VEC, out.logits[[1]], batch["target"][[1]]).backward()
    g = model.bank.grad
    assert g[0b110, 0].abs().sum() > 0  # sample 1's absent modality a uses bank[combination, a]
    assert g[0b110, 1:].abs().sum() == 0 and g[0b101].abs().sum() == 0  # nothing else in the bank is touched
    model.eval()
    with torch.no_grad():
        before = model(batch).logits
        model.bank[0b110, 0] += 1.0
        after = model(batch).logits
    assert not torch.allclose(before[1], after[1])
    torch.testing.assert_close(before[0], after[0])  # complete sample 0 does not see the bank


def test_flexmoe_warmup_trains_on_complete_samples_only() -> None:
    torch.manual_seed(0)
    model = build_model("flexmoe", VEC, **SMALL, warmup_epochs=2)
    assert model.warmup is False  # no warm-up unless the harness calls set_epoch
    batch = make_batch(VEC, B=8)
    model.set_epoch(0)
    out = model(batch)
    assert "router_supervision" not in out.losses and float(out.stats["warmup"]) == 1.0
    task_loss(VEC, out.logits[1:4], batch["target"][1:4]).backward()  # incomplete samples only
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.parameters())
    model.zero_grad()
    model.set_epoch(2)
    out = model(batch)
    task_loss(VEC, out.logits[1:4], batch["target"][1:4]).backward()
    assert model.bank.grad.abs().sum() > 0


def test_balance_loss_uniform_vs_collapsed() -> None:
    E, N = 4, 64
    uniform_p = torch.full((N, E), 1.0 / E)
    uniform_idx = (torch.arange(N) % E).unsqueeze(1)
    assert torch.isclose(load_balancing_loss(uniform_p, uniform_idx, E), torch.tensor(1.0))
    top2 = torch.stack([torch.arange(N) % E, (torch.arange(N) + 1) % E], 1)
    assert torch.isclose(load_balancing_loss(uniform_p, top2, E), torch.tensor(1.0))
    collapsed_p = torch.zeros(N, E)
    collapsed_p[:, 0] = 1.0
    collapsed_idx = torch.zeros(N, 1, dtype=torch.long)
    assert torch.isclose(load_balancing_loss(collapsed_p, collapsed_idx, E), torch.tensor(float(E)))
    skewed_p = torch.softmax(torch.randn(N, E) * 3, -1)
    assert load_balancing_loss(skewed_p, skewed_p.argmax(1, keepdim=True), E) > 1.0
    # the model reports it already weighted: at (near-)uniform init it is ~ balance_weight * 1
    model = build_model("moe_topk", VEC, **SMALL, balance_weight=0.5)
    out = model(make_batch(VEC))
    assert 0.5 <= float(out.losses["moe_balance"].detach()) < 0.5 * E
    z = router_z_loss(torch.zeros(3, E))
    assert torch.isclose(z, torch.log(torch.tensor(float(E))) ** 2)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("gating", ["softmax", "laplace"])
def test_router_top_k(k: int, gating: str) -> None:
    torch.manual_seed(0)
    router = TopKRouter(8, 5, k, gating)
    x = torch.randn(30, 8)
    r = router(x)
    assert r.idx.shape == (30, k) and r.gates.shape == (30, k)
    assert all(len(set(row.tolist())) == k for row in r.idx)
    torch.testing.assert_close(r.probs.sum(-1), torch.ones(30))
    if k > 1:
        torch.testing.assert_close(r.gates.sum(-1), torch.ones(30))
    if gating == "laplace":
        torch.testing.assert_close(r.logits, -torch.cdist(x, router.weight))


def test_model_expert_choice_has_k_experts() -> None:
    torch.manual_seed(0)
    for name in ("moe_topk", "fusemoe", "flexmoe"):
        model = build_model(name, SEQ, **SMALL, top_k=2)
        ch = model(make_batch(SEQ)).routing["expert_choice"]  # [B, layers, L, k], -1 = not routed
        routed = (ch >= 0).all(-1)
        assert routed.any()
        assert ((ch >= 0).any(-1) == routed).all()  # a routed token has all k choices
        c = ch[routed]
        assert (c[:, 0] != c[:, 1]).all()


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("cf", [None, 0.5])
def test_sparse_dispatch_equals_dense(k: int, cf: float | None) -> None:
    torch.manual_seed(0)
    moe = MoEFFN(8, 4, k, 16, capacity_factor=cf)
    x = torch.randn(40, 8, requires_grad=True)
    r = moe.router(x, moe.capacity(40))
    if cf is not None:
        assert not r.keep.all()  # some tokens are dropped at capacity factor 0.5
    ys = sparse_dispatch(x, moe.experts, r.idx, r.gates, r.keep)
    yd = dense_dispatch(x, moe.experts, r.idx, r.gates, r.keep)
    torch.testing.assert_close(ys, yd, atol=1e-6, rtol=1e-5)
    gs = torch.autograd.grad(ys.square().sum(), [x, moe.router.weight], retain_graph=True)
    gd = torch.autograd.grad(yd.square().sum(), [x, moe.router.weight])
    for a, b in zip(gs, gd):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    y, _, aux = moe(x)
    torch.testing.assert_close(y, ys)
    assert set(aux) == {"balance", "z", "dropped"}


def test_sparse_dispatch_skips_idle_experts() -> None:
    torch.manual_seed(0)
    moe = MoEFFN(8, 4, 1, 16)
    calls = []
    for i, ex in enumerate(moe.experts):
        ex.register_forward_hook(lambda mod, inp, out, i=i: calls.append((i, inp[0].shape[0])))
    idx = torch.tensor([[0], [2], [0]])
    sparse_dispatch(torch.randn(3, 8), moe.experts, idx, torch.ones(3, 1), torch.ones(3, 1, dtype=torch.bool))
    assert calls == [(0, 2), (2, 1)]


def test_capacity_keep_priority() -> None:
    idx = torch.tensor([[0, 1], [0, 1], [0, 2], [1, 0]])
    keep = capacity_keep(idx, 3, capacity=2)
    # first choices are placed before any second choice: expert 0 takes tokens 0 and 1;
    # token 2's first choice is dropped
    assert keep[:, 0].tolist() == [True, True, False, True]
    assert keep[:, 1].tolist() == [True, False, True, False]
    for e in range(3):
        assert int(((idx == e) & keep).sum()) <= 2


def test_moe_topk_capacity_drops_tokens() -> None:
    torch.manual_seed(0)
    model = build_model("moe_topk", VEC, **SMALL, capacity_factor=0.25)
    out = model(make_batch(VEC))
    assert float(out.stats["dropped_frac"]) > 0
    assert torch.isfinite(out.logits).all()


def test_i2moe_weights_losses_and_cost() -> None:
    torch.manual_seed(0)
    model = build_model("i2moe", VEC, **SMALL)
    M = VEC.num_modalities
    assert model.forward_passes_per_step == (M + 2) * (M + 1)
    batch = make_batch(VEC, B=8)
    out = model.train()(batch)
    w = out.routing["weights"]
    assert w.shape == (8, M + 2) and (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(8))
    torch.testing.assert_close(out.logits, torch.einsum("be,bec->bc", w, out.routing["expert_logits"]))
    assert "interaction" in out.losses and float(out.losses["interaction"].detach()) > 0
    out_eval = model.eval()(batch)
    assert out_eval.losses == {}
    torch.testing.assert_close(out_eval.routing["weights"].sum(-1), torch.ones(8))


def test_i2moe_interaction_loss_definition() -> None:
    model = build_model("i2moe", VEC, **SMALL)
    M, B, C = 3, 5, 4
    outs = torch.randn(M + 2, M + 1, B, C)
    outs[M, 1:] = -outs[M, 0]  # synergy expert flips on every perturbation: cos = -1
    outs[M + 1, 1:] = 2 * outs[M + 1, 0]  # redundancy expert keeps its direction: 1 - cos = 0
    f = torch.nn.functional
    uniq = []
    for i in range(M):
        trip = [f.triplet_margin_loss(outs[i, 0], outs[i, 1 + j], outs[i, 1 + i]) for j in range(M) if j != i]
        uniq.append(torch.stack(trip).mean())
    expected = (torch.stack(uniq).sum() - 1.0 + 0.0) / (M + 2)
    torch.testing.assert_close(model.interaction_loss(outs), expected, atol=1e-5, rtol=1e-5)


def test_lrtf_matches_formula() -> None:
    torch.manual_seed(0)
    model = build_model("lrtf", VEC, **SMALL, rank=3, fusion_dim=5).eval()
    batch = make_batch(VEC, B=4)
    enc = model.encode(batch)
    fused = torch.zeros(4, 5)
    for r in range(3):
        prod = torch.ones(4, 5)
        for j, m in enumerate(VEC.modality_names):
            z1 = torch.cat([enc[m].pooled, torch.ones(4, 1)], -1)
            prod = prod * (z1 @ model.factors[j, r])
        fused = fused + model.rank_weights[0, r] * prod
    fused = fused + model.fusion_bias
    torch.testing.assert_close(model(batch).logits, model.head(fused), atol=1e-5, rtol=1e-4)


def test_gbm_summary_features_match_a_per_row_reference() -> None:
    """The trees' features (gbm and DAIN's tree agent): a vector as it is, a sequence's per-channel mean / min / max /
    last over its observed steps plus their count; NaN where a row observed no step or lacks the modality."""
    import numpy as np

    from dain.models.gbm import summary_features

    rng = np.random.default_rng(0)
    spec = DatasetSpec(
        "t",
        "binary",
        1,
        (
            ModalitySpec("v", "vector", (3,)),
            ModalitySpec("s", "sequence", (5, 2)),
            ModalitySpec("u", "sequence", (4, 1)),
        ),
    )
    N = 6
    inputs = {k: rng.normal(size=(N, *m.shape)).astype(np.float32) for k, m in zip("vsu", spec.modalities)}
    steps = rng.random((N, 5)) < 0.6
    steps[0] = [True, False, True, False, False]  # inner gap, trailing unobserved steps
    steps[1] = False  # present, but no step observed
    mask = np.ones((N, 3), bool)
    mask[2, 0] = mask[3, 1] = False  # missing modalities
    got = summary_features(spec, inputs, mask, {"s": steps})  # "u" has no step mask: every step observed
    assert got.shape == (N, 3 + 9 + 5) and got.dtype == np.float32

    def seq_reference(x: np.ndarray, st: np.ndarray) -> list[float]:
        obs = x[st]
        if not len(obs):
            return [np.nan] * (4 * x.shape[1]) + [0.0]
        return [*obs.mean(0), *obs.min(0), *obs.max(0), *obs[-1], float(len(obs))]

    for i in range(N):
        want = [*inputs["v"][i]] if mask[i, 0] else [np.nan] * 3
        s = seq_reference(inputs["s"][i], steps[i])
        want += s if mask[i, 1] else [np.nan] * 9
        want += seq_reference(inputs["u"][i], np.ones(4, bool))
        np.testing.assert_allclose(got[i], np.asarray(want, np.float32), rtol=1e-6, equal_nan=True)
    assert np.isnan(got[1, 3:11]).all() and got[1, 11] == 0.0  # no observed step: statistics NaN, count 0
