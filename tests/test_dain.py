"""Unit tests of the DAIN model (tiny tensors, CPU, a few seconds)."""

from __future__ import annotations

import math

import pytest
import torch

from dain.data.spec import DatasetSpec, ModalitySpec
from dain.flops import count_flops, flops_report
from dain.models import build_model
from dain.models.dain_parts.agents import default_roles, parse_role
from dain.models.dain_parts.communication import count_bits, quantise

LOSS_KEYS = {"spec", "sparse", "comm", "balance", "consensus"}

VEC = DatasetSpec(
    "tiny_vec",
    "multiclass",
    3,
    (ModalitySpec("a", "vector", (8,)), ModalitySpec("b", "vector", (6,)), ModalitySpec("c", "vector", (5,))),
)
SEQ = DatasetSpec("tiny_seq", "binary", 1, (ModalitySpec("s", "sequence", (6, 4)), ModalitySpec("v", "vector", (5,))))


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny tensors: intra-op threads only add contention (seconds per step on a loaded 2-core machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_batch(spec: DatasetSpec, B: int = 12, seed: int = 0, missing: bool = True) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs = {m.name: torch.randn(B, *m.shape, generator=g) for m in spec.modalities}
    mask = torch.ones(B, spec.num_modalities, dtype=torch.bool)
    if missing:
        mask[1, 0] = False
        mask[2, 1:] = False
        mask[3, :] = False  # a sample with no modality at all still gets a prediction
        mask[4::3, 0] = False
    for j, m in enumerate(spec.modalities):
        inputs[m.name][~mask[:, j]] = 0.0
    batch: dict = {"inputs": inputs, "mask": mask}
    if spec.task == "multiclass":
        batch["target"] = torch.randint(0, spec.num_outputs, (B,), generator=g)
    else:
        batch["target"] = torch.randint(0, 2, (B, spec.num_outputs), generator=g).float()
    seqs = [m for m in spec.modalities if m.kind == "sequence"]
    if seqs:
        steps = torch.ones(B, seqs[0].shape[0], dtype=torch.bool)
        steps[::2, -2:] = False
        batch["steps"] = {seqs[0].name: steps}
    return batch


def tiny(name: str = "dain", spec: DatasetSpec = VEC, **kw) -> torch.nn.Module:
    kw = {"hidden": 16, "dropout": 0.0, "heads": 2, **kw}
    torch.manual_seed(0)
    return build_model(name, spec, **kw)


def task_loss(spec: DatasetSpec, out, batch: dict) -> torch.Tensor:
    if spec.task == "multiclass":
        return torch.nn.functional.cross_entropy(out.logits, batch["target"])
    return torch.nn.functional.binary_cross_entropy_with_logits(out.logits, batch["target"])


def test_roles_default_and_explicit() -> None:
    assert default_roles(["a", "b", "c"]) == [
        "unique:a",
        "unique:b",
        "unique:c",
        "redundant:all",
        "synergy:all",
        "free",
        "free",
    ]
    assert default_roles(["a", "b", "c"], 3) == ["redundant:all", "synergy:all", "unique:a"]
    assert parse_role("synergy:a+c", ["a", "b", "c"]).modalities == (0, 2)
    with pytest.raises(ValueError):
        parse_role("unique:a+b", ["a", "b"])
    with pytest.raises(ValueError):
        parse_role("oracle:a", ["a", "b"])
    m = tiny(roles=["unique:a", "redundant:a+b", "synergy:all", "free"])
    assert m.roles == ["unique:a", "redundant:a+b", "synergy:all", "free"]
    assert m.num_agents == 4 and len(m.agent_names) == 4
    assert tiny().num_agents == 3 + 4


@pytest.mark.parametrize("spec", [VEC, SEQ], ids=["vector", "sequence"])
def test_forward_backward_every_parameter_gets_gradient(spec: DatasetSpec) -> None:
    m = tiny(spec=spec, active_agents=99)
    m.train()
    for seed in (0, 1):
        batch = make_batch(spec, seed=seed)
        out = m(batch)
        assert out.logits.shape == (12, spec.num_outputs)
        assert torch.isfinite(out.logits).all()
        loss = task_loss(spec, out, batch) + sum(out.losses.values())
        loss.backward()
    for n, p in m.named_parameters():
        assert p.grad is not None, n
        assert torch.isfinite(p.grad).all(), n
        assert p.grad.abs().sum() > 0, n


def test_losses_documented_keys_finite_nonnegative() -> None:
    m = tiny()
    m.train()
    out = m(make_batch(VEC))
    assert set(out.losses) == LOSS_KEYS
    for k, v in out.losses.items():
        assert v.dim() == 0 and torch.isfinite(v) and v >= 0, k
    assert out.losses["spec"] > 0
    m.eval()
    with torch.no_grad():
        out = m(make_batch(VEC))
    assert set(out.losses) == LOSS_KEYS and out.losses["spec"] == 0  # role tests run in training only
    assert {"active_agents", "comm_bits"} <= set(out.stats)
    B, K = 12, m.num_agents
    r = out.routing
    assert r["gates"].shape == (B, K) and r["active"].shape == (B, K) and r["active"].dtype == torch.bool
    assert r["consensus_weights"].shape == (B, K) and r["messages"].shape == (B, K, K) and r["bits"].shape == (B,)
    assert torch.allclose(r["consensus_weights"].sum(1), torch.ones(B))
    assert (r["consensus_weights"][~r["active"]] == 0).all()


def test_budget_respected_and_set_budget() -> None:
    m = tiny(active_agents=3).eval()
    batch = make_batch(VEC)
    with torch.no_grad():
        out = m(batch)
        avail = out.routing["available"].sum(1)
        n = out.routing["active"].sum(1)
        assert (n <= 3).all() and (n == torch.clamp(avail, max=3)).all()
        m.set_budget(1)
        assert (m(batch).routing["active"].sum(1) == 1).all()
        assert (m(batch, budget=2).routing["active"].sum(1) == torch.clamp(avail, max=2)).all()
        m.set_budget(None)
        assert m.budget == 3


def test_threshold_gating_varies_count() -> None:
    m = tiny(gating="threshold", threshold=0.6, active_agents=99).eval()
    with torch.no_grad():
        m.controller.net[-1].weight.mul_(40.0)  # spread the controller's confidence across samples
        out = m(make_batch(VEC, B=64, missing=False))
    n = out.routing["active"].sum(1)
    assert (n >= 1).all() and (n <= m.num_agents).all()
    assert len(torch.unique(n)) > 1
    m.set_budget(2)
    with torch.no_grad():
        assert (m(make_batch(VEC, B=64)).routing["active"].sum(1) <= 2).all()


@pytest.mark.parametrize("dispatch", ["gather", "dense"])
def test_missing_modalities_respected(dispatch: str) -> None:
    m = tiny(active_agents=99, dispatch=dispatch).eval()
    batch = make_batch(VEC)
    with torch.no_grad():
        out = m(batch)
    act, mask = out.routing["active"], batch["mask"]
    assert torch.isfinite(out.logits).all()
    for k, role in enumerate(m.role_specs):
        readable_present = mask[:, list(role.modalities)].any(1)
        has_any = mask.any(1)
        assert not (act[:, k] & ~readable_present & has_any).any(), m.roles[k]
    assert act.sum(1).min() >= 1
    assert act[3].any()  # the sample with no modality at all still runs agents


def test_bits_equal_messages_actually_sent() -> None:
    for bits in (8, 0, 3):
        m = tiny(msg_bits=bits, msg_dim=4, comm_rounds=3, active_agents=2).eval()
        batch = make_batch(VEC)
        batch["mask"][5] = torch.tensor([True, False, False])  # one available uniqueness agent + free agents
        m.set_budget(99)
        with torch.no_grad():
            out = m(batch)
        r = out.routing
        per_msg = 4 * (bits if bits > 0 else 32)
        senders = (r["messages"].sum(-1) > 0).sum(1)  # agents whose message somebody received (last round)
        assert torch.equal(r["bits"], 3 * per_msg * senders.float())
        n = r["active"].sum(1)
        assert torch.equal(senders, torch.where(n >= 2, n, torch.zeros_like(n)))
        assert torch.equal(count_bits(torch.ones(1, 1, dtype=torch.bool), 3, 4, bits), torch.zeros(1))
        assert float(out.stats["comm_bits"]) == pytest.approx(float(r["bits"].mean()))


@pytest.mark.parametrize("spec", [VEC, SEQ], ids=["vector", "sequence"])
@pytest.mark.parametrize("gating", ["topk", "threshold", "dense"])
def test_sparse_dispatch_equals_dense(spec: DatasetSpec, gating: str) -> None:
    outs = {}
    for dispatch in ("gather", "dense"):
        m = tiny(spec=spec, gating=gating, dispatch=dispatch, active_agents=2).eval()
        with torch.no_grad():
            outs[dispatch] = m(make_batch(spec, B=16))
    a, b = outs["gather"], outs["dense"]
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)
    for k in LOSS_KEYS:
        torch.testing.assert_close(a.losses[k], b.losses[k], atol=1e-5, rtol=1e-5)
    for k in a.routing:
        torch.testing.assert_close(a.routing[k], b.routing[k], atol=1e-5, rtol=1e-5)


