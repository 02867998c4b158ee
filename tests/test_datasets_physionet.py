"""PhysioNet 2012 loader (real data in ../shared/data if present, generated stays otherwise), time_aware."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dain.data.paths import find_data_dir
from dain.data.registry_api import load_dataset
from dain.data.spec import ModalitySpec
from dain.datasets import physionet2012 as P
from dain.encoders.irregular import TimeAwareEncoder
from dain.errors import DainError

V_N, L_N = len(P.VITALS), len(P.LABS)


@pytest.fixture(scope="module", autouse=True)
def _tmp_cache(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAIN_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def _real_dir() -> Path | None:
    try:
        return find_data_dir("physionet2012", None, ("set-a.tar.gz", "Outcomes-a.txt"))
    except DainError:
        return None


REAL = _real_dir()
needs_real = pytest.mark.skipif(REAL is None, reason="../shared/data/physionet2012 not available")


def _stay(rid: int, rows: list[tuple[str, str, float]], weight: float = 80.0) -> str:
    head = [
        ("00:00", "RecordID", rid),
        ("00:00", "Age", 60),
        ("00:00", "Gender", 1),
        ("00:00", "Height", -1),
        ("00:00", "ICUType", 2),
        ("00:00", "Weight", weight),
    ]
    return "Time,Parameter,Value\n" + "".join(f"{t},{p},{v}\n" for t, p, v in head + rows)


@pytest.fixture()
def fake_dir(tmp_path: Path) -> Path:
    """20 generated stays in a set-a/ folder: 1015 has no labs, 1016 no vitals, 1017 no time series."""
    d = tmp_path / "physionet2012"
    (d / "set-a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = ["RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"]
    for i in range(20):
        rid = 1000 + i
        rows: list[tuple[str, str, float]] = []
        if i not in (16, 17):
            for h in range(0, 48, 3):
                rows.append((f"{h:02d}:{rng.integers(60):02d}", "HR", float(rng.normal(80 + i, 5))))
                rows.append((f"{h:02d}:30", "Temp", float(rng.normal(37, 0.5))))
        if i not in (15, 17):
            rows.append(("05:10", "Na", float(rng.normal(140, 3))))
            rows.append(("05:10", "pH", -1.0))  # negative = missing
        (d / "set-a" / f"{rid}.txt").write_text(_stay(rid, rows, weight=-1 if i == 3 else 80.0))
        out.append(f"{rid},1,1,5,-1,{int(i % 4 == 0)}")
    (d / "Outcomes-a.txt").write_text("\n".join(out) + "\n")
    return d


def test_generated_stays_masks_and_features(fake_dir: Path) -> None:
    data = load_dataset("physionet2012", root=str(fake_dir), sets=("a",), summary=True)
    assert data.spec.modality_names == ["vitals", "labs", "static", "summary"]
    assert data.spec.modality("vitals").shape == (48, 3 * V_N)
    assert data.spec.modality("labs").shape == (48, 3 * L_N)
    assert data.spec.modality("static").shape == (11,)
    assert data.spec.modality("summary").shape == (36 * 5,)
    row = {int(r): i for i, r in enumerate(data.ids)}
    m = data.mask
    assert not m[row[1015], 1] and m[row[1015], 0]
    assert not m[row[1016], 0] and m[row[1016], 1]
    assert not m[row[1017], 0] and not m[row[1017], 1] and not m[row[1017], 3] and m[row[1017], 2]
    assert m[row[1000]].all()
    for name in ("vitals", "labs"):
        x = data.inputs[name]
        v = x.shape[-1] // 3
        obs = x[..., v : 2 * v]
        assert set(np.unique(obs)) <= {0.0, 1.0}
        np.testing.assert_array_equal(data.steps[name], obs.any(-1) > 0)
        assert (x[~data.mask[:, data.spec.modality_names.index(name)]] == 0).all()
        delta = x[..., 2 * v :]
        assert (delta[obs > 0] == 0).all() and (delta >= 0).all()
    # HR observed every 3 h: hour 1 has delta 1 h / 48, pH = -1 is treated as missing
    hr = P.VARIABLES.index("HR")
    vit = data.inputs["vitals"][row[1000]]
    assert vit[0, V_N + hr] == 1 and vit[1, V_N + hr] == 0
    assert vit[1, 2 * V_N + hr] == pytest.approx(1 / 48)
    ph = P.LABS.index("pH")
    assert (data.inputs["labs"][:, :, L_N + ph] == 0).all()
    # weight descriptor -1 -> missing indicator set
    assert data.inputs["static"][row[1003], 10] == 1 and data.inputs["static"][row[1000], 10] == 0
    assert data.target.dtype == np.float32 and set(np.unique(data.target)) == {0.0, 1.0}


def test_normalisation_uses_train_rows_only(fake_dir: Path) -> None:
    data = load_dataset("physionet2012", root=str(fake_dir), sets=("a",), summary=True, clip=0.0, impute="mean")
    parsed = P.load_set(fake_dir / "set-a")
    values = P.grid(parsed, 60)
    train = data.splits["train"]
    stats = P.fit_normalization(values, parsed.static, P.summarize(parsed), train)
    hr = P.VARIABLES.index("HR")
    tv = values[train][:, :, hr]
    assert stats["series"][0][hr] == pytest.approx(np.nanmean(tv), rel=1e-5)
    assert stats["series"][1][hr] == pytest.approx(np.nanstd(tv), rel=1e-4)
    # corrupting non-train rows leaves the statistics unchanged
    other = np.setdiff1d(np.arange(len(values)), train)
    v2 = values.copy()
    v2[other] = v2[other] * 100 + 1e4
    s2 = P.fit_normalization(v2, parsed.static, None, train)
    np.testing.assert_allclose(s2["series"][0], stats["series"][0])
    np.testing.assert_allclose(s2["series"][1], stats["series"][1])
    # the loaded inputs are standardised with exactly those train stats
    xs = data.inputs["vitals"][train][..., :V_N]
    ob = data.inputs["vitals"][train][..., V_N : 2 * V_N] > 0
    assert xs[..., hr][ob[..., hr]].mean() == pytest.approx(0.0, abs=1e-4)
    assert xs[..., hr][ob[..., hr]].std() == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(data.info["norm_stats"]["series"][0], stats["series"][0], rtol=1e-6)


def test_summary_statistics_skip_stays_without_summary(fake_dir: Path) -> None:
    """Stay 1017 has no time series: its summary is masked out and its zero counts must not move the statistics."""
    parsed = P.load_set(fake_dir / "set-a")
    values, summ = P.grid(parsed, 60), P.summarize(parsed)
    rows = np.arange(len(values))
    has = np.asarray([int(r) != 1017 for r in parsed.ids])
    mu, sd = P.fit_normalization(values, parsed.static, summ, rows)["summary"]
    flat = summ.reshape(len(summ), -1)
    hr_count = P.VARIABLES.index("HR") * 5 + 4
    assert flat[~has, hr_count] == 0 and mu[hr_count] == pytest.approx(flat[has, hr_count].mean())
    assert sd[hr_count] == pytest.approx(flat[has, hr_count].std(), rel=1e-5)
    mu2, sd2 = P.fit_normalization(values, parsed.static, summ, rows[has])["summary"]
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sd2, sd)
    # the piecewise-linear encoding's median and bin edges too (train: every stay with both series, plus 1017)
    train = rows[[int(r) not in (1015, 1016) for r in parsed.ids]]
    splits = {"train": train, "val": rows[:0], "test": rows[:0]}
    every, with_summary = (
        P.assemble(values, parsed.static, summ, {**splits, "train": t}, 60, summary_bins=4)["stats"]
        for t in (train, train[has[train]])
    )
    for key in ("summary_edges", "summary_median"):
        np.testing.assert_array_equal(every[key], with_summary[key])


def test_options_and_errors(fake_dir: Path) -> None:
    d = load_dataset("physionet2012", root=str(fake_dir), sets="a", resolution_minutes=30, modalities=["labs"])
    assert d.spec.modality_names == ["labs"] and d.inputs["labs"].shape[1:] == (96, 3 * L_N)
    with pytest.raises(DainError):
        load_dataset("physionet2012", root=str(fake_dir), sets=("a", "b"))
    with pytest.raises(DainError):
        load_dataset("physionet2012", root=str(fake_dir), sets=("a",), protocol="nope")
    with pytest.raises(DainError):
        load_dataset("physionet2012", root=str(fake_dir), sets=("a",), protocol="raindrop")


@needs_real
def test_real_set_a_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    d1 = load_dataset("physionet2012", sets=("a",), max_stays=400, summary=True)

    def _no_parse(*a: object, **k: object) -> None:
        raise AssertionError("second load must come from the cache")

    monkeypatch.setattr(P, "parse_set", _no_parse)
    d2 = load_dataset("physionet2012", sets=("a",), max_stays=400, summary=True)
    assert d1.n_samples == 400
    np.testing.assert_array_equal(d1.ids, d2.ids)
    for m in d1.inputs:
        np.testing.assert_array_equal(d1.inputs[m], d2.inputs[m])
    assert len(list((Path(__import__("os").environ["DAIN_CACHE"]) / "physionet2012").glob("set-a-*-400.npz"))) == 1
    assert 0.05 < d1.target.mean() < 0.3
    assert d1.mask[:, 2].all() and d1.mask[:, 0].mean() > 0.9
    assert set(d1.split_sizes().values()) and sum(d1.split_sizes().values()) == 400


@needs_real
def test_real_raindrop_split_sizes() -> None:
    d = load_dataset("physionet2012", protocol="raindrop", split=3)
    assert d.n_samples == 11988
    assert d.split_sizes() == {"train": 9590, "val": 1199, "test": 1199}
    allidx = np.concatenate([d.splits[s] for s in ("train", "val", "test")])
    assert len(np.unique(allidx)) == 11988
    for rid in (140501, 150649, 156254):
        assert rid not in set(d.ids.tolist())
    assert 0.13 < d.target.mean() < 0.155


def test_time_aware_encoder_gradients_and_mask() -> None:
    torch.manual_seed(0)
    spec = ModalitySpec("vitals", "sequence", (12, 3 * 4))
    enc = TimeAwareEncoder(spec, hidden=16, dropout=0.0, layers=2)
    x = torch.randn(5, 12, 12)
    m = (torch.rand(5, 12, 4) > 0.5).float()
    x[..., 4:8] = m
    x[..., 8:] = torch.rand(5, 12, 4)
    steps = m.any(-1)
    steps[0] = False
    out = enc(x, steps)
    assert out.tokens.shape == (5, 12, 16) and out.pooled.shape == (5, 16)
    assert torch.equal(out.token_mask, steps)
    (out.pooled * torch.randn(16)).sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # values at unobserved entries are ignored
    x2 = x.clone()
    x2[..., :4] = torch.where(m > 0, x[..., :4], torch.full_like(m, 99.0))
    enc.eval()
    torch.testing.assert_close(enc(x, steps).pooled, enc(x2, steps).pooled)
    # plain sequences (D not divisible by 3) work too
    enc2 = TimeAwareEncoder(ModalitySpec("s", "sequence", (7, 5)), hidden=8)
    assert enc2(torch.randn(2, 7, 5), None).pooled.shape == (2, 8)


def _grud_stepped(enc: TimeAwareEncoder, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """GRU-D as written in its paper: one nn.GRUCell step per time step (the reference for the hoisted forward)."""
    from dain.encoders.irregular import split_channels

    values, mask, delta = split_channels(x, steps, enc.triplet)
    gx = torch.exp(-torch.relu(enc.w_x * delta + enc.b_x))
    # the paper's delta, by its recursion on a grid of step 1/T from admission at step -1: the time since the
    # previous observation (one step, plus the previous delta where the variable was not observed then)
    T = x.shape[1]
    gaps, prev, seen = [], torch.zeros_like(delta[:, 0]), torch.ones_like(mask[:, 0])
    for t in range(T):
        prev = 1.0 / T + torch.where(seen > 0, torch.zeros_like(prev), prev)
        gaps.append(prev)
        seen = mask[:, t]
    gh = torch.exp(-torch.relu(enc.decay_h(torch.stack(gaps, 1))))
    h = values.new_zeros(len(x), enc.hidden)
    x_last, states = enc.x_mean.expand(len(x), -1), []
    for t in range(x.shape[1]):
        m, xt = mask[:, t], values[:, t]
        x_last = m * xt + (1 - m) * x_last
        x_hat = m * xt + (1 - m) * (gx[:, t] * x_last + (1 - gx[:, t]) * enc.x_mean)
        h = torch.where(steps[:, t : t + 1], enc.cell(torch.cat([x_hat, m], -1), gh[:, t] * h), h)
        states.append(h)
    return torch.stack(states, 1)


@pytest.mark.parametrize("fractional", [False, True])
def test_time_aware_encoder_equals_stepping_a_gru_cell(fractional: bool) -> None:
    torch.manual_seed(1)
    enc = TimeAwareEncoder(ModalitySpec("v", "sequence", (9, 3 * 4)), hidden=8, dropout=0.0).eval()
    with torch.no_grad():
        enc.x_mean.normal_()
    x = torch.randn(6, 9, 12)
    m = torch.rand(6, 9, 4) if fractional else (torch.rand(6, 9, 4) > 0.6).float()
    steps = torch.rand(6, 9) > 0.2
    steps[1] = False  # a stay without any observed step keeps the zero state
    steps[2, :-1] = False  # one observed step, the last
    m = m * steps.unsqueeze(-1)
    t = torch.arange(9).view(1, 9, 1)
    last = torch.where(m > 0, t, -1).cummax(1).values  # the delta channel as physionet2012 writes it, in 1/T
    x[..., 4:8], x[..., 8:] = m, torch.where(last >= 0, t - last, t + 1) / 9
    enc.norm = torch.nn.Identity()  # compare the raw states
    ref = _grud_stepped(enc, x, steps)
    out = enc(x, steps)
    torch.testing.assert_close(out.tokens, ref, atol=1e-6, rtol=1e-5)
    last = torch.where(steps, torch.arange(9), 0).max(1).values  # pooled: the state at the last observed step
    torch.testing.assert_close(out.pooled, ref[torch.arange(6), last], atol=1e-6, rtol=1e-5)
    assert torch.equal(out.pooled[1], torch.zeros(8))
    none = torch.zeros_like(steps)  # a batch without a single observation
    assert torch.equal(enc(x, none).tokens, torch.zeros(6, 9, 8)) and torch.equal(
        enc(x, none).pooled, torch.zeros(6, 8)
    )
    # training with dropout builds the tokens eagerly; without, the cell runs under autograd the same way
    for p in (0.0, 0.5):
        enc.train()
        enc.drop.p = p
        torch.manual_seed(2)
        out = enc(x, steps)
        (out.pooled.sum() + out.tokens.sum()).backward()
        assert all(q.grad is not None and torch.isfinite(q.grad).all() for q in enc.parameters())
        if p == 0.0:
            torch.testing.assert_close(out.tokens, ref, atol=1e-6, rtol=1e-5)


def test_summary_piecewise_linear_encoding_fits_on_train_rows(fake_dir: Path) -> None:
    data = load_dataset(
        "physionet2012", root=str(fake_dir), sets=("a",), summary=True, summary_encoding="ple", summary_bins=4
    )
    assert data.spec.modality("summary").shape == (36 * 5 * 4,)
    s = data.inputs["summary"]
    assert s.shape == (data.n_samples, 36 * 5 * 4) and s.min() >= 0 and s.max() <= 1
    parsed = P.load_set(fake_dir / "set-a")
    flat = P.summarize(parsed).reshape(len(parsed.ids), -1)
    edges = np.asarray(data.info["norm_stats"]["summary_edges"], dtype=np.float32)
    from dain.data.transforms import fit_quantile_edges, piecewise_linear

    np.testing.assert_allclose(edges, fit_quantile_edges(flat, data.splits["train"], 4))
    # an unmeasured variable is encoded as its train median (Na is missing for stay 1015)
    row = {int(r): i for i, r in enumerate(data.ids)}[1015]
    na_mean = P.VARIABLES.index("Na") * 5
    median = np.asarray(data.info["norm_stats"]["summary_median"])[na_mean]
    np.testing.assert_allclose(
        s[row, na_mean * 4 : na_mean * 4 + 4],
        piecewise_linear(np.array([[median]]), edges[na_mean : na_mean + 1])[0],
        atol=1e-6,
    )
    with pytest.raises(DainError):
        load_dataset("physionet2012", root=str(fake_dir), sets=("a",), summary=True, summary_encoding="rank")


def test_parallel_cache_writers_do_not_collide(fake_dir: Path, tmp_path: Path) -> None:
    """Fits that parse the same set at once (compare --jobs) each write a private temporary file."""
    from concurrent.futures import ThreadPoolExecutor

    parsed = P.load_set(fake_dir / "set-a", use_cache=False)
    (tmp_path / "cache").mkdir()
    path = tmp_path / "cache" / "set-a.npz"
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda _: parsed.save(path), range(16)))
    np.testing.assert_array_equal(P.ParsedSet.load(path).obs_value, parsed.obs_value)
    assert [p.name for p in path.parent.iterdir()] == ["set-a.npz"]


def test_time_aware_state_decay_reads_the_gap_since_the_previous_observation() -> None:
    """Plain sequences: at each observed step the state's decay reads the steps since the previous one (in 1/T),
    from admission before step 0; the derived input gap stays 0 there."""
    from dain.encoders.irregular import split_channels, state_gaps

    steps = torch.tensor([[True, False, False, True, True], [False, False, True, False, True]])
    _, mask, delta = split_channels(torch.randn(2, 5, 4), steps, triplet=False)
    gaps = state_gaps(delta, mask)[..., 0]
    assert torch.equal(delta[..., 0][steps], torch.zeros(5))
    torch.testing.assert_close(gaps[steps], torch.tensor([1.0, 3.0, 1.0, 3.0, 2.0]) / 5)
    # and the encoder's state depends on those gaps: the same values, observed further apart, end elsewhere
    enc = TimeAwareEncoder(ModalitySpec("s", "sequence", (5, 4)), hidden=4, dropout=0.0).eval()
    with torch.no_grad():
        enc.decay_h.weight.fill_(1.0)
        enc.decay_h.bias.zero_()
    x = torch.randn(1, 5, 4)
    close, apart = torch.tensor([[True, True, False, False, False]]), torch.tensor([[True, False, False, False, True]])
    x_apart = x.clone()
    x_apart[:, 4] = x[:, 1]
    assert not torch.allclose(enc(x, close).pooled, enc(x_apart, apart).pooled)
