"""Unit tests of the DAIN model and its objectives (tiny tensors, CPU, a few seconds)."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
import torch

from dain.data.spec import DatasetSpec, ModalitySpec
from dain.flops import count_flops, flops_report
from dain.models import build_model
from dain.models.dain_parts.agents import default_roles, parse_role
from dain.models.dain_parts.communication import count_bits, quantise
from dain.models.dain_parts.controller import confidence, schedule
from dain.models.dain_parts.dispatch import dispatch_slots
from dain.models.dain_parts.glimpse import summarise
from dain.models.dain_parts.objectives import (
    agents_loss,
    expected_cost,
    expected_kbits,
    per_sample_task_loss,
    route_loss,
    route_target,
)
from dain.training.metrics import task_loss as training_task_loss

LOSS_KEYS = {"agents", "route", "spec", "sparse", "comm"}

VEC = DatasetSpec(
    "tiny_vec",
    "multiclass",
    3,
    (ModalitySpec("a", "vector", (8,)), ModalitySpec("b", "vector", (6,)), ModalitySpec("c", "vector", (5,))),
)
SEQ = DatasetSpec("tiny_seq", "binary", 1, (ModalitySpec("s", "sequence", (6, 4)), ModalitySpec("v", "vector", (5,))))
IMG = DatasetSpec(
    "tiny_img", "multiclass", 2, (ModalitySpec("i", "image", (1, 8, 8)), ModalitySpec("v", "vector", (3,)))
)


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
    kw = {"hidden": 16, "dropout": 0.0, **kw}
    torch.manual_seed(0)
    return build_model(name, spec, **kw)


def task_loss(spec: DatasetSpec, out, batch: dict) -> torch.Tensor:
    if spec.task == "multiclass":
        return torch.nn.functional.cross_entropy(out.logits, batch["target"])
    return torch.nn.functional.binary_cross_entropy_with_logits(out.logits, batch["target"])


# ---------------------------------------------------------------------------------------------------- roles, config
def test_roles_default_and_explicit() -> None:
    assert default_roles(["a", "b", "c"]) == ["unique:a", "unique:b", "unique:c", "synergy:all", "redundant:all"]
    assert default_roles(["a", "b"]) == ["unique:a", "unique:b", "synergy:all"]
    assert default_roles(["a"]) == ["unique:a"]
    assert default_roles(["a", "b", "c"], max_agents=3) == ["unique:a", "synergy:all", "redundant:all"]
    assert parse_role("synergy:a+c", ["a", "b", "c"]).modalities == (0, 2)
    for bad in ("unique:a+b", "oracle:a", "free", "synergy:z"):
        with pytest.raises(ValueError):
            parse_role(bad, ["a", "b"])
    m = tiny(roles=["unique:a", "redundant:a+b", "synergy:all"])
    assert m.roles == ["shared", "unique:a", "redundant:a+b", "synergy:all"]
    assert m.num_agents == 4 and len(m.agent_names) == 4
    assert tiny().num_agents == 1 + 3 + 2


def test_defaults_depend_only_on_data_shape() -> None:
    """Same modality kinds/shapes and outputs -> the same architecture, whatever the names; sizes follow the shapes."""
    renamed = DatasetSpec(
        "other",
        "multiclass",
        3,
        (ModalitySpec("x", "vector", (8,)), ModalitySpec("y", "vector", (6,)), ModalitySpec("z", "vector", (5,))),
        class_names=("p", "q", "r"),
    )
    a, b = build_model("dain", VEC), build_model("dain", renamed)
    assert a.cfg == b.cfg
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    assert a.glimpse.dims == [8, 6, 5]  # a glimpse is never wider than the modality's summary
    wide = DatasetSpec("w", "multiclass", 3, (ModalitySpec("a", "vector", (500,)), ModalitySpec("b", "vector", (6,))))
    assert build_model("dain", wide).glimpse.dims == [32, 6]


def test_bad_config_rejected() -> None:
    with pytest.raises(ValueError):
        tiny(gating="softmax")
    with pytest.raises(ValueError):
        tiny(dispatch="grouped")
    with pytest.raises(ValueError):
        tiny(roles=["free"])


# ---------------------------------------------------------------------------------------------- forward / backward
@pytest.mark.parametrize("spec", [VEC, SEQ, IMG], ids=["vector", "sequence", "image"])
def test_forward_backward_every_parameter_gets_gradient(spec: DatasetSpec) -> None:
    m = tiny(spec=spec)
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


@pytest.mark.parametrize("budget", [None, 1])
def test_controller_gets_task_gradient(budget: int | None) -> None:
    """Only the task loss on the consensus (every auxiliary weight 0): the controller still learns, at the default
    budget and at k = 1 (the shared agent is always in the consensus, so the softmax has two members)."""
    zero = {k: 0.0 for k in ("lambda_agents", "lambda_route", "lambda_spec", "lambda_sparse", "lambda_comm")}
    m = tiny(**zero).train()
    if budget is not None:
        m.set_budget(budget)
    batch = make_batch(VEC, missing=False)
    out = m(batch)
    assert (out.routing["active"].sum(1) == 1 + m.budget).all()
    task_loss(VEC, out, batch).backward()
    g = m.controller.net[-1].weight.grad
    assert g is not None and g.abs().sum() > 0


def test_losses_documented_keys_finite_nonnegative() -> None:
    m = tiny()
    m.train()
    out = m(make_batch(VEC))
    assert set(out.losses) == LOSS_KEYS
    for k, v in out.losses.items():
        assert v.dim() == 0 and torch.isfinite(v) and v >= 0, k
        assert v > 0, k
    m.eval()
    with torch.no_grad():
        out = m(make_batch(VEC))
    assert out.losses == {}  # auxiliary losses are training terms: inference computes none
    assert {"active_agents", "comm_bits", "encoders_run"} <= set(out.stats)
    B, K = 12, m.num_agents
    r = out.routing
    assert r["gates"].shape == (B, K) and r["active"].shape == (B, K) and r["active"].dtype == torch.bool
    assert r["consensus_weights"].shape == (B, K) and r["messages"].shape == (B, K, K) and r["bits"].shape == (B,)
    assert torch.allclose(r["consensus_weights"].sum(1), torch.ones(B))
    assert (r["consensus_weights"][~r["active"]] == 0).all()
    assert r["active"][:, 0].all()  # the shared agent is always on


# ------------------------------------------------------------------------------------------------------ objectives
def test_per_sample_task_loss_matches_torch() -> None:
    logits = torch.randn(5, 3)
    y = torch.tensor([0, 2, 1, 1, 0])
    torch.testing.assert_close(
        per_sample_task_loss(logits, y, "multiclass").mean(), torch.nn.functional.cross_entropy(logits, y)
    )
    yb = torch.randint(0, 2, (5, 3)).float()
    torch.testing.assert_close(
        per_sample_task_loss(logits, yb, "multilabel").mean(),
        torch.nn.functional.binary_cross_entropy_with_logits(logits, yb),
    )
    # regression: the per-sample form of the training loss (smooth-L1), so auxiliary terms share its scale
    yr = 3.0 * torch.randn(5, 1)
    torch.testing.assert_close(
        per_sample_task_loss(logits[:, :1], yr, "regression").mean(),
        training_task_loss("regression", logits[:, :1], yr),
    )


def test_agents_loss_averages_available_pairs_only() -> None:
    per = torch.tensor([[1.0, 3.0, 100.0], [2.0, 4.0, 6.0]])
    avail = torch.tensor([[True, True, False], [True, True, True]])
    assert float(agents_loss(per, avail)) == pytest.approx((1 + 3 + 2 + 4 + 6) / 5)


def test_route_target_prefers_accurate_then_cheap_agents() -> None:
    per = torch.tensor([[0.5, 0.1, 0.1, 9.0]])
    avail = torch.tensor([[True, True, True, False]])
    cost = torch.tensor([0.0, 0.2, 0.8, 0.1])
    t = route_target(per, avail, cost, cost_weight=0.1, temperature=0.1)
    assert t[0, 3] == 0 and torch.isclose(t.sum(), torch.tensor(1.0))
    assert t[0, 1] > t[0, 2] > t[0, 0]  # same loss: the cheaper wins; both beat the inaccurate shared agent
    t_costly = route_target(per, avail, cost, cost_weight=10.0, temperature=0.1)
    assert t_costly.argmax() == 0  # when compute is dear, the free shared agent wins
    # route loss: minimised (down to the target's entropy) when the controller reproduces the target
    scores = torch.zeros(1, 4, requires_grad=True)
    masked = scores.masked_fill(~avail, float("-inf"))
    loss = route_loss(masked, t)
    loss.backward()
    assert torch.isfinite(scores.grad).all() and scores.grad[0, 3] == 0
    ent = -(t[t > 0] * t[t > 0].log()).sum()
    assert float(route_loss(t.clamp_min(1e-30).log().masked_fill(~avail, float("-inf")), t)) == pytest.approx(
        float(ent), abs=1e-5
    )
    assert float(loss.detach()) > float(ent)


def test_expected_cost_and_kbits() -> None:
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]], requires_grad=True)
    cost = torch.tensor([0.0, 0.2, 0.6])
    assert float(expected_cost(probs, cost).detach()) == pytest.approx((0.0 + 0.4) / 2)
    kb = expected_kbits(probs, rounds=2, msg_dim=8, msg_bits=8, budget=2)
    # sample 0: all mass on the shared agent -> 1 expected slot; sample 1: 1 + 2 slots
    assert float(kb.detach()) == pytest.approx(2 * 64 * (1 + 3) / 2 / 1000)
    kb.backward()
    assert probs.grad[0, 0] < 0  # more mass on the shared agent -> fewer bits
    assert float(expected_kbits(probs, rounds=0, msg_dim=8, msg_bits=8, budget=2).detach()) == 0
    # dense gating: every available agent messages whatever the router says; a constant, no gradient to the router
    probs.grad = None
    dense = expected_kbits(probs, rounds=2, msg_dim=8, msg_bits=8, budget=2, woken=torch.tensor([3, 2]))
    assert float(dense.detach()) == pytest.approx(2 * 64 * (3 + 2) / 2 / 1000)
    dense.backward()
    assert torch.equal(probs.grad, torch.zeros_like(probs))
    # a budget of 0 does not silence dense gating's messages (dense ignores the budget)
    dense0 = expected_kbits(probs, rounds=2, msg_dim=8, msg_bits=8, budget=0, woken=torch.tensor([3, 2]))
    assert float(dense0.detach()) == pytest.approx(float(dense.detach()))


def test_dense_gating_comm_term_counts_every_available_agent() -> None:
    m = tiny(gating="dense").train()
    out = m(make_batch(VEC, missing=False))
    n = m.num_agents  # every agent available on complete rows
    per_msg = m.cfg.msg_dim * (m.cfg.msg_bits if m.cfg.msg_bits > 0 else 32)
    expected = m.cfg.lambda_comm * len(m.comm) * per_msg * n / 1000
    assert float(out.losses["comm"].detach()) == pytest.approx(expected, rel=1e-6)


def test_spec_term_tests_redundancy_agent_on_single_modalities() -> None:
    """The spec loss equals the redundancy agent's task loss with all but one present modality replaced by the
    missing embedding (recomputed here with the same random choice)."""
    m = tiny(roles=["unique:a", "redundant:all"]).train()
    batch = make_batch(VEC, missing=False)
    pooled = m._pooled(batch, torch.ones_like(batch["mask"]), "dense")
    torch.manual_seed(5)
    spec_loss = m._spec_loss(batch, pooled, batch["target"])
    torch.manual_seed(5)
    pick = torch.multinomial(batch["mask"].float(), 1).squeeze(1)
    parts = [torch.where((pick == j).view(-1, 1), pooled[j], m.encode.missing[j].expand(12, -1)) for j in range(3)]
    agent = m.agents[1]
    ref = per_sample_task_loss(agent.head(agent(torch.cat(parts, -1))), batch["target"], "multiclass").mean()
    torch.testing.assert_close(spec_loss, ref)
    assert float(tiny(roles=["unique:a", "synergy:all"])._spec_loss(batch, pooled, batch["target"]).detach()) == 0


def test_confidence() -> None:
    assert torch.allclose(
        confidence(torch.tensor([[0.0, 0.0], [10.0, 0.0]]), "multiclass"), torch.tensor([0.5, 1.0]), atol=1e-4
    )
    assert torch.allclose(confidence(torch.tensor([[0.0], [-10.0]]), "binary"), torch.tensor([0.5, 1.0]), atol=1e-4)
    assert (confidence(torch.randn(3, 1), "regression") == 0).all()


# ------------------------------------------------------------------------------------------------------- scheduling
def test_schedule_shared_always_active_and_budget() -> None:
    scores = torch.tensor([[0.0, 3.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0]])
    avail = torch.tensor([[True, True, True, True], [True, False, True, True]])
    s = schedule(scores, avail, "topk", 2)
    assert s.active[:, 0].all()
    assert s.active.tolist() == [[True, True, False, True], [True, False, True, True]]
    s0 = schedule(scores, avail, "topk", 0)
    assert s0.slot_mask.shape == (2, 1) and s0.active[:, 1:].sum() == 0
    sd = schedule(scores, avail, "dense", 0)
    assert torch.equal(sd.active, avail)


def test_budget_respected_and_set_budget() -> None:
    m = tiny(active_agents=3).eval()
    batch = make_batch(VEC)
    with torch.no_grad():
        out = m(batch)
        avail = out.routing["available"][:, 1:].sum(1)
        n = out.routing["active"][:, 1:].sum(1)
        assert (n == torch.clamp(avail, max=3)).all()
        m.set_budget(1)
        assert (m(batch).routing["active"][:, 1:].sum(1) == torch.clamp(avail, max=1)).all()
        m.set_budget(0)
        assert (m(batch).routing["active"].sum(1) == 1).all()
        m.set_budget(None)
        assert m.budget == 3


def test_cascade_wakes_agents_only_where_unsure() -> None:
    m = tiny(active_agents=3).eval()
    batch = make_batch(VEC, B=64, missing=False)
    with torch.no_grad():
        m.shared.head[-1].weight.mul_(30.0)  # spread the shared agent's confidence across samples
        m.set_gating("threshold", 0.9)
        out = m(batch)
        n = out.routing["active"][:, 1:].sum(1)
        assert len(torch.unique(n)) > 1 and (n <= 3).all()
        m.set_gating(threshold=1.01)  # never confident enough: every sample wakes its full budget
        assert (m(batch).routing["active"][:, 1:].sum(1) == 3).all()
        m.set_gating(threshold=0.0)  # always confident: the shared agent answers alone, no encoder runs
        out0 = m(batch)
        assert (out0.routing["active"].sum(1) == 1).all() and not out0.routing["encoders_run"].any()
        m.set_gating("topk")
        m.set_budget(0)
        torch.testing.assert_close(out0.logits, m(batch).logits)


@pytest.mark.parametrize("dispatch", ["gather", "dense"])
def test_missing_modalities_respected(dispatch: str) -> None:
    m = tiny(active_agents=99, dispatch=dispatch).eval()
    batch = make_batch(VEC)
    with torch.no_grad():
        out = m(batch)
        act, mask = out.routing["active"], batch["mask"]
        assert torch.isfinite(out.logits).all()
        for k, role in enumerate(m.role_specs):
            assert not (act[:, k + 1] & ~mask[:, list(role.modalities)].any(1)).any(), m.roles[k + 1]
        assert not (out.routing["encoders_run"] & ~mask).any()
        # a missing modality's values are never read
        other = {**batch, "inputs": {k: v.clone() for k, v in batch["inputs"].items()}}
        for j, name in enumerate(m.spec.modality_names):
            other["inputs"][name][~mask[:, j]] = 1e3
        torch.testing.assert_close(m(other).logits, out.logits)


@pytest.mark.parametrize("name", ["dain", "late_fusion"])
def test_training_never_reads_missing_rows(name: str) -> None:
    """In training too, a missing row's values never reach an encoder: the image CNN's batch norm takes its
    statistics from the present rows only, and NaN in missing rows gives finite outputs and gradients."""
    batch = make_batch(IMG)
    mask = batch["mask"]
    nan = {**batch, "inputs": {k: v.clone() for k, v in batch["inputs"].items()}}
    for j, m_ in enumerate(IMG.modalities):
        nan["inputs"][m_.name][~mask[:, j]] = float("nan")
    outs = []
    for b in (batch, nan):
        m = tiny(name, IMG, dropout=0.0).train()
        out = m(b)
        loss = task_loss(IMG, out, b) + sum(out.losses.values())
        loss.backward()
        assert torch.isfinite(out.logits).all() and torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
        outs.append(out.logits.detach())
    torch.testing.assert_close(outs[0], outs[1])
    # the batch-norm statistics are those of a batch of the image's present rows alone
    ref = tiny(name, IMG, dropout=0.0).train()
    rows = mask[:, 0]
    ref(
        {
            "inputs": {k: v[rows] for k, v in batch["inputs"].items()},
            "mask": mask[rows],
            "target": batch["target"][rows],
        }
    )
    bn, ref_bn = (
        next(mod for mod in x.encode.encoders["i"].modules() if isinstance(mod, torch.nn.BatchNorm2d)) for x in (m, ref)
    )
    torch.testing.assert_close(bn.running_mean, ref_bn.running_mean)
    torch.testing.assert_close(bn.running_var, ref_bn.running_var)


def test_encoder_runs_only_on_rows_that_need_it() -> None:
    m = tiny(roles=["unique:a", "unique:b", "unique:c"], active_agents=1).eval()
    seen: dict[str, int] = {}
    for name, enc in m.encode.encoders.items():
        enc.register_forward_pre_hook(lambda mod, args, name=name: seen.__setitem__(name, args[0].shape[0]))
    batch = make_batch(VEC, B=32)
    with torch.no_grad():
        out = m(batch)
    act, mask = out.routing["active"][:, 1:], batch["mask"]
    for j, name in enumerate(m.spec.modality_names):
        assert seen.get(name, 0) == int((act[:, j] & mask[:, j]).sum()), name
    assert torch.equal(out.routing["encoders_run"], act & mask)


def test_cascade_runs_each_encoder_once_per_slot_on_the_rows_that_need_it() -> None:
    """Agents that share a modality and wake in the same slot share one encoder call; a row is encoded at most once
    per modality, and exactly where a woken agent reads it."""
    m = tiny(active_agents=3).eval()  # unique:a, unique:b, unique:c, synergy:all, redundant:all
    calls: dict[str, list[int]] = {}
    for name, enc in m.encode.encoders.items():
        enc.register_forward_pre_hook(lambda mod, args, name=name: calls.setdefault(name, []).append(args[0].shape[0]))
    batch = make_batch(VEC, B=64)
    with torch.no_grad():
        m.shared.head[-1].weight.mul_(30.0)  # some samples stop early, others wake up to 3 agents
        m.set_gating("threshold", 0.9)
        out = m(batch)
    act, mask = out.routing["active"][:, 1:], batch["mask"]
    woke = act.sum(1)
    assert len(torch.unique(woke)) > 1
    reads = (act.to(torch.float32) @ m.read_matrix > 0) & mask  # [B, M]: a woken agent reads the modality
    assert torch.equal(out.routing["encoders_run"], reads)
    slots = int(woke.max())
    for j, name in enumerate(m.spec.modality_names):
        assert len(calls.get(name, [])) <= slots, name  # at most one call per slot, whatever the agents woken
        assert sum(calls.get(name, [])) == int(reads[:, j].sum()), name  # every needed row once, no other row
    # one slot where every sample wakes its best agent (several agents read each modality): one call per encoder
    calls.clear()
    m.set_budget(1)
    m.set_gating(threshold=1.01)
    with torch.no_grad():
        out = m(batch)
    assert len(torch.unique(out.routing["active"][:, 1:].to(torch.int64).argmax(1))) >= 3
    assert all(len(c) == 1 for c in calls.values()) and len(calls) == m.spec.num_modalities


def test_bits_equal_messages_actually_sent() -> None:
    for bits in (8, 0, 3):
        m = tiny(msg_bits=bits, msg_dim=4, comm_rounds=3, active_agents=2).eval()
        batch = make_batch(VEC)
        m.set_budget(5)
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


@pytest.mark.parametrize("spec", [VEC, SEQ, IMG], ids=["vector", "sequence", "image"])
@pytest.mark.parametrize("gating", ["topk", "dense"])
@pytest.mark.parametrize("missing", [True, False], ids=["missing", "complete"])
def test_sparse_dispatch_equals_dense(spec: DatasetSpec, gating: str, missing: bool) -> None:
    outs = {}
    for dispatch in ("gather", "dense"):
        m = tiny(spec=spec, gating=gating, dispatch=dispatch, active_agents=1).eval()
        with torch.no_grad():
            outs[dispatch] = m(make_batch(spec, B=16, missing=missing))
    a, b = outs["gather"], outs["dense"]
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)
    assert a.losses == b.losses == {}
    for k in a.routing:
        torch.testing.assert_close(a.routing[k], b.routing[k], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["gather", "dense"])
def test_dispatch_slots_is_the_weighted_sum_of_each_slots_agent(mode: str) -> None:
    """out[b] = sum_s w[b, s] * f_{agent(b, s)}(x[b, s]) over the active slots, whatever the backend."""
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(7, 5, generator=g)
    avail = torch.rand(7, 5, generator=g) > 0.3
    avail[:, 0] = True
    sched = schedule(scores, avail, "topk", 3)
    B, S = sched.slot_agent.shape
    x = torch.randn(B, S, 4, generator=g)
    w = torch.rand(B, S, generator=g) * sched.slot_mask
    fns = [torch.nn.Linear(4, 2) for _ in range(5)]
    with torch.no_grad():
        out = dispatch_slots(lambda k, v: fns[k](v), x, w, sched, mode, 2)
        ref = torch.zeros(B, 2)
        for b in range(B):
            for s in range(S):
                if sched.slot_mask[b, s]:
                    ref[b] += w[b, s] * fns[int(sched.slot_agent[b, s])](x[b, s])
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)


def test_schedule_is_compact_with_and_without_unavailable_agents() -> None:
    """Active slots come first and the slot tensor is as wide as the widest sample, also when every agent is
    available (the fast path) and when some are not."""
    scores = torch.tensor([[0.0, 3.0, 1.0, 2.0], [0.0, 1.0, 2.0, 3.0]])
    full = schedule(scores, torch.ones(2, 4, dtype=torch.bool), "topk", 2)
    assert full.slot_agent.tolist() == [[0, 1, 3], [0, 3, 2]] and full.slot_mask.all()
    part = schedule(scores, torch.tensor([[True, True, False, False], [True, False, False, False]]), "topk", 2)
    assert part.slot_agent.tolist() == [[0, 1], [0, 0]]
    assert part.slot_mask.tolist() == [[True, True], [True, False]]


def test_cascade_equals_topk_at_its_wake_counts() -> None:
    """The cascade's answer for a sample that woke n agents equals the topk forward at budget n."""
    m = tiny(active_agents=3).eval()
    batch = make_batch(VEC, B=40, missing=False)
    with torch.no_grad():
        m.shared.head[-1].weight.mul_(30.0)
        m.set_gating("threshold", 0.9)
        out = m(batch)
        n = out.routing["active"][:, 1:].sum(1)
        m.set_gating("topk")
        for k in torch.unique(n).tolist():
            ref = m(batch, budget=k).logits
            torch.testing.assert_close(out.logits[n == k], ref[n == k], atol=1e-5, rtol=1e-5)


