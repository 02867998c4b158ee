"""Tests for dain.interactions: exact PID on canonical cases, BATCH, temporal PID, synthetic datasets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import dain.datasets.synthetic  # noqa: F401  (registers the synthetic datasets)
from dain.interactions import (
    RESULT_KEYS,
    PIDResult,
    estimate_pairs,
    pid_batch,
    pid_exact,
    pid_from_joint,
    temporal_pid,
)
from dain.interactions.plot import plot_interactions
from dain.interactions.synthetic import TRUTH, make_pid_data, make_temporal_data
from dain.registry import DATASETS

ATOMS = ("R", "U1", "U2", "S")


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # OpenMP spin-waits badly on an oversubscribed 2-core machine
    yield
    torch.set_num_threads(n)


def gate_table(f) -> np.ndarray:
    p = np.zeros((2, 2, 2))
    for a, b in itertools.product([0, 1], [0, 1]):
        p[a, b, f(a, b)] += 0.25
    return p


def check(res: PIDResult, truth: dict[str, float], tol: float) -> None:
    for a in ATOMS:
        assert abs(getattr(res, a) - truth[a]) < tol, (a, res)


@pytest.mark.parametrize("kind", list(TRUTH))
def test_exact_canonical(kind: str) -> None:
    d = make_pid_data(kind, n=4000, seed=1)
    r = pid_exact(d.x1, d.x2, d.y)
    check(r, TRUTH[kind], 0.01)
    assert abs(r.R + r.U1 + r.U2 + r.S - r.total) < 1e-6


def test_exact_gates() -> None:
    xor = pid_from_joint(gate_table(lambda a, b: a ^ b))
    check(xor, TRUTH["synergy"], 1e-6)
    copy = pid_from_joint(gate_table(lambda a, b: a))
    check(copy, TRUTH["uniqueness"], 1e-6)
    and_ = pid_from_joint(gate_table(lambda a, b: a & b))
    # Bertschinger et al. 2014: AND has R = 0.311, U = 0, S = 0.5 bits
    assert abs(and_.R - 0.3113) < 1e-3 and abs(and_.S - 0.5) < 1e-3
    assert and_.U1 < 1e-3 and and_.U2 < 1e-3
    assert abs(and_.total - 0.8113) < 1e-3


def test_exact_swap_sources() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(36)).reshape(3, 4, 3)
    a, b = pid_from_joint(p), pid_from_joint(p.transpose(1, 0, 2))
    assert abs(a.U1 - b.U2) < 1e-4 and abs(a.U2 - b.U1) < 1e-4
    assert abs(a.R - b.R) < 1e-4 and abs(a.S - b.S) < 1e-4
    assert min(a.R, a.U1, a.U2, a.S) >= 0
    assert abs(a.R + a.U1 + a.U2 + a.S - a.total) < 1e-6


def test_exact_continuous_discretised() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    x1 = y[:, None] + 0.05 * rng.standard_normal((3000, 1))
    x2 = rng.standard_normal((3000, 1))
    r = pid_exact(x1, x2, y, bins=4)
    assert r.dominant() == "U1" and r.U1 > 0.8 and r.R + r.S < 0.05, r  # quantile edges may cut a cluster
    d = r.to_dict()
    assert set(ATOMS) | {"total", "lag"} <= set(d)


def test_batch_continuous_dominant() -> None:
    for kind, atom in (("redundancy", "R"), ("synergy", "S")):
        d = make_pid_data(kind, n=1500, seed=0, continuous=True, dim=8)
        r = pid_batch(d.x1, d.x2, d.y, discrim_epochs=12, align_epochs=1, batch_size=128, seed=0)
        assert r.dominant() == atom, (kind, r)
        assert abs(getattr(r, atom) - 1.0) < 0.2, (kind, r)


def test_batch_deterministic() -> None:
    d = make_pid_data("uniqueness", n=800, seed=0, continuous=True, dim=8)
    a = pid_batch(d.x1, d.x2, d.y, discrim_epochs=2, align_epochs=1, seed=3)
    b = pid_batch(d.x1, d.x2, d.y, discrim_epochs=2, align_epochs=1, seed=3)
    assert a.to_dict()["R"] == b.to_dict()["R"] and a.S == b.S


def test_temporal_exact_planted() -> None:
    d = make_temporal_data(n=250, T=12, seed=0)
    res = temporal_pid(d.x1, d.x2, d.y, lags=5, estimator="exact")
    assert [r.lag for r in res] == list(range(6))
    for r in res:
        if r.lag in d.truth:
            truth = d.truth[r.lag]
            atom = max(truth, key=truth.get)
            assert r.dominant() == atom and abs(getattr(r, atom) - 1) < 0.1, r
        else:
            assert r.total < 0.15, r


def test_temporal_shared_batch_runs() -> None:
    d = make_temporal_data(n=100, T=8, seed=0)
    res = temporal_pid(
        d.x1,
        d.x2,
        d.y,
        lags=[0, 2],
        method="both",
        estimator="batch",
        max_samples=500,
        discrim_epochs=10,
        align_epochs=1,
        batch_size=64,
    )
    assert [r.lag for r in res] == [0, 2] and res.method == "shared"
    assert res.cost_ratio is not None and res.cost_ratio > 0 and len(res.reference) == 2
    assert res[0].R > 0.5 and res.reference[0].R > 0.5, (res, res.reference)


def test_temporal_batch_holds_out_whole_sequences(monkeypatch) -> None:
    """BATCH's read-out rows are every step of the held-out sequences and none of the others' (per-step labels pool
    (sequence, step) pairs: a random 20 % of the pairs would put a sequence's steps on both sides)."""
    import dain.interactions.batch as B

    seen: list[tuple[int, np.ndarray]] = []
    real = B.batch_pid_groups
    monkeypatch.setattr(
        B, "batch_pid_groups", lambda *a, **k: seen.append((len(a[2]), k["eval_index"])) or real(*a, **k)
    )
    d = make_temporal_data(n=50, T=6, seed=0)
    kw = {"estimator": "batch", "discrim_epochs": 1, "align_epochs": 1, "max_samples": None}
    temporal_pid(d.x1, d.x2, d.y, lags=[0, 2], **kw)
    for (pooled, ev), lag in zip(seen, [0, 2]):
        steps = 6 - lag
        held = np.unique(ev // steps)
        assert pooled == 50 * steps and len(held) == 10  # 20 % of the sequences
        np.testing.assert_array_equal(ev, (held[:, None] * steps + np.arange(steps)).ravel())
    seen.clear()
    temporal_pid(d.x1, d.x2, d.y, lags=[1], eval_samples=np.arange(40, 50), **kw)
    np.testing.assert_array_equal(seen[0][1], np.arange(40 * 5, 50 * 5))


def test_batch_one_class_has_no_information() -> None:
    rng = np.random.default_rng(0)
    r = pid_batch(rng.normal(size=(60, 4)), rng.normal(size=(60, 3)), np.zeros(60), discrim_epochs=2, align_epochs=1)
    assert (r.R, r.U1, r.U2, r.S, r.total) == (0.0, 0.0, 0.0, 0.0, 0.0)


def test_sequence_label_pairs() -> None:
    d = make_temporal_data(n=1500, T=6, seed=0)
    res = temporal_pid(d.x1, d.x2, d.y[:, -1], lags=[0, 2], estimator="exact")
    assert res[0].dominant() == "R" and res[1].dominant() == "U1"


SYN = [n for n in DATASETS.names() if n.startswith("synthetic-")]


def test_registry_names() -> None:
    want = {f"synthetic-{k}" for k in TRUTH} | {f"synthetic-{k}-continuous" for k in TRUTH} | {"synthetic-temporal"}
    assert want <= set(SYN)


@pytest.mark.parametrize("name", SYN)
def test_synthetic_dataset_loads(name: str) -> None:
    d = DATASETS.get(name)(n_samples=300, seed=1)
    d.validate()
    assert d.info["source"] == "generated by dain (synthetic, known PID)" and d.info["truth"]
    assert d.spec.modality_names == ["x1", "x2"] and d.n_samples == 300
    if name == "synthetic-temporal":
        assert d.info["step_labels"].shape == (300, 20)
        assert np.array_equal(d.info["step_labels"][:, -1], d.target)


def test_estimate_pairs_and_plot(tmp_path) -> None:
    d = DATASETS.get("synthetic-mixed")(n_samples=2000)
    out = estimate_pairs(d, progress=False)
    assert len(out) == 1 and set(out[0]) == set(RESULT_KEYS)
    assert out[0]["unique"] == {"x1": out[0]["U1"], "x2": out[0]["U2"]} and out[0]["read_on"].startswith("train (")
    assert out[0]["lag"] is None and abs(out[0]["R"] - 1) < 0.05 and abs(out[0]["S"] - 1) < 0.05
    t = DATASETS.get("synthetic-temporal")(n_samples=200)
    tout = estimate_pairs(t, lags=[0, 4], estimator="exact", progress=False)
    assert [r["lag"] for r in tout] == [0, 4]
    png = plot_interactions(out + tout, tmp_path / "rus.png")
    assert png.exists() and png.stat().st_size > 1000


def test_estimate_pairs_reads_on_rows_the_estimator_was_not_fitted_on() -> None:
    d = DATASETS.get("synthetic-uniqueness-continuous")(n_samples=2000)
    (r,) = estimate_pairs(
        d, estimator="batch", split="val", fit_split="train", progress=False, discrim_epochs=8, align_epochs=3
    )
    assert r["read_on"] == f"val ({len(d.splits['val'])} rows; BATCH fitted on train, {len(d.splits['train'])} rows)"
    assert r["unique"]["x1"] == r["U1"] > 0.7 and r["unique"]["x2"] == r["U2"] < 0.1  # U1 = 1 bit by construction


def test_plot_wraps_pairs_and_names_uniqueness(tmp_path) -> None:
    import matplotlib.image

    mods = ["a", "b", "c", "d"]
    res = [
        {"modalities": [x, y], "lag": None, "R": 0.1 * i, "U1": 0.2, "U2": 0.05, "S": 0.3, "total": 1.0}
        for i, (x, y) in enumerate((x, y) for j, x in enumerate(mods) for y in mods[j + 1 :])
    ]
    assert len(res) == 6
    png = plot_interactions(res, tmp_path / "six.png")
    h, w = matplotlib.image.imread(png).shape[:2]
    assert (w, h) == (round(4.2 * 3 * 110), round(3.4 * 2 * 110))  # 3 per row, 2 rows (was one 2772x374 row)
