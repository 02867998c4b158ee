"""Protocol splits: right sizes, disjoint, recorded; normalisation never sees test rows; published rows are marked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dain.data import load_dataset
from dain.published import published_rows
from tests.conftest import fit_mfeat


def test_mfeat_tmc_split_sizes_and_disjoint() -> None:
    d = load_dataset("mfeat", protocol="tmc", seed=3)
    sizes = d.split_sizes()
    assert sizes["train"] + sizes["val"] == 1600 and sizes["test"] == 400
    assert sizes["val"] == 200
    tr, va, te = (set(d.splits[s].tolist()) for s in ("train", "val", "test"))
    assert not (tr & va) and not (tr & te) and not (va & te)
    # 40 test digits per class, as in the TMC split
    assert np.bincount(d.target[d.splits["test"]]).tolist() == [40] * 10
    assert d.info["protocol"] == "tmc"


def test_mfeat_normalisation_uses_train_rows_only() -> None:
    from dain.datasets.mfeat import _read

    d = load_dataset("mfeat", protocol="tmc", seed=0)
    raw = _read()["fou"].astype(np.float64)
    tr = d.splits["train"]
    mu, sd = raw[tr].mean(0), raw[tr].std(0)
    np.testing.assert_allclose(d.inputs["fou"], (raw - mu) / sd, atol=1e-4)


def test_protocol_recorded_in_run(tmp_path, capsys) -> None:
    out = tmp_path / "r"
    m = fit_mfeat(out, "early_fusion", "--protocol", "tmc")
    capsys.readouterr()
    assert m["protocol"] == "tmc" and m["data"]["splits"]["test"] == 400
    assert "protocol: tmc" in (out / "config.yaml").read_text()


def test_published_rows_only_for_their_protocol() -> None:
    rows = published_rows("physionet2012", "raindrop")
    vit = next(r for r in rows if r["method"] == "ViTST")
    assert vit["metrics"] == {"auroc": "85.1 ± 0.8", "auprc": "51.1 ± 4.1"} and vit["published"]
    assert published_rows("physionet2012", "default") == []
    assert published_rows("mfeat", "tmc")[0]["metrics"]["acc"] == "98.51 ± 0.15"


def test_raindrop_split_never_leaks_test_into_normalisation(data_root) -> None:
    d = load_dataset(
        "physionet2012", root=data_root, protocol="raindrop", split=2, summary=True, summary_encoding="ple"
    )
    assert d.split_sizes() == {"train": 9590, "val": 1199, "test": 1199}
    tr, va, te = (set(d.ids[d.splits[s]].tolist()) for s in ("train", "val", "test"))
    assert not (tr & va) and not (tr & te) and not (va & te) and len(tr | va | te) == 11988
    # the summary's quantile bins and medians are fitted on the train stays only
    from dain.data.transforms import fit_quantile_edges
    from dain.datasets import physionet2012 as P

    parts = [P.load_set(P._set_source(Path(data_root) / "physionet2012", s)) for s in "abc"]
    flat = {int(r): row for p in parts for r, row in zip(p.ids, P.summarize(p).reshape(len(p.ids), -1))}
    raw = np.stack([flat[int(r)] for r in d.ids])
    edges = np.asarray(d.info["norm_stats"]["summary_edges"], dtype=np.float32)
    np.testing.assert_allclose(edges, fit_quantile_edges(raw, d.splits["train"], 16), rtol=1e-6)
    with np.errstate(all="ignore"):
        median = np.nan_to_num(np.nanmedian(raw[d.splits["train"]], axis=0))
    np.testing.assert_allclose(d.info["norm_stats"]["summary_median"], median, rtol=1e-6)
    stats = d.info.get("norm_stats_rows")
    if stats is not None:  # the loader records which rows fitted the statistics
        assert set(np.asarray(stats).tolist()) <= set(d.splits["train"].tolist())
    static = d.inputs["static"][d.splits["train"]][d.mask[d.splits["train"], d.spec.modality_names.index("static")]]
    # z-scored on train rows: train mean ~0 for continuous static columns (Age is column 0)
    assert abs(float(static[:, 0].mean())) < 0.05


@pytest.mark.parametrize("protocol", ["zzz"])
def test_unknown_protocol_is_a_clear_error(protocol: str) -> None:
    from dain.errors import ConfigError

    with pytest.raises(ConfigError, match="protocol"):
        load_dataset("mfeat", protocol=protocol)


def _fake_raindrop_root(root, n_per_set: int = 12):
    """Generated sets a/b/c with outcomes and five RecordID splits, in the Raindrop layout."""
    import json

    d = root / "physionet2012"
    rng = np.random.default_rng(0)
    ids = []
    for s in "abc":
        (d / f"set-{s}").mkdir(parents=True)
        out = ["RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"]
        for i in range(n_per_set):
            rid = {"a": 1000, "b": 2000, "c": 3000}[s] + i
            head = f"Time,Parameter,Value\n00:00,RecordID,{rid}\n00:00,Age,{50 + i}\n00:00,ICUType,2\n"
            rows = "".join(f"{h:02d}:00,HR,{80 + rng.normal(0, 5):.1f}\n" for h in range(0, 48, 6))
            (d / f"set-{s}" / f"{rid}.txt").write_text(head + rows + "03:00,Na,140\n")
            out.append(f"{rid},1,1,5,-1,{int(i % 3 == 0)}")
            ids.append(rid)
        (d / f"Outcomes-{s}.txt").write_text("\n".join(out) + "\n")
    splits = []
    for k in range(5):
        perm = np.random.default_rng(k).permutation(ids).tolist()
        splits.append({"train": perm[:24], "val": perm[24:30], "test": perm[30:]})
    (d / "splits_raindrop.json").write_text(json.dumps({"splits": splits}))
    return root


def test_compare_all_splits_pools_five_splits(tmp_path, capsys, monkeypatch) -> None:
    import json

    from dain.cli import main

    monkeypatch.setenv("DAIN_CACHE", str(tmp_path / "cache"))
    root = _fake_raindrop_root(tmp_path / "data")
    args = ["compare", "--data", "physionet2012", "--data-root", str(root), "--protocol", "raindrop", "--all-splits"]
    args += ["--models", "late_fusion", "--seeds", "1", "--jobs", "2", "--max-epochs", "1", "--set", "hidden=8"]
    assert main(args + ["--out", str(tmp_path / "cmp"), "--json", "--published"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["splits"] == [1, 2, 3, 4, 5]
    auroc = doc["results"]["late_fusion"]["test"]["auroc"]
    assert len(auroc["values"]) == 5 and auroc["std"] == pytest.approx(np.std(auroc["values"]))
    runs = doc["results"]["late_fusion"]["runs"]
    assert [Path(r).parent.name for r in runs] == [f"split{k}" for k in range(1, 6)]
    for k, r in enumerate(runs, start=1):
        m = json.loads((Path(r) / "metrics.json").read_text())
        assert m["protocol"] == "raindrop" and m["data"]["splits"] == {"train": 24, "val": 6, "test": 6}
        assert f"split: {k}" in (Path(r) / "config.yaml").read_text()
    assert "ViTST (published)" in (tmp_path / "cmp" / "compare.md").read_text()