def test_quantise_straight_through() -> None:
    x = torch.linspace(-1, 1, 11, requires_grad=True)
    q = quantise(x, 2)
    levels = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0])
    assert torch.isclose(q.detach().unsqueeze(1), levels).any(1).all()
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    assert quantise(x, 0) is x
    m = tiny(msg_bits=2).train()
    out = m(make_batch(VEC))
    out.logits.sum().backward()
    assert m.comm[0].down.weight.grad is not None and m.comm[0].down.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["dain", "dain_nocomm", "dain_dense", "dain_nospec", "dain_noroute", "dain_nodeep"])
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
    if name == "dain_noroute":
        assert out.losses["route"] == 0
    if name == "dain_nodeep":
        assert out.losses["agents"] == 0
    m.eval()
    if name != "dain_dense":
        with torch.no_grad():
            assert (m(batch).routing["active"][:, 1:].sum(1) <= m.budget).all()


# ------------------------------------------------------------------------------------------------------------ FLOPs
def test_flops_hand_checked_tiny_case() -> None:
    """Every component of the path that runs, counted by hand (matmuls only; norms/activations count 0)."""
    spec = DatasetSpec("hand", "multiclass", 2, (ModalitySpec("a", "vector", (4,)), ModalitySpec("b", "vector", (3,))))
    m = build_model(
        "dain",
        spec,
        hidden=8,
        agent_width=4,
        glimpse_dim=2,
        comm_rounds=0,
        active_agents=1,
        dropout=0.0,
        roles=["unique:a", "unique:b"],
    )
    batch = make_batch(spec, B=10, missing=False)
    glimpse = 2 * 4 * 2 + 2 * 3 * 2
    ctx = 2 + 2 + 2
    shared = 2 * ctx * 4 + 2 * 4 * 2  # trunk + head
    controller = 2 * ctx * 4 + 2 * 4 * 3
    masks = 2 * 2 * 2 + 2 * 2 * 2  # availability and needed-encoder products (mask @ read matrix)
    enc = {0: 2 * 4 * 8 + 2 * 8 * 8, 1: 2 * 3 * 8 + 2 * 8 * 8}
    agent = 2 * 8 * 4 + 2 * 4 * 2
    m.eval()
    with torch.no_grad():
        act = m(batch).routing["active"][:, 1:]
    per_row = glimpse + shared + controller + masks
    expected = (10 * per_row + sum(int(act[:, j].sum()) * (enc[j] + agent) for j in (0, 1))) / 10
    assert m.flops_per_sample(batch) == pytest.approx(expected)
    dense = per_row + enc[0] + enc[1] + 2 * agent
    assert m.flops_per_sample(batch, dense=True) == pytest.approx(dense)


