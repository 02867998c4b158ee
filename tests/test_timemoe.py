"""Tests of the Time-MoE / MERGE model: router, experts, auxiliary losses, masking, interactions,
sparse experts and the one-token vector modality."""

from __future__ import annotations

import json
import math

import pytest
import torch

from dain.data.spec import DatasetSpec, ModalitySpec
from dain.interactions import routing
from dain.models import build_model
from dain.models.timemoe import RUSRouter, TimeMoE, jsd, rus_losses

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
    partner = present.unsqueeze(1) & ~torch.eye(3, dtype=torch.bool).view(1, 3, 3, 1)
    RS = torch.stack([R, S], -1)
    logits = r(x, present, partner, U, RS)
    assert logits.shape == (2, 3, 7, 5) and torch.isfinite(logits).all()
    assert RUSRouter(16, 5, use_rus=False)(x, present, partner, U, RS).shape == (2, 3, 7, 5)


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


def test_router_mask_marks_the_real_tokens() -> None:
    """The routing record marks which grid tokens are real: padded steps and a missing modality are not, a vector
    modality's one token is (broadcast over the grid)."""
    m = _model().eval()
    b = _batch(3)
    b["mask"][0, 1] = False  # modality b missing in sample 0
    b["steps"] = {"a": torch.ones(3, 12, dtype=torch.bool), "b": torch.ones(3, 6, dtype=torch.bool)}
    b["steps"]["a"][1, 6:] = False  # 12 steps pooled 2 per token: tokens 3.. of sample 1 padded
    b["steps"]["b"][2, ::2] = False
    with torch.no_grad():
        mask = m(b).routing["router_mask"]
    want = torch.ones(3, 3, 6, dtype=torch.bool)
    want[0, 1] = False
    want[1, 0, 3:] = False
    want[2, 1, ::2] = False
    assert torch.equal(mask, want)


def test_explain_averages_router_probs_over_real_tokens_only(tmp_path) -> None:
    """`dain explain` averages router probabilities over the real tokens: padded tokens (here routed to expert 2
    only) do not bias the mean, a modality with no real token gives null (not NaN), and a record without a mask
    (older runs) keeps the plain mean."""
    from dain.explain import explain_run
    from dain.training.runner import EvalResult, save_routing

    B, M, T, E = 4, 3, 5, 3
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(B, M, T, E, generator=g), -1)
    real = torch.rand(B, M, T, generator=g) < 0.6
    real[0, :2] = True  # modalities a and b have real tokens
    real[:, 2] = False  # modality v missing in every sample
    probs[~real] = torch.tensor([0.0, 0.0, 1.0])
    m = _model()
    res = EvalResult({}, torch.randn(B, 3), torch.tensor([0, 1, 2, 0]), torch.arange(B).numpy())
    w = real.unsqueeze(-1).float()
    want = ((probs * w).sum((0, 2)) / w.sum((0, 2)))[:2]
    for name, record, expect in (
        ("masked", {"router_probs": probs, "router_mask": real}, [*want.tolist(), None]),
        ("older", {"router_probs": probs}, probs.mean((0, 2)).tolist()),
    ):
        run = tmp_path / name
        run.mkdir()
        res.routing = {k: v.float().numpy() for k, v in record.items()}  # as `evaluate` collects it
        save_routing(run / "routing.npz", res, m)
        s = explain_run(run, occlusion=False)["summary"]
        assert s["router_probs_rows"] == ["a", "b", "v"]
        got = s["router_probs_mean"]
        assert len(got) == M
        for row, exp in zip(got, expect):
            assert row == (None if exp is None else pytest.approx(exp, abs=1e-4))


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
    U, R, S = routing.rus_tensors(pairs, ["a", "b", "v"], 7)
    # 3 lags on 7 tokens: segments [0,2), [2,4), [4,7)
    assert R[0, 1].tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0] and torch.equal(R[0, 1], R[1, 0])
    assert torch.allclose(U[0], torch.full((7,), 0.9)) and torch.allclose(U[2], torch.full((7,), 0.3))
    assert U[1].tolist() == [0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0]
    assert torch.allclose(S[0, 2], torch.full((7,), 0.4))
    W = routing.lag_to_token_weights(list(range(10)), 4)
    assert torch.allclose(W.sum(0), torch.ones(4))


