"""``dain compare``: every model x seed on identical splits, mean ± std tables (markdown + JSON).

Each (model, seed) is an independent ``fit`` (in this process, or in ``jobs`` parallel subprocesses); a failing model
fails its row with the error message, never the whole comparison.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from dain.config import RunConfig
from dain.errors import DainError
from dain.validation import json_text

EFFICIENCY_COLUMNS = ("params", "flops_per_sample", "active_agents_mean", "comm_bits_per_sample")


def _one(cfg: RunConfig, run_dir: Path, jobs: int) -> dict[str, Any]:
    from dain.training.runner import fit_run

    if (run_dir / "metrics.json").exists():  # finished earlier: reuse (compare is restartable; checked in run_compare)
        return json.loads((run_dir / "metrics.json").read_text())
    if jobs <= 1:
        return fit_run(cfg, run_dir, progress=False)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / "request.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dain.cli",
            "fit",
            "--config",
            str(cfg_path),
            "--out",
            str(run_dir),
            "--json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        silent = f"the fit process exited with code {proc.returncode}, no message"
        msg = (proc.stderr.strip().splitlines() or [silent])[-1]
        raise DainError(msg)
    return json.loads(proc.stdout)


# settings that do not change what a run computes: a restarted compare may find the data elsewhere or use other --jobs
_REUSE_IGNORED = ("data.root", "train.num_threads")


def config_differences(planned: RunConfig, saved: RunConfig) -> list[str]:
    """The data, model and train fields where a finished run's ``saved`` config differs from the ``planned`` one,
    as ``"field: saved -> planned"``. The planned model params are expanded to every field first (the saved ones
    are); a planned ``auto`` the saved run resolved from its data (dain's ``tree_agent``) counts as equal."""
    from dain.models.base import config_to_dict, make_config
    from dain.training.runner import config_fields

    if planned.model.name != saved.model.name:
        return [f"model.name: {saved.model.name} -> {planned.model.name}"]
    plan = copy.deepcopy(planned)
    plan.model.params = config_to_dict(make_config(planned.model.name, planned.model.params))
    a, b = config_fields(saved), config_fields(plan)
    diff = []
    for k in sorted(set(a) | set(b)):
        if k in _REUSE_IGNORED or a.get(k) == b.get(k) or (b.get(k) == "auto" and k.startswith("model.params.")):
            continue
        diff.append(f"{k}: {a.get(k, '(unset)')} -> {b.get(k, '(unset)')}")
    return diff


def check_reusable(cfg: RunConfig, run_dir: Path) -> None:
    """A finished run in ``run_dir`` is reused only if its config.yaml is the planned ``cfg``; otherwise a
    :class:`DainError` naming the differing fields (the folder holds another comparison's run)."""
    saved = run_dir / "config.yaml"
    if not saved.exists():  # nothing to check against (cannot happen for runs this version wrote)
        return
    diff = config_differences(cfg, RunConfig.from_yaml(saved))
    if diff:
        raise DainError(
            f"{run_dir} holds a finished run with another config ({'; '.join(diff)}); "
            "use another --out or delete that folder"
        )


def plan_fits(
    base: RunConfig,
    models: list[str],
    seeds: list[int],
    out: Path,
    model_params: dict[str, dict[str, Any]] | None = None,
) -> list[tuple[str, int, RunConfig, Path]]:
    """One ``(model, seed, config, run_dir)`` per fit of a comparison on ``base``'s data and split."""
    tasks = []
    for m in models:
        for s in seeds:
            cfg = copy.deepcopy(base)
            cfg.model.name = m
            cfg.model.params = dict((model_params or {}).get(m, {}))
            cfg.train.seed = s
            split = cfg.data.options.get("split")
            tag = f"{m}-s{s}" + (f"-split{split}" if split is not None else "")
            tasks.append((m, s, cfg, out / tag))
    return tasks


def execute_fits(
    tasks: list[tuple[str, int, RunConfig, Path]], jobs: int = 1, log=None
) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """Run the fits (``jobs`` parallel subprocesses when > 1); ``(model, metrics or None, error or None)`` each."""

    def work(t):
        m, s, cfg, d = t
        split = cfg.data.options.get("split")
        where = f"{m} seed {s}" + (f" split {split}" if split is not None else "")
        try:
            r = _one(cfg, d, jobs)
            if log:
                log(f"{where}: " + ", ".join(f"{k}={v:.4f}" for k, v in r["test"].items()))
            return m, r, None
        except Exception as e:  # one failing row never stops the comparison
            if log:
                log(f"{where}: FAILED: {e}")
            return m, None, f"{type(e).__name__}: {e}" if not isinstance(e, DainError) else str(e)

    if jobs > 1:
        with ThreadPoolExecutor(jobs) as ex:
            return list(ex.map(work, tasks))
    return [work(t) for t in tasks]


def seed_ensemble(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Test metrics of the mean predicted probability over several finished runs of one model (a deep ensemble,
    Lakshminarayanan et al. 2017), read from each run's ``routing.npz`` (test logits, row index, target)."""
    from dain.training.metrics import compute_metrics, predictions

    if len(runs) < 2:
        raise DainError("a seed ensemble needs at least two finished runs")
    recs = []
    for r in runs:
        with np.load(Path(r["run_dir"]) / "routing.npz") as z:
            recs.append({k: z[k] for k in ("index", "logits", "target")})
    for rec in recs[1:]:
        if not np.array_equal(rec["index"], recs[0]["index"]):
            raise DainError(
                "seed ensemble: the seeds were tested on different rows (each seed drew its own split); "
                "use a protocol with a fixed test split (e.g. --protocol tmc or raindrop)"
            )
    task = runs[0]["task"]
    probs = torch.stack([predictions(task, torch.from_numpy(rec["logits"])) for rec in recs]).mean(0).double()
    eps = 1e-7
    if task == "multiclass":
        logits = probs.clamp_min(eps).log()
    elif task in ("binary", "multilabel"):
        logits = torch.logit(probs, eps)
    else:
        logits = probs
    logits = logits.reshape(recs[0]["logits"].shape).float()
    num_outputs = logits.shape[-1] if logits.ndim == 2 else 1
    return compute_metrics(task, logits, torch.from_numpy(recs[0]["target"]), num_outputs)


def _ensemble_row(m: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A table row for the seed ensemble of ``runs``: its test metrics, summed size and cost, the members' runs."""
    row: dict[str, Any] = {
        "test": {k: stats([v]) for k, v in seed_ensemble(runs).items()},
        "val": {},
        "efficiency": {},
        "time": {
            "seconds_per_epoch": stats([sum(r["time"]["seconds_per_epoch"] for r in runs)]),
            "fit_seconds": stats([sum(r["time"]["fit_seconds"] for r in runs)]),
            "prepare_seconds": stats([sum(r["time"].get("prepare_seconds", 0.0) for r in runs)]),
            "epochs": stats([sum(r["time"].get("epochs", 1) for r in runs)]),
        },
        "runs": [r["run_dir"] for r in runs],
        "ensemble_of": m,
    }
    for c in ("params", "flops_per_sample"):
        vals = [r["efficiency"].get(c) for r in runs]
        if all(v is not None for v in vals):
            row["efficiency"][c] = stats([float(sum(vals))])
    return row


def summarize_fits(
    base: RunConfig,
    models: list[str],
    seeds: list[int],
    outs: list[tuple[str, dict[str, Any] | None, str | None]],
    out: Path,
    ensemble: bool = False,
) -> dict[str, Any]:
    """Aggregate finished fits into compare.json / compare.md in ``out``; ``ensemble`` adds, for each model with two
    or more finished seeds, a row ``<model>×N`` scoring the mean of their predicted probabilities."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in models}
    errors: dict[str, str] = {}
    for m, r, err in outs:
        if r is not None:
            results[m].append(r)
        else:
            errors[m] = err or "failed"
    summary = aggregate(base, seeds, results, errors)
    if ensemble:
        for m in models:
            if len(results[m]) >= 2:
                try:
                    row = _ensemble_row(m, results[m])
                except DainError as e:
                    row = {"error": str(e)}
                summary["results"][f"{m}×{len(results[m])}"] = row
    (out / "compare.json").write_text(json_text(summary))  # standard JSON: NaN values become null
    (out / "compare.md").write_text(markdown_table(summary))
    summary["table"] = str(out / "compare.md")
    return summary


def run_compare(
    base: RunConfig,
    models: list[str],
    seeds: list[int],
    out: Path,
    jobs: int = 1,
    model_params: dict[str, dict[str, Any]] | None = None,
    log=None,
    ensemble: bool = False,
    splits: list[int | None] | None = None,
) -> list[dict[str, Any]]:
    """Fit every model for every seed on each protocol split (``None``: ``base``'s own split, results in ``out``;
    ``k``: split k, results in ``out/split<k>``) and summarise each split. All fits share one pool of ``jobs``
    workers, so splits run side by side. Returns one summary per split, in order."""
    plans = []
    for sp in splits or [None]:
        cfg = copy.deepcopy(base)
        if sp is not None:
            cfg.data.options["split"] = sp
        where = out if sp is None else out / f"split{sp}"
        plans.append((cfg, where, plan_fits(cfg, models, seeds, where, model_params)))
    fits = [t for _, _, tasks in plans for t in tasks]
    for _, _, planned, run_dir in fits:  # before any training: a stale folder fails the comparison, not one row
        if (run_dir / "metrics.json").exists():
            check_reusable(planned, run_dir)
    done = execute_fits(fits, jobs, log)
    summaries, i = [], 0
    for cfg, where, tasks in plans:
        summaries.append(summarize_fits(cfg, models, seeds, done[i : i + len(tasks)], where, ensemble))
        i += len(tasks)
    return summaries


def compare(
    base: RunConfig,
    models: list[str],
    seeds: list[int],
    out: Path,
    *,
    frontier: bool = True,
    robustness: dict[str, Any] | None = None,
    published: bool = False,
    **fit: Any,
) -> dict[str, Any]:
    """``dain compare`` from Python: :func:`run_compare` (``fit``: its jobs, model_params, log, ensemble, splits),
    the splits pooled (:func:`merge_splits`), failures checked (:func:`check_finished`), then optionally the
    latency / budget-curve frontier, the robustness re-test (``robustness``: keyword arguments of
    :func:`dain.training.robustness.add_robustness`, ``{}`` for its defaults) and the published results of the
    protocol. Returns the summary; its ``table`` is the compare.md written."""
    log = fit.get("log")
    summaries = run_compare(base, models, seeds, out, **fit)
    summary = summaries[0] if len(summaries) == 1 else merge_splits(summaries, out)
    check_finished(summaries, out)
    if frontier:
        from dain.training.frontier import add_frontier_table

        add_frontier_table(summary, out, log)
    if robustness is not None:
        from dain.training.robustness import add_robustness

        add_robustness(summary, out, log=log, **robustness)
    if published:
        from dain.published import append_published, published_rows

        summary["published"] = published_rows(base.data.name, base.data.options.get("protocol", "default"))
        append_published(Path(summary["table"]), summary["published"])
    return summary


def merge_splits(summaries: list[dict], out: Path) -> dict:
    """Pool runs of several protocol splits: one value per (split, seed); stats over all of them."""
    merged = dict(summaries[0])
    merged["splits"] = list(range(1, len(summaries) + 1))
    merged["results"] = {}
    for m in summaries[0]["results"]:
        rows = [s["results"].get(m) for s in summaries]
        if any(r is None for r in rows):  # a seed-ensemble row of a model that lost seeds on some split
            continue
        if any("test" not in r for r in rows):
            merged["results"][m] = {"error": next(r.get("error") for r in rows if "test" not in r)}
            continue
        row = {
            "test": {},
            "val": {},
            "efficiency": {},
            "time": {},
            "runs": [x for r in rows for x in r["runs"]],
        }
        for part in ("test", "val", "efficiency", "time"):
            for k in rows[0][part]:
                row[part][k] = stats([v for r in rows for v in r[part][k]["values"]])
        if "ensemble_of" in rows[0]:
            row["ensemble_of"] = rows[0]["ensemble_of"]
        merged["results"][m] = row
    (out / "compare.json").write_text(json_text(merged))
    splits = merged["splits"]
    table = markdown_table(merged).replace("seeds", f"splits {splits[0]}..{splits[-1]} x seeds", 1)
    (out / "compare.md").write_text(table.replace("over seeds", "over splits x seeds", 1))
    merged["table"] = str(out / "compare.md")
    return merged


def check_finished(summaries: list[dict], out: Path) -> None:
    """A comparison where every run failed is an error (exit 2); one where some failed, a warning."""
    from dain.validation import warn

    rows = [(m, r) for s in summaries for m, r in s["results"].items()]
    failed: dict[str, str] = {}
    for m, r in rows:
        if "error" in r:
            failed.setdefault(m, r["error"])
    if failed and not any(r.get("runs") for _, r in rows):
        first = next(iter(failed.items()))
        raise DainError(
            f"every run failed ({', '.join(failed)}); first error: {first[0]}: {first[1]} (table: {out / 'compare.md'})"
        )
    if failed:
        warn(f"some runs failed: {'; '.join(f'{m}: {e}' for m, e in failed.items())} (see {out / 'compare.md'})")


def stats(values: list[float]) -> dict[str, Any]:
    """Mean and population std (ddof=0) of ``values``, missing (None / NaN) ones skipped; the values kept as given."""
    v = np.asarray([x for x in values if x is not None and x == x], dtype=float)
    if len(v) == 0:
        return {"mean": None, "std": None, "values": values}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=0)), "values": [float(x) for x in values]}


def aggregate(base: RunConfig, seeds: list[int], results: dict[str, list[dict]], errors: dict[str, str]) -> dict:
    out: dict[str, Any] = {
        "dataset": base.data.name,
        "protocol": base.data.options.get("protocol", "default"),
        "seeds": seeds,
        "std": "population (ddof=0)",
        "results": {},
    }
    for m, runs in results.items():
        if not runs:
            out["results"][m] = {"error": errors.get(m, "no run finished")}
            continue
        metrics = sorted({k for r in runs for k in r["test"]})
        row: dict[str, Any] = {
            "test": {k: stats([r["test"].get(k) for r in runs]) for k in metrics},
            "val": {k: stats([r["val"].get(k) for r in runs]) for k in metrics},
            "efficiency": {},
            "time": {
                "seconds_per_epoch": stats([r["time"]["seconds_per_epoch"] for r in runs]),
                "fit_seconds": stats([r["time"]["fit_seconds"] for r in runs]),
                # runs saved before it was recorded: 0 (their set-up time is unknown)
                "prepare_seconds": stats([r["time"].get("prepare_seconds", 0.0) for r in runs]),
                "epochs": stats([r["time"].get("epochs") for r in runs]),
            },
            "runs": [r["run_dir"] for r in runs],
        }
        for c in EFFICIENCY_COLUMNS + ("flops_per_sample_dense", "num_agents"):
            vals = [r["efficiency"].get(c) for r in runs]
            if any(v is not None for v in vals):
                row["efficiency"][c] = stats(vals)
        if m in errors:
            row["error"] = errors[m]
        out["results"][m] = row
    return out


def _fmt(s: dict[str, Any] | None, pct: bool) -> str:
    if not s or s.get("mean") is None:
        return "–"
    k = 100.0 if pct else 1.0
    return f"{s['mean'] * k:.2f} ± {s['std'] * k:.2f}"


def _num(x: float | None) -> str:
    if x is None:
        return "–"
    for unit, d in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= d:
            return f"{x / d:.2f}{unit}"
    return f"{x:.1f}"


def _time_cells(t: dict[str, Any]) -> list[str]:
    """s/epoch and total fit seconds, the set-up before training included (DAIN's tree cross-fit); models trained
    without epochs (gbm: epochs 0) show "–" for s/epoch."""
    epochs = (t.get("epochs") or {}).get("mean")
    spe = (t.get("seconds_per_epoch") or {}).get("mean")
    fit = (t.get("fit_seconds") or {}).get("mean")
    fit = None if fit is None else fit + ((t.get("prepare_seconds") or {}).get("mean") or 0.0)
    return ["–" if spe is None or epochs == 0 else f"{spe:.3f}", "–" if fit is None else f"{fit:.1f}"]


def markdown_table(summary: dict[str, Any]) -> str:
    res = summary["results"]
    metrics: list[str] = []
    for row in res.values():
        for k in row.get("test", {}):
            if k not in metrics:
                metrics.append(k)
    head = ["model"] + [f"test {m} (%)" if m not in ("mae", "mse", "corr") else f"test {m}" for m in metrics]
    head += ["params", "FLOPs/sample", "active agents", "s/epoch", "fit s"]
    has_lat = any("latency_ms_b256" in row.get("efficiency", {}) for row in res.values())
    if has_lat:
        head += ["CPU ms/256", "CPU ms/1"]
    ens = any("ensemble_of" in row for row in res.values())
    lines = [
        f"Dataset {summary['dataset']} (protocol {summary.get('protocol', 'default')}), seeds {summary['seeds']}; "
        "mean ± population std over seeds."
        + (" A row `model×N` scores the mean predicted probability of the N seeds (seed ensemble)." if ens else ""),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for m, row in res.items():
        if "test" not in row:
            lines.append(f"| {m} | " + " | ".join(["FAILED: " + row.get("error", "")] + [""] * (len(head) - 2)) + " |")
            continue
        cells = [m] + [_fmt(row["test"].get(k), k not in ("mae", "mse", "corr")) for k in metrics]
        eff = row["efficiency"]
        cells.append(_num((eff.get("params") or {}).get("mean")))
        cells.append(_num((eff.get("flops_per_sample") or {}).get("mean")))
        aa = (eff.get("active_agents_mean") or {}).get("mean")
        cells.append(
            "–" if aa is None else f"{aa:.2f}/{int(eff['num_agents']['mean'])}" if "num_agents" in eff else f"{aa:.2f}"
        )
        cells += _time_cells(row["time"])
        if has_lat:
            for key in ("latency_ms_b256", "latency_ms_b1"):
                lat = eff.get(key)
                cells.append("–" if lat is None else f"{lat:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    for m, row in res.items():
        if "error" in row and "test" in row:
            lines.append(f"\n{m}: some runs failed: {row['error']}")
    return "\n".join(lines) + "\n"