def test_flops_drop_with_budget_and_cascade() -> None:
    m = tiny(active_agents=3)
    batch = make_batch(VEC, B=16, missing=False)
    f = {k: (m.set_budget(k), m.flops_per_sample(batch))[1] for k in (0, 1, 2, 3)}
    m.set_budget(None)
    dense = m.flops_per_sample(batch, dense=True)
    assert 0 < f[0] < f[1] < f[2] < f[3] < dense
    rep = flops_report(m, batch)
    assert rep["flops_per_sample"] == pytest.approx(f[3]) and rep["flops_per_sample_dense"] == pytest.approx(dense)
    assert m.training  # mode restored
    m.set_gating("threshold", 0.0)  # the cascade stops at the shared agent (it skips the needed-encoder product too)
    assert f[0] - 2 * 5 * 3 == pytest.approx(m.flops_per_sample(batch))
    ef = build_model("early_fusion", VEC, hidden=16)
    assert count_flops(ef, batch) > 0 and not math.isnan(flops_report(ef, batch)["flops_per_sample_dense"])


def test_glimpse_summaries() -> None:
    x = torch.arange(12.0).view(1, 4, 3)
    steps = torch.tensor([[True, True, True, False]])
    s = summarise(SEQ.modalities[0], x, steps)
    torch.testing.assert_close(s[0, :3], x[0, :3].mean(0))
    torch.testing.assert_close(s[0, 6:], x[0, 2])  # last observed step
    img = torch.ones(2, 1, 8, 8)
    assert summarise(IMG.modalities[0], img).shape == (2, 4)
    # a sequence with no observed step has no last value (not step 0's)
    none = summarise(SEQ.modalities[0], x, torch.zeros(1, 4, dtype=torch.bool))
    assert torch.equal(none, torch.zeros_like(none))


