"""dain on real data end to end: budget at test time, explain report, bench figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dain.cli import main
from tests.conftest import NO_TREES, fit_mfeat


@pytest.fixture(scope="module")
def dain_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dain") / "run"
    fit_mfeat(out, "dain", *NO_TREES, "--set", "active_agents=3", "--threads", "1", epochs=2, hidden=32)
    return out


def test_dain_metrics_efficiency(dain_run: Path) -> None:
    m = json.loads((dain_run / "metrics.json").read_text())
    eff = m["efficiency"]
    assert eff["num_agents"] == 9 and eff["active_agents_mean"] == pytest.approx(4.0)  # shared + 3 routed
    assert eff["flops_per_sample"] < eff["flops_per_sample_dense"]
    assert eff["comm_bits_per_sample"] > 0


def test_budget_lowers_active_agents_and_flops(dain_run: Path, capsys) -> None:
    got = {}
    for k in (0, 1, 3):
        assert main(["test", "--run", str(dain_run), "--budget", str(k), "--json"]) == 0
        got[k] = json.loads(capsys.readouterr().out)
    assert got[0]["efficiency"]["active_agents_mean"] == pytest.approx(1.0)  # the shared agent alone
    assert got[0]["efficiency"]["comm_bits_per_sample"] == 0  # a lone agent has nobody to talk to
    assert got[0]["efficiency"]["encoders_run"] == 0
    assert got[1]["efficiency"]["active_agents_mean"] == pytest.approx(2.0)
    flops = [got[k]["efficiency"]["flops_per_sample"] for k in (0, 1, 3)]
    assert flops[0] < flops[1] < flops[2]
    # the confidence cascade: between the shared agent alone and the full budget
    assert main(["test", "--run", str(dain_run), "--adaptive", "0.9", "--json"]) == 0
    ada = json.loads(capsys.readouterr().out)
    assert ada["adaptive"] == 0.9
    assert ada["efficiency"]["flops_per_sample"] >= flops[0]
    assert 1.0 <= ada["efficiency"]["active_agents_mean"] <= 4.0


@pytest.mark.parametrize("flag", [["--budget", "-1"], ["--budget", "99"], ["--adaptive", "1.5"]])
def test_out_of_range_budget_is_an_error(dain_run: Path, flag: list[str], capsys) -> None:
    assert main(["test", "--run", str(dain_run), *flag]) == 2
    assert "error:" in capsys.readouterr().err


def test_budget_on_static_model_is_an_error(tmp_path, capsys) -> None:
    out = tmp_path / "lf"
    fit_mfeat(out, "late_fusion")
    capsys.readouterr()
    assert main(["test", "--run", str(out), "--budget", "2"]) == 2
    assert "no agent budget" in capsys.readouterr().err


def test_explain_writes_png_and_html(dain_run: Path, tmp_path, capsys) -> None:
    assert main(["explain", "--run", str(dain_run), "--out", str(tmp_path / "ex"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    names = {Path(f).name for f in res["files"]}
    assert {
        "agent_activation.png",
        "activation_by_class.png",
        "collaboration_graph.png",
        "consensus_weights.png",
        "occlusion.png",
        "report.html",
    } <= names
    html = (tmp_path / "ex" / "report.html").read_text()
    s = res["summary"]
    assert "data:image/png;base64" in html and "unique:fou" in json.dumps(s)
    assert s["active_agents_mean"] == pytest.approx(4.0)
    # top-k fixes the count: the report says so and shows how close the choice was instead of a one-bar histogram
    assert s["active_agents_fixed_by_topk"] and "topk_margin_median" in s
    assert s["class_names"] == [str(c) for c in range(10)]
    occ = s["occlusion"]
    assert set(occ["modalities"]) == {"fou", "fac", "kar", "pix", "zer", "mor"} and len(occ["agents"]) == 9
    assert all(0.0 <= r["change"] <= 1.0 for r in occ["modalities"].values())


def test_explain_reports_the_inference_setting(dain_run: Path, tmp_path, capsys) -> None:
    """The report and summary say which setting calibration chose (a tree blend would be invisible in the figures),
    and that a command-line budget replaced it for the re-run."""
    from dain.explain import setting_text

    run = tmp_path / "run"
    shutil.copytree(dain_run, run)
    m = json.loads((run / "metrics.json").read_text())
    chosen = {"budget": 0, "threshold": None, "tree_weight": 1.0, "tree_folds": 2}
    m["adaptive"] = {**(m.get("adaptive") or {}), "chosen": chosen}
    (run / "metrics.json").write_text(json.dumps(m))
    assert main(["explain", "--run", str(run), "--out", str(tmp_path / "ex"), "--no-occlusion", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["inference_setting"] == chosen and "inference_setting_overridden_by" not in s
    html = (tmp_path / "ex" / "report.html").read_text()
    assert "the trees alone answer" in html and "first 2 fold boosters" in html
    assert setting_text({"budget": None, "threshold": 0.95}) == (
        "Inference setting chosen on validation: the trained budget, a confidence cascade at 0.95."
    )
    assert main(["explain", "--run", str(run), "--out", str(tmp_path / "ex2"), "--budget", "1", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["inference_setting_overridden_by"] == {"budget": 1, "adaptive": None}
    assert "re-ran the test split" in (tmp_path / "ex2" / "report.html").read_text()


def test_explain_of_a_dense_run_shows_no_top_k_margin(tmp_path, capsys) -> None:
    """Dense gating wakes every agent: a fixed count, but no choice, so no top-k margin panel or claim."""
    run = tmp_path / "dense"
    fit_mfeat(run, "dain", *NO_TREES, "--set", "gating=dense", "--threads", "1", epochs=1, hidden=16)
    capsys.readouterr()
    assert main(["explain", "--run", str(run), "--out", str(tmp_path / "ex"), "--no-occlusion", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["active_agents_mean"] == pytest.approx(9.0)  # shared + 8 routed, all available on mfeat
    assert not s["active_agents_fixed_by_topk"] and "topk_margin_median" not in s


def test_explain_without_occlusion_needs_no_model(dain_run: Path, tmp_path, capsys) -> None:
    assert main(["explain", "--run", str(dain_run), "--out", str(tmp_path / "ex"), "--no-occlusion", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert "occlusion" not in s and "consensus_weight_mean" in s


def test_explain_adaptive_shows_agents_per_sample(dain_run: Path, tmp_path, capsys) -> None:
    out = tmp_path / "ada"
    assert main(["explain", "--run", str(dain_run), "--out", str(out), "--adaptive", "0.95", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    dist = s["active_agents_distribution"]
    assert sum(dist.values()) == pytest.approx(1.0) and all(1 <= int(k) <= 4 for k in dist)
    assert (out / "routing.npz").exists() and set(s["encoders_run_frequency"]) == {
        "fou",
        "fac",
        "kar",
        "pix",
        "zer",
        "mor",
    }


def test_bench_reports_figures(capsys) -> None:
    assert (
        main(["bench", "--model", "dain", "--data", "mfeat", "--batch-size", "32", "--set", "hidden=32", "--json"]) == 0
    )
    res = json.loads(capsys.readouterr().out)
    for k in (
        "params",
        "flops_per_sample",
        "flops_per_sample_dense",
        "latency_ms_per_batch",
        "throughput_samples_per_s",
        "train_step_ms",
        "active_agents_mean",
        "comm_bits_per_sample",
    ):
        assert k in res, k


def test_budget_curve_marks_budgets_above_the_trained_one_without_warning_per_point(dain_run: Path) -> None:
    """The frontier's budget curve asks for every budget 0..K on purpose: the ones above the trained budget are
    flagged ``extrapolated`` in the curve instead of a warning for each run and budget."""
    import warnings

    from dain.errors import DainWarning
    from dain.training.frontier import CASCADE_THRESHOLDS, budget_curve

    with warnings.catch_warnings():
        warnings.simplefilter("error", DainWarning)
        points = {p["setting"]: p for p in budget_curve([str(dain_run)])}
    budgets = [f"budget={k}" for k in range(9)]  # K = 8 routed agents on mfeat's defaults
    assert set(points) == set(budgets) | {f"adaptive={c}" for c in CASCADE_THRESHOLDS}
    assert [bool(points[b].get("extrapolated")) for b in budgets] == [k > 3 for k in range(9)]
    flops = [points[b]["flops_per_sample"] for b in budgets]
    assert flops == sorted(flops) and flops[0] < flops[3]


def test_frontier_y_limits_keep_scores_at_or_below_100_and_cut_far_curve_points() -> None:
    from dain.training.frontier import frontier_y_limits

    # BasicMotions: every model at 100 +- 0; matplotlib's automatic range was 98.75 .. 101.25
    lo, hi = frontier_y_limits(98.75, 101.25, [100.0, 100.0], percent=True)
    assert lo == 99.5 and 100.0 < hi <= 100.05
    # a budget-0 curve point far below the models is cut off; a range below 100 is left alone at the top
    assert frontier_y_limits(80.0, 99.4, [98.0], percent=True) == (97.5, 99.4)
    # an error metric (MAE): no 100 ceiling, and the models bound the top (the worse side), never the bottom, so a
    # curve point better than every model stays in view and one far worse is cut off
    lo, hi = frontier_y_limits(0.38, 0.72, [0.51, 0.49], percent=False, lower_is_better=True)
    assert lo == 0.38 and hi == pytest.approx(0.51 + 0.02 * 0.34)


def test_explain_names_the_router_rows_by_what_they_are(tmp_path, capsys) -> None:
    """A token-MoE baseline's router record is per fusion layer (timemoe's is per modality): the report says so,
    even where the layers are as many as the modalities."""
    run = tmp_path / "moe"
    fit_mfeat(run, "moe_topk", "--threads", "1", "--set", "fusion_layers=6", epochs=1)
    capsys.readouterr()
    assert main(["explain", "--run", str(run), "--out", str(tmp_path / "ex"), "--no-occlusion", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["summary"]
    assert s["router_probs_rows"] == [f"layer {i}" for i in range(6)]


def test_frontier_marks_budgets_above_the_trained_one(tmp_path, monkeypatch) -> None:
    """Curve points the model was not trained for (budget above its own) are labelled with a * and drawn apart."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.axes import Axes

    from dain.training.frontier import plot_frontier

    labels: list[str] = []
    real = Axes.annotate
    monkeypatch.setattr(Axes, "annotate", lambda self, text, *a, **k: labels.append(text) or real(self, text, *a, **k))
    curve = [
        {"setting": "budget=1", "metric": 0.9, "flops_per_sample": 1e5},
        {"setting": "budget=2", "metric": 0.95, "flops_per_sample": 2e5},
        {"setting": "budget=3", "metric": 0.96, "flops_per_sample": 3e5, "extrapolated": True},
    ]
    summary = {
        "dataset": "x",
        "results": {
            "dain": {
                "test": {"acc": {"mean": 0.95, "std": 0.01}},
                "efficiency": {"flops_per_sample": {"mean": 2e5}},
                "budget_curve": curve,
            }
        },
    }
    assert plot_frontier(summary, tmp_path / "f.png", "acc").exists()
    assert labels == ["k=1", "k=2", "k=3*"]
