"""Accuracy against cost for a finished comparison: CPU latency measured side by side in one process, DAIN's budget
curve (the same trained runs re-evaluated at every test-time budget and with the confidence cascade), and the
accuracy-vs-FLOPs plot that ``dain compare`` writes as ``frontier.png``.

Latency: every run of every model (its seeds / splits) is loaded, and all are timed on 256 test rows of their own
split, eval mode, no gradients, one CPU thread, in interleaved rounds, so that machine load affects every model alike;
a model's latency is the mean over its runs of each run's median (the same runs its mean FLOPs come from)."""

from __future__ import annotations

import json
import statistics
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dain.errors import DainWarning
from dain.training.metrics import MONITOR, lower_is_better
from dain.validation import budget_is_extrapolated

CASCADE_THRESHOLDS = (0.8, 0.9, 0.95, 0.99)


def primary_metric(task: str) -> str:
    """The metric a frontier plots: the task's monitored metric (acc, auroc, macro_f1, mae)."""
    return MONITOR[task][0]


def measure_latency(
    run_dirs: Mapping[str, str | Sequence[str]], batch_size: int = 256, rounds: int = 7, repeats: int = 3
) -> dict:
    """Milliseconds per batch of ``batch_size`` test rows for each model, timed side by side (one thread): every run
    of a model (its seeds / splits; a single folder is one run) is timed in the same interleaved rounds, and the
    model's figure is the mean over its runs of each run's median, so that it matches the table's mean FLOPs (runs of
    one model may be calibrated to different inference settings)."""
    from dain.data.spec import make_batch
    from dain.training.runner import load_run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        models, batches, owner = [], [], []
        for name, runs in run_dirs.items():
            for run in [runs] if isinstance(runs, (str, Path)) else runs:
                try:
                    _, data, model = load_run(run)
                except Exception:  # a run that cannot be reloaded gets no latency, never breaks the table
                    continue
                rows = np.resize(np.asarray(data.splits["test"]), batch_size)
                models.append(model.eval())
                batches.append(make_batch(data, rows))
                owner.append(name)
        times: list[list[float]] = [[] for _ in models]
        with torch.no_grad():
            for m, b in zip(models, batches):  # warm-up
                m(b)
            for _ in range(rounds):
                for i, (m, b) in enumerate(zip(models, batches)):
                    t0 = time.perf_counter()
                    for _ in range(repeats):
                        m(b)
                    times[i].append((time.perf_counter() - t0) / repeats)
    finally:
        torch.set_num_threads(threads)
    per: dict[str, list[float]] = {}
    for name, t in zip(owner, times):
        per.setdefault(name, []).append(statistics.median(t))
    return {n: round(statistics.fmean(v) * 1e3, 3) for n, v in per.items()}


def set_test_setting(model: torch.nn.Module, budget: int | None = None, adaptive: float | None = None) -> None:
    """Put a DAIN model at one test-time setting, from its trained top-k (``None`` for both: the trained top-k
    itself); a budget above the trained one is asked for on purpose here, so its extrapolation warning is silenced."""
    from dain.training.runner import apply_budget

    model.set_budget(None)
    model.set_gating(model.trained_gating, model.cfg.threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DainWarning)
        apply_budget(model, budget, adaptive)


def budget_curve(run_dirs: list[str], split: str = "test") -> list[dict[str, Any]]:
    """Each point: a test-time setting (``budget=k`` or ``adaptive=c``) with the mean metric and mean FLOPs/sample
    over ``run_dirs`` (the seeds of one DAIN model), the trained weights unchanged. Budgets above the trained one
    are marked ``extrapolated`` (the curve asks for them on purpose: no warning per run and budget)."""
    from dain.training.runner import efficiency, evaluate, load_run

    per: dict[str, list[tuple[float, float]]] = {}
    extrapolated: set[str] = set()
    for run in run_dirs:
        _, data, model = load_run(run)
        metric = primary_metric(data.spec.task)
        K = int(model.num_agents) - 1
        settings = [("budget", k) for k in range(K + 1)] + [("adaptive", c) for c in CASCADE_THRESHOLDS]
        for kind, v in settings:
            if kind == "budget":
                set_test_setting(model, budget=v)
                if budget_is_extrapolated(model, v):
                    extrapolated.add(f"{kind}={v}")
            else:
                set_test_setting(model, adaptive=v)
            res = evaluate(model, data, split)
            eff = efficiency(model, data, res.stats)
            if eff.get("flops_per_sample") is None:  # counting failed (recorded in the run): no point for it
                continue
            per.setdefault(f"{kind}={v}", []).append((float(res.metrics[metric]), float(eff["flops_per_sample"])))
    return [
        {
            "setting": s,
            "metric": float(np.mean([a for a, _ in v])),
            "metric_std": float(np.std([a for a, _ in v])),
            "flops_per_sample": float(np.mean([f for _, f in v])),
            "runs": len(v),
            **({"extrapolated": True} if s in extrapolated else {}),
        }
        for s, v in per.items()
    ]