# ------------------------------------------------------------------------------------------------------ tree agent
def test_tree_agent_out_of_fold_on_train_rows_and_saved_with_the_model() -> None:
    pytest.importorskip("lightgbm")
    from dain.data.spec import make_batch as data_batch
    from tests.conftest import tiny_dataset

    data = tiny_dataset(n=240)
    m = build_model("dain", data.spec, hidden=16, tree_agent="always")
    assert m.roles[-1] == "tree:summary" and not m.tree.fitted
    with torch.no_grad():  # unfitted: the tree agent is never available
        assert not m.eval()(data_batch(data, data.splits["test"][:8])).routing["available"][:, -1].any()
    lines: list[str] = []
    unfitted_cost = m.agent_cost.clone()
    m.prepare(data, log=lines.append)
    assert m.tree.fitted
    # the router's price of the fitted tree agent: its comparisons at TREE_COMPARISON_COST each, on top of its small
    # neural trunk, relative to every encoder and neural agent (the neural agents' prices are unchanged)
    from dain.models.dain import TREE_COMPARISON_COST

    assert torch.equal(m.agent_cost[:-1], unfitted_cost[:-1])
    extra = float(m.agent_cost[-1] - unfitted_cost[-1])
    per_flop = float(unfitted_cost[-1]) / (2.0 * sum(p.numel() for p in m.agents[-1].parameters()))  # 1 / total
    assert extra == pytest.approx(TREE_COMPARISON_COST * m.tree.flops_per_sample() * per_flop, rel=1e-4)
    # the cross-fit reports its start, each fold and its end (minutes on a large train split)
    assert len(lines) == m.tree.folds + 2 and "fold 1/5" in lines[1] and "fitted in" in lines[-1]
    tr = data.splits["train"][:32]
    batch = data_batch(data, tr)
    m.train()
    oof = m.tree(batch)
    m.eval()
    full = m.tree(batch)
    assert oof.shape == full.shape == (32, 3) and not torch.allclose(oof, full)  # rows scored by unseen boosters
    for i, r in enumerate(tr):
        torch.testing.assert_close(oof[i], torch.as_tensor(m.tree._oof[int(r)], dtype=torch.float32))
    out = m.train()(batch)
    (torch.nn.functional.cross_entropy(out.logits, batch["target"]) + sum(out.losses.values())).backward()
    tree_agent = m.agents[-1]
    assert isinstance(tree_agent.trunk[0], torch.nn.Identity)  # its input is logits: their scale is kept
    assert tree_agent.trunk[1].weight.grad.abs().sum() > 0
    # FLOPs: the trees' comparisons are added for the rows whose tree agent runs
    m.eval()
    test = data_batch(data, data.splits["test"])
    m.set_budget(m.num_agents - 1)
    with_trees = m.flops_per_sample(test)
    assert m.tree.flops_per_sample() > 0
    assert with_trees == pytest.approx(
        count_flops(m, test, lambda b: m._run(b, None, "topk", "gather")) + m.tree.flops_per_sample()
    )
    # the boosters run only on the rows routed to the tree agent
    seen: list[int] = []
    real = m.tree.forward
    m.tree.forward = lambda b: (seen.append(b["mask"].shape[0]), real(b))[1]
    for k in (1, m.num_agents - 1):  # some rows, then every row (full budget)
        m.set_budget(k)
        seen.clear()
        with torch.no_grad():
            active = m(test).routing["active"][:, -1]
        assert sum(seen) == int(active.sum())
    assert sum(seen) == len(data.splits["test"])
    with torch.no_grad():
        seen.clear()
        m.set_budget(0)
        m(test)
    assert seen == []  # budget 0: the shared agent alone, no booster runs
    del m.tree.forward
    m.set_budget(m.num_agents - 1)
    # the boosters travel in the state dict
    again = build_model("dain", data.spec, hidden=16, tree_agent="always")
    again.load_state_dict(m.state_dict())
    again.set_budget(m.num_agents - 1)
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(test).logits, m(test).logits)
    # ... and so do the router's price of the fitted trees and the out-of-fold logits a loaded model trains on
    torch.testing.assert_close(again.agent_cost, m.agent_cost)
    torch.testing.assert_close(again.train().tree(batch), oof)
    # dense dispatch scores every row with the boosters: their FLOPs are counted on every row
    m.eval().set_budget(1)
    m.cfg.dispatch = "dense"
    try:
        assert m.flops_per_sample(test) == pytest.approx(
            count_flops(m, test, lambda b: m._run(b, None, "topk", "dense")) + m.tree.flops_per_sample()
        )
    finally:
        m.cfg.dispatch = "gather"
    import pickle

    assert isinstance(pickle.loads(pickle.dumps(again)), type(again))  # torch.save(model) / ddp_spawn need it