def test_sparse_dispatch_equals_dense_training_losses() -> None:
    """Same numbers for the training-only specialisation loss and the gradients (dropout off, no router
    noise)."""
    res = {}
    for dispatch in ("gather", "dense"):
        m = tiny(dispatch=dispatch, router_noise=0.0, active_agents=3).train()
        batch = make_batch(VEC, B=16)
        out = m(batch)
        (task_loss(VEC, out, batch) + sum(out.losses.values())).backward()
        res[dispatch] = (out, {n: p.grad.clone() for n, p in m.named_parameters()})
    (a, ga), (b, gb) = res["gather"], res["dense"]
    for k in LOSS_KEYS:
        torch.testing.assert_close(a.losses[k], b.losses[k], atol=1e-5, rtol=1e-5)
    for n in ga:
        torch.testing.assert_close(ga[n], gb[n], atol=1e-5, rtol=1e-4)


def test_quantise_straight_through() -> None:
    x = torch.linspace(-1, 1, 11, requires_grad=True)
    q = quantise(x, 2)
    levels = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0])
    assert torch.isclose(q.detach().unsqueeze(1), levels).any(1).all()
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    assert quantise(x, 0) is x
    m = tiny(msg_bits=2, active_agents=99).train()
    out = m(make_batch(VEC))
    out.logits.sum().backward()
    assert m.comm[0].down.weight.grad is not None and m.comm[0].down.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["dain", "dain_nocomm", "dain_dense", "dain_nospec"])
