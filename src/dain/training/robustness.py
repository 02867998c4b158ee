"""``dain compare --robustness``: every finished run re-tested with modalities missing, one table and one plot.

Conditions: the full test split, each single modality dropped from every sample, any extra drop sets named by the
user, and random missingness at rates 0.1 / 0.3 / 0.5 (each present modality of each sample removed with that
probability, never a sample's last one; see :mod:`dain.data.missing`). The random draws use one seed per condition,
so every model loses the same modalities of the same samples. Each run's scores are kept in its
``robustness.json`` with the hash of the weights they scored, so a restarted comparison only evaluates what is new
and a run trained further since (``fit --resume`` to more epochs) is scored again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from dain.data.missing import Missingness, check_missingness, parse_drop
from dain.training.metrics import MONITOR
from dain.validation import json_text, parse_rates

DEFAULT_RATES = (0.1, 0.3, 0.5)
CACHE = "robustness.json"


def conditions(
    modalities: list[str],
    extra_drops: list[tuple[str, ...]] | None = None,
    rates: tuple[float, ...] = DEFAULT_RATES,
    seed: int = 0,
) -> list[Missingness]:
    """Full, each single modality dropped, ``extra_drops``, then each missing rate (seeded)."""
    out = [Missingness()]
    out += [Missingness(drop=(m,)) for m in modalities]
    out += [Missingness(drop=tuple(d)) for d in extra_drops or [] if tuple(d) not in {(m,) for m in modalities}]
    out += [Missingness(rate=float(r), seed=seed) for r in rates if r > 0]
    return out


def score_run(
    run_dir: str | Path, conds: list[Missingness], datasets: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Test metrics of one finished run under every condition (label -> {"test": metrics, "missing": report}),
    reusing the run's ``robustness.json`` for the conditions it already holds, as long as it scored the weights the
    run has now. ``datasets``: loaded datasets by run data config, shared across calls, so runs of the same data and
    split load it once."""
    import yaml

    from dain.config import RunConfig
    from dain.data.missing import with_missing
    from dain.training.runner import evaluate, load_run

    run = Path(run_dir)
    cache_path = run / CACHE
    weights = weights_hash(run)
    saved: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    # scores of other weights (or of a cache written before the hash was kept) are stale: start afresh
    cache: dict[str, Any] = saved.get("scores", {}) if saved.get("weights") == weights else {}
    todo = [c for c in conds if _key(c) not in cache]
    if todo:
        cfg = RunConfig.from_yaml(run / "config.yaml")
        key = yaml.safe_dump({"data": cfg.to_dict()["data"], "seed": cfg.train.seed}, sort_keys=True)
        shared = datasets if datasets is not None else {}
        _, data, model = load_run(run, data=shared.get(key))
        shared[key] = data
        for c in todo:
            d, report = (data, None) if not c.active else with_missing(data, "test", c)
            cache[_key(c)] = {"label": c.label(), "test": evaluate(model, d, "test").metrics, "missing": report}
        cache_path.write_text(json_text({"weights": weights, "scores": cache}))
    return {c.label(): cache[_key(c)] for c in conds}


def weights_hash(run: Path) -> str | None:
    """SHA-256 of the run's ``model.safetensors`` (None without it): what its cached scores were computed with."""
    path = run / "model.safetensors"
    if not path.exists():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _key(c: Missingness) -> str:
    return f"{c.label()} seed {c.seed}" if c.rate else c.label()