def test_tree_agent_screens_wide_features_on_each_folds_own_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ``screen_above_bins`` bins over the summary columns each fold's booster is fitted on the ``SCREEN_KEEP``
    columns its own screen ranks highest, the screen sees only that fold's fit rows (so the held-out rows stay
    out-of-fold), and the columns travel with the saved boosters; below it no booster is screened."""
    pytest.importorskip("lightgbm")
    import numpy as np

    from dain.data.spec import make_batch as data_batch
    from dain.models.dain_parts import tree_agent
    from tests.conftest import tiny_dataset

    data = tiny_dataset(n=240)
    test = data_batch(data, data.splits["test"])
    plain = build_model("dain", data.spec, hidden=16, tree_agent="always")
    plain.prepare(data)
    plain.tree._get_boosters()
    width = plain.tree.arrays(data)[0].shape[1]
    for cols in plain.tree._columns:  # few bins: every booster reads every column
        assert np.array_equal(cols, np.arange(width))

    monkeypatch.setattr(tree_agent, "SCREEN_KEEP", 3)
    m = build_model("dain", data.spec, hidden=16, tree_agent="always")
    m.tree.screen_above_bins = 2
    screened, fitted = [], []
    real_screen, real_train = m.tree.screen, m.tree.train_booster
    m.tree.screen = lambda p, x, y, rows: (screened.append(set(rows.tolist())), real_screen(p, x, y, rows))[1]
    m.tree.train_booster = lambda p, x, y, rows, val, screen: (
        fitted.append(set(rows.tolist()) if screen else None),
        real_train(p, x, y, rows, val, screen=screen),
    )[1]
    lines: list[str] = []
    m.prepare(data, log=lines.append)
    assert "each fold fits on the 3 its own screening booster ranks highest" in lines[1]
    assert len(screened) == m.tree.folds and screened == fitted  # one screen per fold, on that fold's fit rows
    train = set(np.asarray(data.splits["train"]).tolist())
    held = [train - rows for rows in screened]  # each fold's out-of-fold rows: never seen by its screen
    assert set().union(*held) == train and sum(len(h) for h in held) == len(train)
    m.tree._get_boosters()
    for cols in m.tree._columns:
        assert 1 <= len(cols) <= 3 and np.all(np.diff(cols) > 0) and cols.max() < width
    logits = m.eval().tree(test)  # each booster reads its own columns (the full width would not fit them)
    assert logits.shape == (len(data.splits["test"]), 3)
    assert (logits.argmax(1) == test["target"]).float().mean() > 0.5  # the kept columns carry the classes
    again = build_model("dain", data.spec, hidden=16, tree_agent="always")
    again.load_state_dict(m.state_dict())
    torch.testing.assert_close(again.eval().tree(test), logits)
    for a, b in zip(again.tree._columns, m.tree._columns, strict=True):
        assert np.array_equal(a, b)


def test_boosters_score_with_the_process_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tree agent and ``gbm`` score with ``torch.get_num_threads()`` threads, not LightGBM's OpenMP default
    (every core where torch does not share LightGBM's OpenMP runtime)."""
    lgb = pytest.importorskip("lightgbm")
    from dain.data.spec import make_batch as data_batch
    from tests.conftest import tiny_dataset

    data = tiny_dataset(n=240)
    m = build_model("dain", data.spec, hidden=16, tree_agent="always")
    m.prepare(data)
    gbm = build_model("gbm", data.spec)
    gbm.fit_direct(data, seed=0)
    test = data_batch(data, data.splits["test"])
    seen: list[object] = []
    real = lgb.Booster.predict
    monkeypatch.setattr(
        lgb.Booster, "predict", lambda self, x, **kw: (seen.append(kw.get("num_threads")), real(self, x, **kw))[1]
    )
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        m.eval().tree(test)
        gbm(test)
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}


def test_tree_agent_booster_on_the_first_columns_reads_only_those() -> None:
    """A screened booster that kept the first columns (0..k-1) reads those k, not every column (its names are the
    record of what it read)."""
    lgb = pytest.importorskip("lightgbm")
    import numpy as np

    from dain.models.dain_parts.tree_agent import columns_of, select_columns

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] > 0).astype(float)
    params = {"objective": "binary", "verbose": -1, "min_data_in_leaf": 5}
    prefix = lgb.train(params, lgb.Dataset(x[:, :2], y, feature_name=["Column_0", "Column_1"]), num_boost_round=3)
    cols = columns_of(prefix)
    assert np.array_equal(cols, [0, 1]) and select_columns(x, cols).shape == (200, 2)
    prefix.predict(select_columns(x, cols))  # the full 5 columns would be refused by LightGBM
    full = lgb.train(params, lgb.Dataset(x, y), num_boost_round=3)  # unscreened: LightGBM's own names
    assert select_columns(x, columns_of(full)) is x


def test_tree_agent_multilabel_one_booster_per_label() -> None:
    """Multilabel: each fold fits one binary booster per label; the agent answers one logit per label (out-of-fold on
    training rows), each label's logits follow its own label, and the boosters travel in the state dict."""
    pytest.importorskip("lightgbm")
    import numpy as np

    from dain.data.spec import make_batch as data_batch
    from tests.conftest import tiny_multilabel_dataset

    data = tiny_multilabel_dataset(n=240)
    spec = data.spec
    m = build_model("dain", spec, hidden=16, tree_agent="always")
    m.prepare(data)
    assert m.tree.labels == 3 and len(m.tree._get_boosters()) == 3 * m.tree.folds
    tr = np.asarray(data.splits["train"][:32])
    batch = data_batch(data, tr)
    oof = m.train().tree(batch)
    assert oof.shape == (32, 3)
    for i, r in enumerate(tr):
        torch.testing.assert_close(oof[i], torch.as_tensor(m.tree._oof[int(r)], dtype=torch.float32))
    test = data_batch(data, data.splits["test"])
    logits = m.eval().tree(test)
    assert logits.shape == (len(data.splits["test"]), 3)
    for label in range(3):  # every label's column ranks its own label's positives first
        t = test["target"][:, label].bool()
        assert logits[t, label].mean() > logits[~t, label].mean()
    out = m.train()(batch)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, batch["target"].float())
    (loss + sum(out.losses.values())).backward()
    assert m.agents[-1].trunk[1].weight.grad.abs().sum() > 0
    again = build_model("dain", spec, hidden=16, tree_agent="always")
    again.load_state_dict(m.state_dict())
    torch.testing.assert_close(again.eval().tree(test), logits)


def test_tree_agent_regression_predicts_the_target_and_blends() -> None:
    """Regression: the boosters predict the target's value (out-of-fold on training rows), DAIN trains on top of them
    and calibration may blend their answer in on MAE."""
    pytest.importorskip("lightgbm")
    import numpy as np

    from dain.data.spec import make_batch as data_batch
    from dain.training.adaptive import calibrate_inference
    from tests.conftest import retarget, tiny_dataset

    d = tiny_dataset(n=600)
    data = retarget(d, "regression", (d.inputs[d.spec.modalities[0].name][:, 0] * 3.0 + 10.0).astype(np.float32))
    spec = data.spec
    m = build_model("dain", spec, hidden=16, tree_agent="always")
    m.prepare(data)
    test = data_batch(data, data.splits["test"])
    trees = m.eval().tree(test)
    assert trees.shape == (len(data.splits["test"]), 1)
    assert float((trees[:, 0] - test["target"]).abs().mean()) < float((test["target"] - 10.0).abs().mean())
    batch = data_batch(data, data.splits["train"][:32])
    out = m.train()(batch)
    (torch.nn.functional.smooth_l1_loss(out.logits.view(-1), batch["target"]) + sum(out.losses.values())).backward()
    assert m.agents[-1].trunk[1].weight.grad.abs().sum() > 0
    rec = calibrate_inference(m, data, "mae", 1.0, (0.9,))
    assert [t["tree_weight"] for t in rec["tree_weights"]] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert m.tree_weight == (rec["chosen"] or {}).get("tree_weight", 0.0)