def add_frontier(
    summary: dict[str, Any],
    out: Path,
    task: str,
    latency: bool = True,
    curves: bool = True,
    curve_runs: int | None = None,
    latency_runs: int | None = None,
) -> Path:
    """Add ``latency_ms_b256`` and ``latency_ms_b1`` to every row and ``budget_curve`` to DAIN rows of ``summary``
    (in place) and write ``out/frontier.png``; returns the plot's path. ``curve_runs``: re-evaluate at most that
    many runs of each DAIN model for its budget curve; ``latency_runs``: time at most that many runs of each model
    (default, both: all)."""
    rows = {m: r for m, r in summary["results"].items() if "test" in r and r.get("runs")}
    if latency:
        runs = {m: r["runs"][:latency_runs] for m, r in rows.items() if "ensemble_of" not in r}
        for bs in (256, 1):  # throughput-style batches and one request at a time
            for m, ms in measure_latency(runs, batch_size=bs, rounds=7 if bs > 1 else 15).items():
                rows[m]["efficiency"][f"latency_ms_b{bs}"] = ms
    if curves:
        for m, r in rows.items():
            if m.startswith("dain") and "ensemble_of" not in r and m != "dain_dense":
                r["budget_curve"] = budget_curve(r["runs"][:curve_runs])
    return plot_frontier(summary, out / "frontier.png", primary_metric(task))


def add_frontier_table(summary: dict[str, Any], out: Path, log=None) -> None:
    """``dain compare``'s frontier step: latency side by side, DAIN budget curves and frontier.png for a finished
    comparison (in place, see :func:`add_frontier`); rewrites compare.json / compare.md in ``out``. ``log``: where
    the one progress line goes (``None``: nowhere, as under ``--quiet``)."""
    from dain.training.compare import markdown_table
    from dain.validation import json_text

    finished = [r for r in summary["results"].values() if r.get("runs")]
    if not finished:
        return
    task = json.loads((Path(finished[0]["runs"][0]) / "metrics.json").read_text())["task"]
    if log:
        log("measuring latency side by side and DAIN budget curves ...")
    with warnings.catch_warnings():
        # the curve sweeps every budget 0..K on purpose: no "above the trained budget" warning per point
        warnings.filterwarnings("ignore", message="--budget", category=DainWarning)
        summary["frontier_plot"] = str(add_frontier(summary, out, task))
    table = Path(summary["table"])
    head = table.read_text().split("\n", 1)[0]
    body = markdown_table(summary).split("\n", 1)[1]
    table.write_text(head + "\n" + body)
    (out / "compare.json").write_text(json_text(summary))


def frontier_y_limits(
    lo: float, hi: float, model_worst: list[float], percent: bool, lower_is_better: bool = False
) -> tuple[float, float]:
    """The plot's y range from matplotlib's automatic one: the models' worst ends (mean - 2 std of a score, mean + 2
    std of an error) bound the worse side, so a curve point far worse than every model (budget 0 of an ablation) is
    cut off while the better side is never cut; a score in % never shows an axis above 100 (on BasicMotions every
    model scores 100 and the automatic range went to 101.25)."""
    if model_worst:
        margin = 0.5 if percent else 0.02 * max(abs(hi - lo), 1e-9)
        if lower_is_better:
            hi = min(hi, max(model_worst) + margin)
        else:
            lo = max(lo, min(model_worst) - margin)
    if percent:
        hi = min(hi, 100.0 + 0.05 * max(100.0 - lo, 1.0))
    return lo, hi


def plot_frontier(summary: dict[str, Any], path: Path, metric: str) -> Path:
    """Accuracy (or AUROC, ...) against FLOPs/sample on a log axis: one point per model with its seed spread, and
    each DAIN budget curve as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    scale = 1.0 if metric in ("mae", "mse") else 100.0
    for m, r in summary["results"].items():
        st = r.get("test", {}).get(metric)
        fl = (r.get("efficiency", {}).get("flops_per_sample") or {}).get("mean")
        if not st or st.get("mean") is None or not fl:
            continue
        is_dain = m.startswith("dain")
        ax.errorbar(
            fl,
            st["mean"] * scale,
            yerr=st["std"] * scale,
            fmt="*" if is_dain else "o",
            ms=11 if is_dain else 6,
            capsize=3,
            label=m,
        )
        curve = r.get("budget_curve")
        if curve:
            pts = sorted(
                (p["flops_per_sample"], p["metric"] * scale, p["setting"], bool(p.get("extrapolated"))) for p in curve
            )
            line = ax.plot(
                [p[0] for p in pts], [p[1] for p in pts], "--", lw=1, alpha=0.8, label=f"{m}: budget / cascade"
            )
            extra = [p for p in pts if p[3]]
            if extra:  # budgets above the trained one: asked of a model trained to wake fewer agents
                ax.plot(
                    [p[0] for p in extra],
                    [p[1] for p in extra],
                    "o",
                    mfc="none",
                    color=line[0].get_color(),
                    label=f"{m}: budgets above the trained one (*)",
                )
            for x, y, s, above in pts:
                tag = s.replace("budget=", "k=").replace("adaptive=", "c=") + ("*" if above else "")
                ax.annotate(tag, (x, y), fontsize=6, alpha=0.7)
    lower = lower_is_better(metric)
    worst = [
        (r["test"][metric]["mean"] + (2 if lower else -2) * (r["test"][metric]["std"] or 0.0)) * scale
        for r in summary["results"].values()
        if r.get("test", {}).get(metric, {}).get("mean") is not None
    ]
    ax.set_ylim(*frontier_y_limits(*ax.get_ylim(), worst, percent=scale == 100.0, lower_is_better=lower))
    ax.set_xscale("log")
    ax.set_xlabel("inference FLOPs per sample (log scale; everything a prediction costs)")
    ax.set_ylabel(f"test {metric}" + (" (%)" if scale == 100.0 else ""))
    ax.set_title(f"{summary.get('dataset')} ({summary.get('protocol', 'default')}): accuracy vs compute", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