def robustness(
    summary: dict[str, Any],
    out: Path,
    modalities: list[str],
    task: str,
    extra_drops: list[tuple[str, ...]] | None = None,
    rates: tuple[float, ...] = DEFAULT_RATES,
    seed: int = 0,
    log=None,
) -> dict[str, Any]:
    """Score every finished run of ``summary`` under every condition; write robustness.json / .md / .png in
    ``out`` and return the aggregate (per model and condition: mean ± std of each test metric and of its change
    from the full test, over the model's runs)."""
    from dain.training.compare import stats

    conds = conditions(modalities, extra_drops, rates, seed)
    labels = [c.label() for c in conds]
    metric = MONITOR[task][0]
    models: dict[str, Any] = {}
    datasets: dict[str, Any] = {}  # each split loaded once, shared by its models
    for m, row in summary["results"].items():
        if not row.get("runs") or "ensemble_of" in row:
            continue
        if log:
            log(f"robustness: {m} ({len(row['runs'])} runs x {len(conds)} conditions)")
        per_run = [score_run(r, conds, datasets) for r in row["runs"]]
        names = sorted({k for pr in per_run for k in pr["full"]["test"]})
        res: dict[str, Any] = {}
        for lab in labels:
            res[lab] = {
                "test": {k: stats([pr[lab]["test"].get(k) for pr in per_run]) for k in names},
                "change": {
                    k: stats([_diff(pr[lab]["test"].get(k), pr["full"]["test"].get(k)) for pr in per_run])
                    for k in names
                },
            }
        models[m] = {"conditions": res, "runs": row["runs"]}
    result = {
        "dataset": summary.get("dataset"),
        "protocol": summary.get("protocol"),
        "metric": metric,
        "conditions": labels,
        "rates": [float(r) for r in rates],
        "seed": seed,
        "std": "population (ddof=0) over runs (seeds x splits)",
        "models": models,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(json_text(result))
    (out / "robustness.md").write_text(robustness_table(result))
    if models:
        result["plot"] = str(robustness_plot(result, out / "robustness.png"))
    result["table"] = str(out / "robustness.md")
    return result


def add_robustness(
    summary: dict[str, Any],
    out: Path,
    extra_drops: list[str | tuple[str, ...]] | None = None,
    rates: str | tuple[float, ...] = DEFAULT_RATES,
    log=None,
) -> None:
    """``dain compare --robustness``: every finished run of ``summary`` re-tested with modalities missing
    (:func:`robustness`); robustness.md / .json / .png beside compare.md, the table appended to it and
    ``summary["robustness"]`` set. ``extra_drops``: sets of modalities to drop together (``"a,b"`` or tuples);
    ``rates``: missing rates (a tuple, or comma-separated as ``--robustness-rates`` takes them)."""
    finished = [r for r in summary["results"].values() if r.get("runs")]
    if not finished:
        return
    first = Path(finished[0]["runs"][0])
    task = json.loads((first / "metrics.json").read_text())["task"]
    with np.load(first / "routing.npz") as z:
        names = [str(n) for n in z["modality_names"]]
    extra = [parse_drop(d) if isinstance(d, str) else tuple(d) for d in extra_drops or []]
    for d in extra:
        check_missingness(names, Missingness(drop=d), "--robustness-drop")
    rates = parse_rates(rates, "--robustness-rates")
    res = robustness(summary, out, names, task, extra, rates, log=log)
    summary["robustness"] = {"table": res["table"], "plot": res.get("plot")}
    table = Path(summary["table"])
    table.write_text(table.read_text() + "\n" + Path(res["table"]).read_text())


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else float(a) - float(b)


def robustness_table(result: dict[str, Any], metric: str | None = None) -> str:
    """Markdown: one row per model, one column per condition; ``metric`` (default the task's) as mean ± std with,
    beside every condition but the full test, its mean change from the full test."""
    metric = metric or result["metric"]
    pct = metric not in ("mae", "mse", "corr")
    k = 100.0 if pct else 1.0
    labels = result["conditions"]
    unit = " (%)" if pct else ""
    lines = [
        f"Robustness on {result['dataset']} (protocol {result.get('protocol') or 'default'}): test {metric}{unit} "
        "with modalities missing; mean ± population std over runs (seeds x splits); in brackets the mean change from "
        f"the full test. Random conditions drawn with seed {result['seed']} (the same samples for every model).",
        "",
        "| model | " + " | ".join(labels) + " | worst change |",
        "|---|" + "---|" * (len(labels) + 1),
    ]
    for m, row in result["models"].items():
        cells = [m]
        worst = None
        for lab in labels:
            s = row["conditions"][lab]["test"].get(metric) or {}
            d = row["conditions"][lab]["change"].get(metric) or {}
            if s.get("mean") is None:
                cells.append("–")
                continue
            cell = f"{s['mean'] * k:.2f} ± {s['std'] * k:.2f}"
            if lab != "full" and d.get("mean") is not None:
                cell += f" ({d['mean'] * k:+.2f})"
                worst = d["mean"] if worst is None else (min(worst, d["mean"]) if pct else max(worst, d["mean"]))
            cells.append(cell)
        cells.append("–" if worst is None else f"{worst * k:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def robustness_plot(result: dict[str, Any], path: Path) -> Path:
    """Test metric against the missing rate (0 = the full test), one line per model, bars = std over runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = result["metric"]
    k = 100.0 if metric not in ("mae", "mse", "corr") else 1.0
    rates = [0.0] + [r for r in result["rates"] if r > 0]
    labels = ["full"] + [Missingness(rate=r, seed=result["seed"]).label() for r in rates[1:]]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for m, row in result["models"].items():
        ys = [(row["conditions"][lab]["test"].get(metric) or {}) for lab in labels]
        mean = np.asarray([np.nan if y.get("mean") is None else y["mean"] * k for y in ys])
        std = np.asarray([0.0 if y.get("std") is None else y["std"] * k for y in ys])
        ax.errorbar(rates, mean, yerr=std, marker="o", capsize=3, label=m, lw=2.2 if m.startswith("dain") else 1.2)
    ax.set_xlabel("missing rate (each modality of each test sample removed with this probability)")
    ax.set_ylabel(f"test {metric}" + (" (%)" if k == 100.0 else ""))
    ax.set_title(f"{result['dataset']}: robustness to missing modalities", fontsize=10)
    ax.set_xticks(rates)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