def test_tree_weight_one_runs_no_encoder_for_the_consensus(monkeypatch: pytest.MonkeyPatch) -> None:
    """When calibration gives the trees the whole answer (w = 1), the consensus is weighted 0: the chosen setting is
    budget 0 (the shared agent alone beside the trees), which answers exactly as the trained budget with the same
    blend, and runs no encoder, so its FLOPs are lower."""
    pytest.importorskip("lightgbm")
    from dain.data.spec import make_batch as data_batch
    from dain.training import adaptive
    from dain.training.adaptive import calibrate_inference
    from tests.conftest import tiny_dataset

    data = tiny_dataset(n=1200)  # 840 training rows; 180 validation rows pass the size check at tolerance 0.01
    m = build_model("dain", data.spec, hidden=16, tree_agent="always")
    m.prepare(data)
    test = data_batch(data, data.splits["test"])
    m.eval().set_calibration(tree_weight=1.0)
    with torch.no_grad():
        trained_budget = m(test)
    full_flops = m.flops_per_sample(test)
    monkeypatch.setattr(adaptive, "_tree_weight", lambda *args: (1.0, []))
    rec = calibrate_inference(m, data, "acc", 0.01, (0.9,))
    assert {k: rec["chosen"][k] for k in ("budget", "threshold", "tree_weight")} == {
        "budget": 0,
        "threshold": None,
        "tree_weight": 1.0,
    }
    assert m.budget == 0 and m.tree_weight == 1.0
    with torch.no_grad():
        out = m(test)
    torch.testing.assert_close(out.logits, trained_budget.logits)  # the same answers: the trees'
    assert not out.routing["encoders_run"].any()  # no encoder ran
    assert m.flops_per_sample(test) < full_flops


def test_small_validation_still_chooses_the_tree_blend() -> None:
    """Below the validation size that resolves the tolerance, no cheaper setting (budget, cascade, fold count) is
    chosen, but the tree blend is still tried: it must beat the consensus alone on validation within the bound."""
    pytest.importorskip("lightgbm")
    from dain.training.adaptive import calibrate_inference, min_val_rows
    from tests.conftest import tiny_dataset

    data = tiny_dataset(n=600)  # 90 validation rows
    assert len(data.splits["val"]) < min_val_rows(0.003)
    m = build_model("dain", data.spec, hidden=16, tree_agent="always")
    m.prepare(data)  # the boosters are fitted; the network is untrained, so the trees answer far better
    rec = calibrate_inference(m, data, "acc", 0.003)
    assert "skipped" in rec and rec["settings"] == [] and "tree_folds" not in rec
    assert rec["chosen"]["tree_weight"] > 0 and m.tree_weight == rec["chosen"]["tree_weight"]
    assert all(t["better"] for t in rec["tree_weights"] if t["tree_weight"] == rec["chosen"]["tree_weight"])


def test_trees_on_several_regression_targets_one_booster_each() -> None:
    """Regression with several targets: the tree agent and gbm fit one booster per target (per fold), and each
    column of their answer follows its own target."""
    pytest.importorskip("lightgbm")
    import numpy as np

    from dain.data.spec import make_batch as data_batch
    from tests.conftest import retarget, tiny_dataset

    d = tiny_dataset(n=400)
    a = d.inputs[d.spec.modalities[0].name]
    data = retarget(d, "regression", np.stack([a[:, 0] * 3.0 + 10.0, -2.0 * a[:, 1]], 1).astype(np.float32))
    test = data_batch(data, data.splits["test"])
    m = build_model("dain", data.spec, hidden=16, tree_agent="always")
    m.prepare(data)
    assert m.tree.labels == 2 and len(m.tree._get_boosters()) == 2 * m.tree.folds
    gbm = build_model("gbm", data.spec)
    gbm.fit_direct(data, seed=0)
    for answer in (m.eval().tree(test), gbm(test).logits):
        assert answer.shape == (len(data.splits["test"]), 2)
        for j in range(2):
            assert np.corrcoef(answer[:, j].detach().numpy(), test["target"][:, j].numpy())[0, 1] > 0.8
    batch = data_batch(data, data.splits["train"][:32])
    out = m.train()(batch)
    assert out.logits.shape == (32, 2)


def test_tree_agent_auto_is_decided_from_the_task_and_train_rows_and_saved_resolved() -> None:
    """``tree_agent=auto``: a tree agent for a task with enough training rows (LightGBM installed), none for small
    splits or more than ``TREE_AUTO_MAX_OUTPUTS`` classes or labels; the harness resolves it before building and saves
    the resolved value."""
    pytest.importorskip("lightgbm")
    import dataclasses

    import numpy as np

    from dain.config import RunConfig
    from dain.models.dain import DAIN, TREE_AUTO_MAX_OUTPUTS
    from dain.training.runner import build_from_config
    from tests.conftest import retarget, tiny_dataset, tiny_multilabel_dataset

    def binary(n: int):  # noqa: ANN202
        d = tiny_dataset(n=n)
        return retarget(d, "binary", (d.target > 0).astype(np.float32))

    default = DAIN.Config()
    assert default.tree_agent == "auto" and default.tree_min_rows == 64
    assert DAIN.resolve_config(default, binary(80)).tree_agent == "never"  # 56 training rows
    assert DAIN.resolve_config(default, binary(100)).tree_agent == "always"  # 70 training rows
    cfg = dataclasses.replace(default, tree_min_rows=200)
    assert DAIN.resolve_config(cfg, binary(240)).tree_agent == "never"  # 168 training rows < tree_min_rows
    small_min = dataclasses.replace(cfg, tree_min_rows=100)
    assert DAIN.resolve_config(small_min, binary(240)).tree_agent == "always"
    d = tiny_dataset(n=240)
    assert DAIN.resolve_config(small_min, d).tree_agent == "always"  # multiclass, 3 classes
    assert DAIN.resolve_config(cfg, d).tree_agent == "never"  # multiclass, too few rows

    def classes(k: int):  # noqa: ANN202
        return dataclasses.replace(d, spec=dataclasses.replace(d.spec, num_outputs=k, class_names=()))

    assert DAIN.resolve_config(small_min, classes(TREE_AUTO_MAX_OUTPUTS)).tree_agent == "always"  # e.g. 10 digits
    assert DAIN.resolve_config(small_min, classes(TREE_AUTO_MAX_OUTPUTS + 1)).tree_agent == "never"  # a tree per class
    reg = retarget(d, "regression", d.target.astype(np.float32))
    assert DAIN.resolve_config(small_min, reg).tree_agent == "always"  # regression, enough rows
    assert DAIN.resolve_config(cfg, reg).tree_agent == "never"  # regression, too few rows
    multi = tiny_multilabel_dataset(240)
    assert DAIN.resolve_config(small_min, multi).tree_agent == "always"  # multilabel, 3 labels
    reps = TREE_AUTO_MAX_OUTPUTS // 3 + 1  # more labels than the cap: a booster per label and fold
    many = retarget(multi, "multilabel", np.tile(multi.target, reps))
    assert DAIN.resolve_config(small_min, many).tree_agent == "never"
    assert DAIN.resolve_config(dataclasses.replace(cfg, tree_agent="never"), binary(240)).tree_agent == "never"
    assert build_model("dain", binary(240).spec).tree is None  # built directly, auto has no tree agent
    run = RunConfig.from_dict({"model": {"name": "dain", "params": {"hidden": 16, "tree_min_rows": 100}}})
    data, model = build_from_config(run, binary(240))
    assert model.tree is not None and run.model.params["tree_agent"] == "always"
    again = RunConfig.from_dict(run.to_dict())
    assert build_from_config(again, data)[1].roles == model.roles  # the saved config rebuilds the same agents
    with pytest.raises(ValueError):
        build_model("dain", data.spec, tree_agent="on")


def test_gating_auto_is_dense_below_dense_below_rows_and_saved_resolved() -> None:
    """``gating=auto``: every agent for a train split under ``dense_below_rows`` rows, top-k from there; resolved
    from the row count only (never the data's name) and saved resolved; built directly, auto is top-k."""
    import dataclasses

    from dain.config import RunConfig
    from dain.models.dain import DAIN
    from dain.training.runner import build_from_config
    from tests.conftest import tiny_dataset

    default = DAIN.Config()
    assert default.gating == "auto" and default.dense_below_rows == 1000
    small, large = tiny_dataset(n=240), tiny_dataset(n=1500)  # 168 and 1050 training rows
    assert DAIN.resolve_config(default, small).gating == "dense"
    assert DAIN.resolve_config(default, large).gating == "topk"
    renamed = dataclasses.replace(small, spec=dataclasses.replace(small.spec, name="something_else"))
    assert DAIN.resolve_config(default, renamed) == DAIN.resolve_config(default, small)
    assert DAIN.resolve_config(dataclasses.replace(default, dense_below_rows=100), small).gating == "topk"
    assert DAIN.resolve_config(dataclasses.replace(default, gating="threshold"), small).gating == "threshold"
    assert build_model("dain", small.spec).gating == "topk"  # built directly
    run = RunConfig.from_dict({"model": {"name": "dain", "params": {"hidden": 16, "tree_agent": "never"}}})
    data, model = build_from_config(run, small)
    assert model.gating == "dense" and run.model.params["gating"] == "dense"
    assert build_from_config(RunConfig.from_dict(run.to_dict()), data)[1].gating == "dense"