def test_rus_tensors_span_mapping() -> None:
    """A windowed estimate describes the tokens whose centre lies in its span."""
    pairs = [
        {"modalities": ["a", "b"], "lag": 1 - w, "span": [w / 2, (w + 1) / 2], "R": r, "U1": 0.0, "U2": 0.0, "S": 0.0}
        for w, r in [(0, 1.0), (1, 2.0)]
    ]
    _, R, _ = routing.rus_tensors(pairs, ["a", "b"], 5)
    assert R[0, 1].tolist() == [1.0, 1.0, 2.0, 2.0, 2.0]


def test_interaction_request_follows_the_config() -> None:
    req = _model().interaction_request()
    assert req is not None and req.lags == "auto" and req.num_tokens == 6 and req.max_samples == 0
    assert _model(rus_lags="static").interaction_request().lags == "static"  # type: ignore[union-attr]
    assert _model(rus_lags=[0, 2]).interaction_request().lags == (0, 2)  # type: ignore[union-attr]
    assert build_model("timemoe_static", SPEC, max_tokens=6).interaction_request().lags == "static"  # type: ignore[union-attr]
    assert _model(use_rus=False, aux_losses=False).interaction_request() is None
    with pytest.raises(ValueError, match="rus_lags"):
        _model(rus_lags="weekly")
    assert not hasattr(TimeMoE, "prepare")  # estimation lives in the harness, not the model


def test_relative_thresholds_fire_on_a_low_entropy_label() -> None:
    """H(Y) = 0.1 bit (a rare positive class): U = R = S = 0.03 bit is below any absolute threshold the public code
    uses (0.5 / 0.1 / 0.1 bits) but is 30% of the label's information, so every loss acts."""
    m = _model()
    U, R, S = torch.full((3, 6), 0.03), torch.full((3, 3, 6), 0.03), torch.full((3, 3, 6), 0.03)
    m.set_interactions(U, R, S, label_entropy=0.1)
    assert m.thresholds() == pytest.approx((0.01, 0.005, 0.005))
    with torch.no_grad():
        fired = m(_batch()).losses
    assert all(abs(float(fired[k])) > 1e-6 for k in ("rus_unique", "rus_redundant", "rus_synergy"))
    m.set_interactions(U, R, S, label_entropy=10.0)  # the same bits are now 0.3% of H(Y): nothing fires
    with torch.no_grad():
        quiet = m(_batch()).losses
    assert all(float(quiet[k]) == 0.0 for k in ("rus_unique", "rus_redundant", "rus_synergy"))
    with pytest.raises(ValueError, match="label_entropy"):
        m.set_interactions(U, R, S, label_entropy=-1.0)


def test_pairs_weigh_the_same_however_many_steps_they_span() -> None:
    """The redundancy loss is the mean over pairs of each pair's mean JSD, not a mean over all (pair, step)
    entries."""
    M, T = 3, 4
    p = torch.softmax(torch.randn(1, 1, T, 3) * 3, -1)
    q = torch.softmax(torch.randn(1, 1, T, 3) * 3, -1)
    probs = torch.cat([p, q, p], 1)
    present = torch.ones(1, M, T, dtype=torch.bool)
    present[0, 2, 1:] = False  # modality 2 has one real token
    R = torch.zeros(M, M, T)
    R[0, 1] = R[1, 0] = R[1, 2] = R[2, 1] = 1.0
    Z, U = torch.zeros(M, M, T), torch.zeros(M, T)
    got = rus_losses(probs, present, U, R, Z, 1)["rus_redundant"]
    want = 0.5 * (jsd(p, q).mean() + jsd(q[:, :, :1], p[:, :, :1]).mean())
    assert torch.allclose(got, want, atol=1e-6)


