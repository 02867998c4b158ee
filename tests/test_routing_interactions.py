"""Temporal R/U/S default (lags="auto"), its shrinkage, and the harness cache that hands R/U/S to routers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dain.data.spec import DatasetSpec, ModalitySpec, MultimodalDataset
from dain.interactions import estimate_pairs
from dain.interactions.routing import InteractionRequest, label_entropy_bits, rus_tensors
from dain.interactions.windows import shrink_profile, window_bounds, window_features, windowed_pid
from dain.training import interaction_cache
from dain.training.interaction_cache import provide_interactions, routing_interactions

FAST = {"discrim_steps": 60, "align_steps": 6, "sinkhorn_iters": 10, "hidden": 32, "embed_dim": 8}


def _seq_data(n: int = 120, t: int = 8, seed: int = 0, planted: bool = False) -> MultimodalDataset:
    rng = np.random.default_rng(seed)
    spec = DatasetSpec(
        "tiny_seq",
        "binary",
        1,
        (
            ModalitySpec("a", "sequence", (t, 3)),
            ModalitySpec("b", "sequence", (t, 2)),
            ModalitySpec("v", "vector", (4,)),
        ),
    )
    y = rng.integers(0, 2, n)
    a = rng.normal(size=(n, t, 3)).astype(np.float32)
    if planted:
        a[:, 2:4, 0] += 2.0 * (2 * y[:, None] - 1)
    b = rng.normal(size=(n, t, 2)).astype(np.float32)
    v = rng.normal(size=(n, 4)).astype(np.float32)
    steps = {"a": rng.random((n, t)) > 0.2}
    idx = rng.permutation(n)
    splits = {
        "train": np.sort(idx[: n // 2]),
        "val": np.sort(idx[n // 2 : 3 * n // 4]),
        "test": np.sort(idx[3 * n // 4 :]),
    }
    return MultimodalDataset(spec, {"a": a, "b": b, "v": v}, np.ones((n, 3), bool), y.astype(np.float32), splits, steps)


def test_rus_tensors_maps_spans_onto_tokens() -> None:
    pairs = [
        {"modalities": ["a", "b"], "lag": 1, "span": [0.0, 0.5], "R": 1.0, "U1": 0.2, "U2": 0.0, "S": 0.0},
        {"modalities": ["a", "b"], "lag": 0, "span": [0.5, 1.0], "R": 3.0, "U1": 0.0, "U2": 0.4, "S": -1.0},
        {"modalities": ["a", "v"], "lag": None, "R": 0.5, "U1": 0.1, "U2": 0.7, "S": 0.3},
    ]
    U, R, S = rus_tensors(pairs, ["a", "b", "v"], 4)
    torch.testing.assert_close(R[0, 1], torch.tensor([1.0, 1.0, 3.0, 3.0]))
    torch.testing.assert_close(R[1, 0], R[0, 1])
    torch.testing.assert_close(S[0, 1], torch.zeros(4))  # negative estimates clip at 0
    torch.testing.assert_close(R[0, 2], torch.full((4,), 0.5))  # static pair: broadcast
    torch.testing.assert_close(U[1], torch.tensor([0.0, 0.0, 0.4, 0.4]))
    torch.testing.assert_close(U[0], torch.tensor([0.2, 0.2, 0.1, 0.1]))  # max over the pairs containing a


def test_label_entropy_bits() -> None:
    assert label_entropy_bits(np.array([0, 1, 0, 1])) == pytest.approx(1.0)
    assert label_entropy_bits(np.array([0, 1, 2, 3])) == pytest.approx(2.0)
    assert label_entropy_bits(np.zeros(5, dtype=int)) == 0.0
    assert label_entropy_bits(np.array([[0, 1], [1, 0], [0, 1], [1, 0]])) == pytest.approx(1.0)


def test_window_features_average_observed_steps_only() -> None:
    assert window_bounds(10, 4) == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert len(window_bounds(3, 8)) == 3
    x = np.arange(8, dtype=np.float32).reshape(1, 8, 1)
    steps = np.array([[True, False, False, False, True, True, False, False]])
    f = window_features(x, steps, 2)  # windows [0, 4) and [4, 8)
    np.testing.assert_allclose(f[0, :, 0], [0.0, 4.5])  # observed steps only
    np.testing.assert_allclose(f[0, :, 1], [0.25, 0.5])  # fraction observed
    assert window_features(x, None, 2).shape == (1, 2, 1)


def test_auto_mode_windows_on_sequence_pairs_static_elsewhere() -> None:
    data = _seq_data()
    res = estimate_pairs(data, lags="auto", split="train", progress=False, num_windows=4, **FAST)
    seq = [r for r in res if r["modalities"] == ["a", "b"]]
    assert len(seq) == 4
    assert [r["span"] for r in seq] == [[0.0, 0.25], [0.25, 0.5], [0.5, 0.75], [0.75, 1.0]]
    assert [r["lag"] for r in seq] == [3, 2, 1, 0]
    assert all("R_se" in r and "U1_raw" in r and r["R"] >= 0 for r in seq)
    static = [r for r in res if r["modalities"] != ["a", "b"]]
    assert len(static) == 2 and all(r["lag"] is None and "span" not in r for r in static)
    # "static": the same corrected estimator, one estimate for every pair (the sequence pair included)
    flat = estimate_pairs(data, lags="static", split="train", progress=False, **FAST)
    assert len(flat) == 3 and all(r["lag"] is None and "span" not in r and "R_null" in r for r in flat)
    for r, q in zip([x for x in res if x["modalities"] != ["a", "b"]], flat[1:]):
        assert r["R"] == pytest.approx(q["R"]) and r["U1"] == pytest.approx(q["U1"])  # the other pairs: identical
    with pytest.raises(ValueError, match="lags must be"):
        estimate_pairs(data, lags="weekly", split="train", progress=False)
    # existing behaviours: None = one static estimate per pair; explicit lags = the lagged path
    assert len(estimate_pairs(data, lags=None, split="train", progress=False, **FAST)) == 3


def test_shrinkage_formula() -> None:
    raw, se = np.array([0.1, 0.3, 0.2, 0.2]), np.full(4, 0.5)
    shrunk, mean, tau2 = shrink_profile(raw, se)
    assert tau2 == 0.0 and mean == pytest.approx(0.2)
    np.testing.assert_allclose(shrunk, 0.2)  # noise dominates: collapse to the mean
    shrunk, _, tau2 = shrink_profile(np.array([0.0, 1.0, 0.0, 0.0]), np.full(4, 0.01))
    assert tau2 > 0 and shrunk[1] > 0.9 and abs(shrunk[0]) < 0.05  # a clear difference survives


def test_shrinkage_collapses_noise_and_keeps_a_planted_window() -> None:
    def profile(planted: bool) -> tuple[np.ndarray, np.ndarray]:
        data = _seq_data(n=300, planted=planted, seed=1)
        res = windowed_pid(data.inputs["a"], data.inputs["b"], data.target, num_windows=4, seed=0, **FAST)
        return np.array([r["U1"] for r in res]), np.array([r["U1_raw"] for r in res])

    noise, noise_raw = profile(False)
    assert np.ptp(noise) <= np.ptp(noise_raw) + 1e-9
    assert np.ptp(noise) < 0.05 and noise.mean() < 0.05  # near 0, no window singled out
    sig, _ = profile(True)  # the label is readable from window 1 of a only
    assert int(np.argmax(sig)) == 1 and sig[1] > 0.15 and sig[1] > 5 * np.delete(sig, 1).max()


def test_null_removes_the_small_sample_bias_on_an_independent_pair() -> None:
    from dain.interactions.batch import batch_pid_groups

    rng = np.random.default_rng(0)
    x1, x2, y = rng.normal(size=(300, 10)), rng.normal(size=(300, 10)), rng.integers(0, 2, 300)
    r = batch_pid_groups(x1, x2, y, null=True, **FAST)[0]
    plain = {k: r.extras["raw"][k] + r.extras["null"][k] for k in ("R", "U1", "U2", "S")}
    assert sum(plain.values()) > 0.0  # the KL read-out alone reads chance structure as information
    assert abs(sum(r.extras["raw"].values())) < abs(sum(plain.values()))
    assert all(abs(v) < 0.05 for v in r.extras["raw"].values())


class _Router(nn.Module):
    def __init__(self, request: InteractionRequest | None) -> None:
        super().__init__()
        self.request, self.got = request, None

    def interaction_request(self) -> InteractionRequest | None:
        return self.request

    def set_interactions(self, U: torch.Tensor, R: torch.Tensor, S: torch.Tensor, label_entropy: float) -> None:
        self.got = (U, R, S, label_entropy)


def _fake_estimator(calls: list, seen_rows: list):
    def fake(data: MultimodalDataset, **kwargs) -> list[dict]:
        calls.append(kwargs)
        seen_rows.append({k: np.asarray(v).copy() for k, v in data.splits.items()})
        return [{"modalities": ["a", "b"], "lag": 0, "span": [0.0, 1.0], "R": 0.1, "U1": 0.2, "U2": 0.3, "S": 0.4}]

    return fake


def test_cache_reuse_and_key_change(tmp_path, monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(interaction_cache, "_estimate", _fake_estimator(calls, []))
    data = _seq_data()
    req = InteractionRequest(num_tokens=4)
    first = routing_interactions(data, req, tmp_path, progress=False)
    assert not first.from_cache and len(calls) == 1
    assert first.label_entropy == pytest.approx(label_entropy_bits(data.target[data.splits["train"]].astype(int)))
    again = routing_interactions(data, InteractionRequest(num_tokens=8), tmp_path, progress=False)
    assert again.from_cache and len(calls) == 1 and again.U.shape == (3, 8)  # grid size is not in the key
    assert again.label_entropy == pytest.approx(first.label_entropy)
    routing_interactions(data, InteractionRequest(num_tokens=4, seed=1), tmp_path, progress=False)
    assert len(calls) == 2  # other options: new key
    routing_interactions(data, InteractionRequest(num_tokens=4, max_samples=20), tmp_path, progress=False)
    assert len(calls) == 3  # other train rows: new key
    torch.testing.assert_close(first.R[0, 1], torch.full((4,), 0.1))
    other = _seq_data()
    other.inputs["v"][other.splits["train"][0]] += 1.0  # same dataset name, rows and shapes; one value differs
    routing_interactions(other, req, tmp_path, progress=False)
    assert len(calls) == 4  # the training rows' contents are in the key
    tested = _seq_data()
    tested.inputs["v"][tested.splits["test"]] += 1.0  # a test row changed: the training estimate still applies
    assert routing_interactions(tested, req, tmp_path, progress=False).from_cache and len(calls) == 4


def test_provide_interactions_and_train_only(tmp_path, monkeypatch) -> None:
    calls: list = []
    seen: list = []
    monkeypatch.setattr(interaction_cache, "_estimate", _fake_estimator(calls, seen))
    data = _seq_data()
    assert provide_interactions(nn.Linear(2, 2), data, tmp_path) is None  # plain module: no-op
    assert provide_interactions(_Router(None), data, tmp_path) is None and not calls
    model = _Router(InteractionRequest(num_tokens=4, max_samples=30))
    ri = provide_interactions(model, data, tmp_path, progress=False)
    assert ri is not None and model.got is not None and model.got[0].shape == (3, 4)
    assert model.got[3] == ri.label_entropy
    rows = seen[0]
    assert len(rows["val"]) == 0 and len(rows["test"]) == 0 and len(rows["train"]) == 30
    assert set(rows["train"]) <= set(data.splits["train"])


def test_real_estimation_never_reads_val_or_test(tmp_path) -> None:
    data = _seq_data(n=80)
    req = InteractionRequest(num_tokens=4, lags=())
    clean = routing_interactions(data, req, tmp_path / "a", progress=False)
    for m in ("a", "b", "v"):  # val/test rows now hold wild values: reading any of them would change the estimate
        data.inputs[m][data.splits["val"]] = 1e4
        data.inputs[m][data.splits["test"]] = -1e4
    dirty = routing_interactions(data, req, tmp_path / "b", progress=False)
    assert not dirty.from_cache and len(dirty.pairs) == 3
    for p, q in zip(clean.pairs, dirty.pairs):
        assert p["R"] == pytest.approx(q["R"]) and p["S"] == pytest.approx(q["S"]) and p["U1"] == pytest.approx(q["U1"])


def test_estimating_leaves_the_global_random_state_as_reading_the_cache_does(tmp_path, monkeypatch) -> None:
    """The estimator seeds and draws from torch's generator; training after it must start from the same state
    whether the estimate was computed or read from the cache, so that a saved config rebuilds the same run."""

    def drawing(*args, **kwargs):  # a stand-in estimator that draws as BATCH does
        torch.manual_seed(123)
        torch.rand(10)
        return _fake_estimator([], [])(*args, **kwargs)

    monkeypatch.setattr(interaction_cache, "_estimate", drawing)
    data = _seq_data()
    after = []
    for _ in range(2):  # computed, then read from the cache
        torch.manual_seed(0)
        ri = routing_interactions(data, InteractionRequest(num_tokens=4), tmp_path, progress=False)
        after.append((ri.from_cache, torch.rand(3)))
    assert [a[0] for a in after] == [False, True]
    torch.testing.assert_close(after[0][1], after[1][1])