def test_ablation_variants(name: str) -> None:
    m = tiny(name).train()
    batch = make_batch(VEC)
    out = m(batch)
    (task_loss(VEC, out, batch) + sum(out.losses.values())).backward()
    assert torch.isfinite(out.logits).all() and set(out.losses) == LOSS_KEYS
    if name == "dain_nocomm":
        assert len(m.comm) == 0 and (out.routing["bits"] == 0).all()
    if name == "dain_dense":
        assert torch.equal(out.routing["active"], out.routing["available"])
    if name == "dain_nospec":
        assert out.losses["spec"] == 0
    m.eval()
    if name != "dain_dense":
        with torch.no_grad():
            assert (m(batch).routing["active"].sum(1) <= m.budget).all()


def test_flops_drop_with_budget() -> None:
    m = tiny(active_agents=3)
    batch = make_batch(VEC, B=16, missing=False)
    f = {k: (m.set_budget(k), m.flops_per_sample(batch))[1] for k in (1, 2, 3)}
    m.set_budget(None)
    dense = m.flops_per_sample(batch, dense=True)
    assert 0 < f[1] < f[2] < f[3] < dense
    rep = flops_report(m, batch)
    assert rep["flops_per_sample"] == pytest.approx(f[3]) and rep["flops_per_sample_dense"] == pytest.approx(dense)
    assert m.training  # mode restored
    ef = build_model("early_fusion", VEC, hidden=16)
    assert count_flops(ef, batch) > 0 and not math.isnan(flops_report(ef, batch)["flops_per_sample_dense"])


def test_bad_config_rejected() -> None:
    with pytest.raises(ValueError):
        tiny(gating="softmax")
    with pytest.raises(ValueError):
        tiny(dispatch="grouped")
    with pytest.raises(ValueError):
        tiny(num_agents=3, roles=["free", "free"])