def test_an_explicit_budget_on_a_dense_trained_model_runs_top_k() -> None:
    """Dense gating ignores the budget, so a test-time budget (``dain test --budget``, calibration's lower budgets,
    the budget curve) runs top-k with that many routed agents; without one the trained dense gating runs."""
    from dain.training.frontier import set_test_setting

    m = tiny(gating="dense").eval()
    batch = make_batch(VEC, missing=False)
    full = m(batch).logits
    m.set_calibration(budget=1)
    assert m.gating == "topk" and m.budget == 1
    one = m(batch)
    assert int(one.routing["active"][:, 1:].sum(1).max()) == 1
    m.set_calibration()
    assert m.gating == "dense"
    torch.testing.assert_close(m(batch).logits, full)
    set_test_setting(m, budget=0)
    assert m.gating == "topk" and m.budget == 0
    set_test_setting(m)
    assert m.gating == "dense"
    m.set_budget(0)  # the Python API too: the shared agent alone
    assert m.gating == "topk" and int(m(batch).routing["active"][:, 1:].sum()) == 0
    m.set_budget(None)
    assert m.gating == "dense"
    from dain.validation import budget_is_extrapolated

    assert not budget_is_extrapolated(m, m.num_agents - 1)  # every agent woke in training: no budget extrapolates
    assert budget_is_extrapolated(tiny(), tiny().num_agents - 1)  # top-k at 2 of more routed agents


def test_tree_weight_blends_the_trees_answer_on_every_row_and_is_chosen_on_validation() -> None:
    pytest.importorskip("lightgbm")
    from dain.data.spec import make_batch as data_batch
    from dain.flops import count_flops
    from dain.training.adaptive import calibrate_inference
    from tests.conftest import tiny_dataset

    torch.manual_seed(0)
    data = tiny_dataset(n=700)  # 105 validation rows
    m = build_model("dain", data.spec, hidden=16, tree_agent="always").eval()
    m.prepare(data)
    test = data_batch(data, data.splits["test"])
    with torch.no_grad():
        consensus = m(test).logits
        trees = m.tree(test)
        seen: list[int] = []
        real = m.tree.forward
        m.tree.forward = lambda b: (seen.append(b["mask"].shape[0]), real(b))[1]
        m.set_calibration(tree_weight=0.3)
        blended = m(test).logits
        assert seen == [len(data.splits["test"])]  # once, on every row, also where the tree agent is routed
        torch.testing.assert_close(blended, 0.7 * consensus + 0.3 * trees)
        del m.tree.forward
    # FLOPs: the trees count for every row
    tree_flops = m.tree.flops_per_sample()
    assert m.flops_per_sample(test) == pytest.approx(
        count_flops(m, test, lambda b: m._run(b, None, "topk", "gather")) + tree_flops
    )
    # saved with the weights; a two-entry calibration (saved before the blend existed) loads as no blend
    again = build_model("dain", data.spec, hidden=16, tree_agent="always")
    again.load_state_dict(m.state_dict())
    assert again.tree_weight == pytest.approx(0.3)
    state = dict(m.state_dict())
    state["calibration"] = state["calibration"][:2]
    again.load_state_dict(state)
    assert again.tree_weight == 0.0
    with pytest.raises(ValueError):
        build_model("dain", data.spec, hidden=16).set_calibration(tree_weight=0.5)
    # chosen on validation: any loss allowed -> the best weight that beats the consensus alone (or none)
    rec = calibrate_inference(m, data, "acc", 1.0, (0.9,))
    tried = rec["tree_weights"]
    assert [t["tree_weight"] for t in tried] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    better = [t for t in tried if t["better"]]
    if better:
        assert rec["chosen"]["tree_weight"] == max(better, key=lambda t: t["metric"])["tree_weight"]
        assert m.tree_weight == rec["chosen"]["tree_weight"]
    else:
        assert m.tree_weight == 0.0


def test_tree_folds_score_fewer_boosters_counted_saved_and_chosen_on_validation() -> None:
    """``tree_folds`` k: the tree agent answers with the mean of its first k fold boosters; FLOPs count only
    those; the count is saved with the weights (a three-entry calibration loads as every fold); calibration picks
    the fewest folds the bound allows (any loss allowed: one)."""
    pytest.importorskip("lightgbm")
    import numpy as np

    from dain.data.spec import make_batch as data_batch
    from dain.models.gbm import tree_comparisons
    from dain.training.adaptive import calibrate_inference
    from tests.conftest import tiny_dataset

    torch.manual_seed(0)
    data = tiny_dataset(n=700)
    m = build_model("dain", data.spec, hidden=16, tree_agent="always").eval()
    m.prepare(data)
    test = data_batch(data, data.splits["test"])
    per_fold = m.tree.fold_logits(test)
    assert len(per_fold) == m.tree.folds == 5
    all_flops = m.tree.flops_per_sample()
    with torch.no_grad():
        consensus = m(test).logits
        m.set_calibration(tree_weight=0.4, tree_folds=2)
        blended = m(test).logits
    two = torch.as_tensor(np.mean(per_fold[:2], 0), dtype=torch.float32)
    torch.testing.assert_close(blended, 0.6 * consensus + 0.4 * two)
    comparisons = [tree_comparisons(b) for b in m.tree._get_boosters()]
    assert m.tree.flops_per_sample() == pytest.approx(sum(comparisons[:2])) and all_flops == pytest.approx(
        sum(comparisons)
    )
    # the router's price is what training ran (every fold), whatever calibration chose for inference
    assert m.tree.flops_per_sample(all_folds=True) == pytest.approx(all_flops)
    torch.testing.assert_close(m._relative_costs(), m.agent_cost)
    again = build_model("dain", data.spec, hidden=16, tree_agent="always")
    again.load_state_dict(m.state_dict())
    assert again.tree.used_folds == 2
    state = dict(m.state_dict())
    state["calibration"] = state["calibration"][:3]
    again.load_state_dict(state)
    assert again.tree.used_folds is None and again.tree_weight == pytest.approx(0.4)
    with pytest.raises(ValueError):
        m.set_calibration(tree_weight=0.4, tree_folds=6)
    with pytest.raises(ValueError, match="confidence in"):
        m.set_calibration(threshold=0.0)  # not a silent top-k
    # a rejected setting changes nothing: the model keeps its setting and its state dict still loads
    assert m.tree.used_folds == 2 and m.tree_weight == pytest.approx(0.4)
    again.load_state_dict(m.state_dict())
    m.set_calibration()
    rec = calibrate_inference(m, data, "acc", 1.0, (0.9,))
    if rec["chosen"] and rec["chosen"].get("tree_weight"):
        assert [t["tree_folds"] for t in rec["tree_folds"]] == [1]  # the fewest that passes: tried first
        assert rec["chosen"]["tree_folds"] == 1 and m.tree.used_folds == 1
    else:
        assert "tree_folds" not in rec and m.tree.used_folds is None