def _routed_tokens(m: TimeMoE, batch: dict) -> int:
    """Number of tokens per sample the (only) MoE layer routes."""
    seen: list[int] = []
    moe = next(layer.moe for layer in m.layers if hasattr(layer, "moe"))
    choose = moe.choose

    def spy(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(logits.shape[1])
        return choose(logits)

    moe.choose = spy  # type: ignore[method-assign]
    with torch.no_grad():
        m(batch)
    return seen[0]


def test_a_vector_modality_contributes_one_token() -> None:
    m = _model().eval()
    assert _routed_tokens(m, _batch()) == 2 * 6 + 1  # a and b on the 6-token grid, v one token
    vec_spec = DatasetSpec(
        "vec", "multiclass", 3, (ModalitySpec("x", "vector", (5,)), ModalitySpec("y", "vector", (4,)))
    )
    mv = build_model("timemoe", vec_spec, hidden=16, heads=2, expert_hidden=16).eval()
    b = {"inputs": {"x": torch.randn(3, 5), "y": torch.randn(3, 4)}, "mask": torch.ones(3, 2, dtype=torch.bool)}
    assert _routed_tokens(mv, b) == 2
    out = mv(b)
    assert out.routing["router_probs"].shape == (3, 2, 1, 4) and torch.isfinite(out.logits).all()


def test_sparse_experts_equal_the_dense_reference() -> None:
    m = _model(num_experts=4, top_k=2)
    m.set_interactions(*_rus(), label_entropy=1.0)
    b = _batch(5)
    b["mask"][0, 1] = False
    b["steps"] = {"a": torch.ones(5, 12, dtype=torch.bool), "b": torch.ones(5, 6, dtype=torch.bool)}
    b["steps"]["a"][1, 4:] = False
    m.eval()
    with torch.no_grad():
        sparse = m(b)
        for layer in m.layers:
            if hasattr(layer, "moe"):
                layer.moe.dense = True
        dense = m(b)
    assert torch.allclose(sparse.logits, dense.logits, atol=1e-5)
    for k in sparse.losses:
        assert torch.allclose(sparse.losses[k], dense.losses[k], atol=1e-6)


def test_synergy_expert_flops_scale_with_the_tokens_routed_to_it() -> None:
    from dain.flops import total_flops
    from dain.models.timemoe import SynergyExpert

    torch.manual_seed(0)
    ex = SynergyExpert(16, 2, 32, 0.0).eval()
    x = torch.randn(4, 32, 16)

    def cost(n: int) -> float:
        routed = torch.zeros(4, 32, dtype=torch.bool)
        routed[:, :n] = True
        return total_flops(ex, lambda: ex(x, routed))

    c4, c8, c32 = cost(4), cost(8), cost(32)
    assert 0 < c4 < c8 < c32
    assert c32 / c4 > 7.5  # linear layers scale with n, attention with n^2: at least 8x for 8x the tokens
    dense = total_flops(
        ex, lambda: ex.forward_dense(x, torch.zeros(4, 32, dtype=torch.bool).index_fill(1, torch.arange(4), True))
    )
    assert dense > 7.5 * c4  # the dense reference pays for every token whatever is routed
    nothing = torch.zeros(4, 32, dtype=torch.bool)
    assert total_flops(ex, lambda: ex(x, nothing)) == 0.0
    y = ex(x, nothing.index_fill(1, torch.tensor([3]), True))
    assert y[:, 3].abs().sum() > 0 and y[:, :3].abs().sum() == 0 and y[:, 4:].abs().sum() == 0


def test_fit_gets_interactions_from_the_harness(tmp_path, capsys, monkeypatch, data_root) -> None:
    """`dain fit --model timemoe` on BasicMotions: the harness estimates temporal R/U/S on the training split once,
    caches them, and the run's saved model carries them; a second model asking the same reads the cache."""
    from dain.cli import main
    from dain.training.runner import load_run

    monkeypatch.setenv("DAIN_CACHE", str(tmp_path / "cache"))
    base = ["fit", "--data", "basicmotions", "--data-root", str(data_root), "--max-epochs", "1", "--no-progress"]
    small = ["--set", "hidden=16", "--set", "expert_hidden=16", "--set", "d_ff=16", "--set", "max_tokens=8"]
    assert main([*base, "--model", "timemoe", "--out", str(tmp_path / "a"), *small]) == 0
    err = capsys.readouterr().err
    assert "interactions: estimating R/U/S on" in err
    files = list((tmp_path / "cache" / "interactions").glob("*.json"))
    assert len(files) == 1
    _, data, model = load_run(tmp_path / "a")
    assert bool(model.rus_ready) and model.rus_entropy.item() == pytest.approx(2.0, abs=0.01)  # 4 balanced classes
    assert float(model.rus_R[0, 1].sum()) > 0 and model.rus_R.shape[-1] == 8
    record = json.loads((tmp_path / "a" / "interactions.json").read_text())
    assert record["from_cache"] is False and record["seconds"] > 0 and len(record["pairs"]) == 8  # 8 windows
    assert record["thresholds_bits"] == pytest.approx([0.1 * 2.0, 0.05 * 2.0, 0.05 * 2.0], abs=0.01)
    assert main([*base, "--model", "timemoe_norus", "--out", str(tmp_path / "b"), *small]) == 0
    assert "estimating" not in capsys.readouterr().err  # same request, same training rows: from the cache
    assert len(list((tmp_path / "cache" / "interactions").glob("*.json"))) == 1