# ------------------------------------------------------------------------------------------- calibrated cascade
def test_calibrated_inference_chosen_on_validation_and_saved_with_the_weights() -> None:
    from dain.data.spec import make_batch as data_batch
    from dain.training.adaptive import MIN_SAVING, calibrate_inference
    from dain.training.runner import evaluate
    from tests.conftest import tiny_dataset

    grid = (0.6, 0.9, 0.99)
    torch.manual_seed(0)
    data = tiny_dataset(n=150)
    m = build_model("dain", data.spec, hidden=16, active_agents=2).eval()
    assert m.gating == "topk" and m.budget == 2
    with torch.no_grad():  # a confident shared agent on some rows: the cascade can stop early there
        m.shared.head[-1].weight.mul_(40.0)
    full = float(evaluate(m, data, "val").metrics["acc"])
    rec = calibrate_inference(m, data, "acc", 1.0, grid)  # any accuracy allowed: the cheapest setting wins
    tried = [(s["budget"], s["threshold"]) for s in rec["settings"]]
    assert tried == [(0, None), (1, None)] + [(None, c) for c in grid]
    assert rec["full"]["metric"] == pytest.approx(full)
    cheapest = min(rec["settings"], key=lambda t: t["flops_per_sample"])
    assert rec["chosen"] == {"budget": 0, "threshold": None} == {k: cheapest[k] for k in ("budget", "threshold")}
    assert m.budget == 0 and m.gating == "topk"  # budget 0: the shared agent alone
    # zero tolerance: only settings whose paired bootstrap bound loses nothing qualify; the cheapest of them wins
    rec = calibrate_inference(m, data, "acc", 0.0, grid)
    # accuracy and soft accuracy must both be within the tolerance at their bounds, corrected for the 5 candidates
    z = rec["z"]
    assert z == pytest.approx(NormalDist().inv_cdf(1 - 0.05 / 5)) == pytest.approx(2.326, abs=1e-3)
    for s in rec["settings"]:
        hard = s["loss_mean"] + z * s["loss_std"] <= 0.0
        assert s["within_tolerance"] == (hard and s["soft_loss_mean"] + z * s["soft_loss_std"] <= 0.0)
    ok = [s for s in rec["settings"] if s["within_tolerance"]]
    cheaper = [s for s in ok if s["flops_per_sample"] < (1 - MIN_SAVING) * rec["full"]["flops_per_sample"]]
    if cheaper:
        best = min(cheaper, key=lambda t: t["flops_per_sample"])
        assert rec["chosen"] == {"budget": best["budget"], "threshold": best["threshold"]}
    else:
        assert rec["chosen"] is None and m.budget == 2 and m.gating == "topk"
    # the setting travels in the state dict: a reloaded model predicts the way it was scored
    m.set_calibration(None, 0.9)
    assert m.gating == "threshold" and m.threshold == 0.9 and m.budget == 2
    again = build_model("dain", data.spec, hidden=16, active_agents=2)
    again.load_state_dict(m.state_dict())
    assert again.gating == "threshold" and again.threshold == 0.9 and again.budget == 2
    test = data_batch(data, data.splits["test"])
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(test).logits, m(test).logits)
    # nothing within tolerance (a negative tolerance excludes even equal metrics): the trained top-k stays
    rec = calibrate_inference(m, data, "acc", -1.0, grid)
    assert rec["chosen"] is None and m.gating == "topk" and m.budget == 2
    # weights saved before calibration existed load as the trained top-k
    state = {k: v for k, v in m.state_dict().items() if k != "calibration"}
    old = build_model("dain", data.spec, hidden=16, active_agents=2)
    old.load_state_dict(state)
    assert old.gating == "topk" and old.budget == 2
    # a validation split too small to resolve the tolerance (one sample moves accuracy by more) keeps the trained top-k
    m.set_calibration(None, 0.9)
    rec = calibrate_inference(m, data, "acc", 0.003, grid)
    assert len(data.splits["val"]) < 334 and rec["chosen"] is None and "334" in rec["skipped"]
    assert m.gating == "topk" and m.budget == 2
    with pytest.raises(ValueError):
        build_model("dain", data.spec, adaptive="sometimes")
    # regression has no confidence, so no cascade threshold is tried: only the lower budgets
    import numpy as np

    from tests.conftest import retarget

    reg = retarget(data, "regression", data.target.astype(np.float32))
    r = build_model("dain", reg.spec, hidden=16, active_agents=2).eval()
    rec = calibrate_inference(r, reg, "mae", 1.0, grid)
    assert [(s["budget"], s["threshold"]) for s in rec["settings"]] == [(0, None), (1, None)]


def test_bootstrap_loss_is_paired_and_signed() -> None:
    from dain.training.adaptive import bootstrap_loss

    target = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    right = torch.nn.functional.one_hot(target, 3).float() * 5.0
    assert bootstrap_loss("multiclass", 3, "acc", target, right, right) == (0.0, 0.0)  # same logits: nothing lost
    wrong = right.clone()
    wrong[0] = torch.tensor([0.0, 5.0, 0.0])  # one row of ten now wrong: accuracy falls by 0.1
    mean, sd = bootstrap_loss("multiclass", 3, "acc", target, right, wrong, resamples=2000)
    assert mean == pytest.approx(0.1, abs=0.01) and sd == pytest.approx(0.095, abs=0.01)  # sqrt(0.1 * 0.9 / 10)
    gain, _ = bootstrap_loss("multiclass", 3, "acc", target, wrong, right, resamples=200)
    assert gain < 0  # the better candidate loses a negative amount
    mae = bootstrap_loss("regression", 1, "mae", torch.zeros(4), torch.zeros(4, 1), torch.ones(4, 1))
    assert mae == (1.0, 0.0)  # lower-is-better metrics count a rise as the loss


def test_calibration_bound_is_corrected_for_the_number_of_candidates() -> None:
    from dain.training.adaptive import candidates_z, confidently_within

    assert candidates_z(1) == pytest.approx(1.645, abs=1e-3)  # one candidate: the plain one-sided 95% bound
    assert candidates_z(14) == pytest.approx(2.69, abs=1e-2)  # each at 1 - 0.05 / 14
    assert candidates_z(14) > candidates_z(5) > candidates_z(1)
    # a loss of 0.1 +- 0.08 passes a 0.3 tolerance alone (0.23) but not as one of 14 candidates (0.32)
    assert confidently_within(0.1, 0.08, 0.3) and not confidently_within(0.1, 0.08, 0.3, candidates_z(14))


def test_soft_accuracy_loss_separates_settings_where_accuracy_is_saturated() -> None:
    from dain.training.adaptive import PairedBootstrap, confidently_within

    target = torch.arange(400) % 4
    sure = torch.nn.functional.one_hot(target, 4).float() * 8.0  # every row right, with p(true) ~ 0.999
    unsure = torch.nn.functional.one_hot(target, 4).float() * 1.5  # every row still right, with p(true) ~ 0.6
    boot = PairedBootstrap("multiclass", 4, "acc", target, sure)
    assert boot.loss(unsure) == (0.0, 0.0)  # accuracy cannot tell them apart
    p_sure, p_unsure = (x.softmax(-1)[0, 0].item() for x in (sure, unsure))
    mean, sd = boot.soft_loss(unsure)
    assert mean == pytest.approx(p_sure - p_unsure, abs=1e-6) and sd < 1e-6  # the same drop on every row
    assert not confidently_within(mean, sd, 0.003)
    assert boot.soft_loss(sure) == (0.0, 0.0)
    # one row of 400 a little less sure: a soft loss far below the tolerance
    nudged = sure.clone()
    nudged[0, 0] = 4.0
    assert confidently_within(*boot.soft_loss(nudged), 0.003)
    # binary accuracy: p(true) is p for positives and 1 - p for negatives; AUROC has no soft check
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    logit = torch.tensor([[-2.0], [2.0], [2.0], [-2.0]])
    assert PairedBootstrap("binary", 1, "acc", y, logit).soft_loss(logit * 0.5)[0] > 0
    assert PairedBootstrap("binary", 1, "auroc", y, logit).soft_loss(logit * 0.5) is None
    # multilabel F1: the macro AUROC is its soft check. A candidate with the same labels above 0.5 but the ranking
    # inside each side shuffled keeps F1 and loses AUROC
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 2, (300, 3), generator=g)
    ref = (t * 2 - 1) * (1.0 + torch.rand(300, 3, generator=g)) + 0.8 * torch.randn(300, 3, generator=g)
    scrambled = torch.where(ref > 0, 0.5 + torch.rand(300, 3, generator=g), -0.5 - torch.rand(300, 3, generator=g))
    boot = PairedBootstrap("multilabel", 3, "macro_f1", t, ref)
    assert boot.loss(scrambled) == (0.0, 0.0)
    mean, sd = boot.soft_loss(scrambled)
    assert mean > 0.003 and not confidently_within(mean, sd, 0.003)
    assert boot.soft_loss(ref) == (0.0, 0.0)
    assert PairedBootstrap("multilabel", 3, "auroc", t, ref).soft_loss(scrambled) is None
