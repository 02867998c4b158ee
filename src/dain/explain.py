"""``dain explain``: agent activation, collaboration graph and role importance of a trained run (PNG + HTML).

Reads the per-sample routing record (``routing.npz``) that ``fit`` saved for the test split, so it needs no data or
model at explain time. Works for any model with a routing record: DAIN (gates, active set, consensus weights,
message graph), I2MoE (expert weights), MoE models (router probabilities).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from dain.errors import DainError
from dain.validation import json_text


def _labels(target: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, str]:
    """Per-sample class for the by-class plots and what it is: the label, the label above/below the median
    (regression), or the predicted label (multilabel)."""
    if target.ndim == 1 and np.all(np.mod(target, 1) == 0):
        return target.astype(int), "class"
    if target.ndim == 1:
        return (target > np.median(target)).astype(int), "target vs median"
    return logits.argmax(-1), "predicted label"


def _class_names(classes: np.ndarray, names: list[str], kind: str) -> list[str]:
    if kind == "target vs median":
        return ["≤ median" if c == 0 else "> median" for c in classes]
    return [names[c] if 0 <= c < len(names) else str(c) for c in classes]


def _topk_margin(scores: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Per sample: lowest controller score among the chosen routed agents minus the highest among the available
    routed agents left out (how close the top-k choice was); NaN where either set is empty."""
    s, a = scores[:, 1:], active[:, 1:].astype(bool)
    avail = np.isfinite(s)
    chosen = np.where(a, s, np.inf).min(1)
    left = np.where(avail & ~a, s, -np.inf).max(1)
    ok = np.isfinite(chosen) & np.isfinite(left)
    return np.where(ok, chosen - np.where(ok, left, 0.0), np.nan)


def _router_mean(probs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Mean router probability per (row, expert) ``[rows, E]`` of ``probs [B, rows, ..., E]`` (rows: modalities or
    fusion layers) over the samples and positions where ``mask [B, rows, ...]`` (the model's real tokens) is set,
    so padding and unobserved tokens, which carry no data, do not bias it; over every position when there is no
    mask (older records). A row without any real token is NaN. ``probs [B, E]``: one row, the mean over samples."""
    if probs.ndim < 3:
        return probs.mean(0, keepdims=True)
    B, rows, E = probs.shape[0], probs.shape[1], probs.shape[-1]
    p = probs.reshape(B, rows, -1, E).astype(np.float64)
    w = np.ones(p.shape[:3]) if mask is None else mask.reshape(B, rows, -1).astype(bool).astype(np.float64)
    n = w.sum((0, 2))[:, None]
    total = np.einsum("brt,brte->re", w, p)
    return np.where(n > 0, total / np.maximum(n, 1.0), np.nan)


def _load_for_explain(run: Path, need: bool) -> tuple[Any, Any, str | None]:
    """The run's dataset and model when the data can be read; else (None, None, why)."""
    from dain.training.runner import load_run

    try:
        _, data, model = load_run(run)
        return data, model, None
    except DainError as e:
        if need:
            raise
        return None, None, str(e)


def explain_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    budget: int | None = None,
    adaptive: float | None = None,
    occlusion: bool = True,
    missing: Any = None,
) -> dict[str, Any]:
    """Write explain/*.png, explain/report.html and explain/summary.json for a finished run.

    ``budget`` / ``adaptive`` (agent models): re-evaluate the test split with that test-time routing first (the
    record is written to the output folder) and explain it instead of the record saved by ``fit``. ``occlusion``:
    also measure how much the test predictions change when each modality (and DAIN agent) is removed
    (:mod:`dain.occlusion`; needs the run's dataset, skipped with a note in the report when it cannot be read).
    ``missing`` (a :class:`dain.data.missing.Missingness`): explain the test split re-run with those modalities
    removed, e.g. which agents take over when the labs are missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run_dir)
    rec_path = run / "routing.npz"
    if not rec_path.exists():
        raise DainError(f"{run} has no routing.npz (is it a finished run directory?)")
    out = Path(out_dir) if out_dir else run / "explain"
    out.mkdir(parents=True, exist_ok=True)
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
    rec = dict(np.load(rec_path, allow_pickle=False))
    if not any(k.startswith("routing__") for k in rec):
        raise DainError(
            f"model {metrics.get('model', '?')} of {run} records no routing (static fusion models "
            "have nothing to explain; use dain, i2moe, moe_topk, fusemoe, flexmoe or timemoe)"
        )
    removed = missing is not None and missing.active
    routed = budget is not None or adaptive is not None or removed
    data = model = None
    load_error = None
    if routed or occlusion:
        data, model, load_error = _load_for_explain(run, need=routed)
    if routed:
        from dain.training.runner import apply_budget, evaluate, save_routing

        if budget is not None or adaptive is not None:
            apply_budget(model, budget, adaptive)
        if removed:
            from dain.data.missing import with_missing

            data, missing_report = with_missing(data, "test", missing)
        rec_path = out / "routing.npz"
        rerun = evaluate(model, data, "test", collect_routing=True)
        save_routing(rec_path, rerun, model)
        rec = dict(np.load(rec_path, allow_pickle=False))
    routing = {k.removeprefix("routing__"): v for k, v in rec.items() if k.startswith("routing__")}
    names = [str(n) for n in rec.get("agent_names", [])]
    mods = [str(m) for m in rec.get("modality_names", [])]
    if data is not None:
        class_names = [str(c) for c in data.spec.class_names]
    else:
        class_names = [str(c) for c in rec.get("class_names", [])]
    y, y_kind = _labels(rec["target"], rec["logits"])
    classes = np.unique(y)
    cls_ticks = _class_names(classes, class_names, y_kind)
    files: list[str] = []
    summary: dict[str, Any] = {
        "model": metrics.get("model"),
        "dataset": metrics.get("dataset"),
        "n_samples": int(len(y)),
        "by_class": y_kind,
        "class_names": cls_ticks,
        "figures": {},
    }
    if removed:
        summary["missing"] = missing_report
    if routed:
        summary["test_rerun"] = rerun.metrics
    chosen = (metrics.get("adaptive") or {}).get("chosen")
    if chosen:  # what the saved model runs: without it a blend with the trees would be invisible in the figures
        summary["inference_setting"] = chosen
        if budget is not None or adaptive is not None:
            summary["inference_setting_overridden_by"] = {"budget": budget, "adaptive": adaptive}

    def save(fig, name: str, caption: str) -> None:
        p = out / f"{name}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        files.append(str(p))
        summary["figures"][name] = caption

    def axis_names(k: int) -> list[str]:
        return names if len(names) == k else [f"#{i}" for i in range(k)]

    def agent_ticks(ax, k: int) -> None:
        ax.set_xticks(range(k), axis_names(k), rotation=60, ha="right", fontsize=8)

    if "active" in routing:
        act = routing["active"].astype(float)
        k = act.shape[1]
        counts = act.sum(1)
        fixed = len(np.unique(counts)) == 1
        has_scores = "scores" in routing and "gates" in routing
        # top-k: a fixed count below every agent (dense gating wakes them all: no choice, no margin to show)
        topk_fixed = fixed and has_scores and int(counts[0]) < k
        n_panels = 3 if topk_fixed else 2
        fig, ax = plt.subplots(1, n_panels, figsize=(5.5 * n_panels, 4.2), layout="constrained")
        ax[0].bar(range(k), act.mean(0))
        agent_ticks(ax[0], k)
        ax[0].set_ylabel("share of samples")
        ax[0].set_title("How often each agent is active")
        if not topk_fixed:
            ax[1].hist(counts, bins=np.arange(0.5, k + 1.5), rwidth=0.85)
            ax[1].set_xlabel("active agents per sample")
            ax[1].set_ylabel("samples")
            note = f"the gating fixes the count at {int(counts[0])}" if fixed else f"mean {counts.mean():.2f}"
            ax[1].set_title(f"Active agents per sample ({note} of {k})", fontsize=10)
        else:
            gates = routing["gates"]
            ax[1].boxplot([gates[:, i] for i in range(k)], positions=range(k), widths=0.6, showfliers=False)
            agent_ticks(ax[1], k)
            ax[1].set_ylabel("controller probability")
            ax[1].set_title("Controller probability per agent (over samples)", fontsize=10)
            margin = _topk_margin(routing["scores"], act)
            ok = np.isfinite(margin)
            if ok.any():
                ax[2].hist(margin[ok], bins=30, color="tab:gray")
                summary["topk_margin_median"] = float(np.median(margin[ok]))
            ax[2].set_xlabel("score of the last chosen − best left-out routed agent")
            ax[2].set_ylabel("samples")
            ax[2].set_title(
                f"Top-k fixes the count at {int(counts[0])} of {k} agents; how close the choice was", fontsize=10
            )
        save(
            fig,
            "agent_activation",
            "share of samples each agent is active for; under top-k (a fixed count) the distribution of the "
            "controller's probabilities and the top-k margin instead of a one-bar histogram",
        )
        summary["activation_frequency"] = dict(zip(axis_names(k), act.mean(0).round(4).tolist()))
        summary["active_agents_mean"] = float(counts.mean())
        summary["active_agents_fixed_by_topk"] = bool(topk_fixed)
        summary["active_agents_distribution"] = {
            str(int(c)): round(float((counts == c).mean()), 4) for c in np.unique(counts)
        }
        if "encoders_run" in routing:
            enc = routing["encoders_run"].astype(float)
            summary["encoders_run_frequency"] = dict(
                zip(
                    mods if len(mods) == enc.shape[1] else [f"#{i}" for i in range(enc.shape[1])],
                    enc.mean(0).round(4).tolist(),
                )
            )
            summary["encoders_run_mean"] = float(enc.sum(1).mean())
        per_class = np.stack([act[y == c].mean(0) for c in classes])
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * k + 3), max(3, 0.35 * len(classes) + 2)), layout="constrained")
        im = ax.imshow(per_class, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        agent_ticks(ax, k)
        ax.set_yticks(range(len(classes)), cls_ticks)
        ax.set_ylabel(y_kind)
        ax.set_title(f"Share of samples each agent is active for, by {y_kind}")
        fig.colorbar(im, ax=ax)
        save(fig, "activation_by_class", f"which agents the samples of each {y_kind} wake")
    if "messages" in routing:
        graph = routing["messages"].mean(0)
        k = graph.shape[0]
        fig, ax = plt.subplots(figsize=(max(5.5, 0.45 * k + 3), max(4.5, 0.45 * k + 2)), layout="constrained")
        im = ax.imshow(graph, cmap="magma")
        agent_ticks(ax, k)
        ax.set_yticks(range(k), axis_names(k), fontsize=8)
        ax.set_xlabel("sender")
        ax.set_ylabel("receiver")
        fig.suptitle("Collaboration graph: mean attention on messages")
        fig.colorbar(im, ax=ax, shrink=0.85)
        save(fig, "collaboration_graph", "mean message attention receiver <- sender (last round)")
        flat = [(float(graph[i, j]), axis_names(k)[j], axis_names(k)[i]) for i in range(k) for j in range(k) if i != j]
        summary["strongest_links"] = [
            {"sender": s, "receiver": r, "weight": round(w, 4)} for w, s, r in sorted(flat, reverse=True)[:5]
        ]
    weight_key = next((k for k in ("consensus_weights", "weights") if k in routing), None)
    weights_mean: dict[str, float] = {}
    if weight_key:
        w = routing[weight_key]
        k = w.shape[1]
        weights_mean = dict(zip(axis_names(k), w.mean(0).round(4).tolist()))
        per_class = np.stack([w[y == c].mean(0) for c in classes])
        fig, ax = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1, 1.4]}, layout="constrained")
        ax[0].bar(range(k), w.mean(0), color="tab:orange")
        agent_ticks(ax[0], k)
        ax[0].set_ylabel("mean weight")
        ax[0].set_title("Consensus weight per agent (how the votes are mixed)", fontsize=10)
        im = ax[1].imshow(per_class, aspect="auto", cmap="viridis")
        agent_ticks(ax[1], k)
        ax[1].set_yticks(range(len(classes)), cls_ticks)
        ax[1].set_ylabel(y_kind)
        ax[1].set_title(f"Consensus weight by {y_kind}", fontsize=10)
        fig.colorbar(im, ax=ax[1])
        save(
            fig,
            "consensus_weights",
            f"mean {weight_key} per agent/expert, overall and by {y_kind}: how the model mixes its agents' votes, "
            "not how much its prediction depends on each (see occlusion)",
        )
        summary["consensus_weight_mean"] = weights_mean
    if occlusion:
        if data is None:
            summary["occlusion"] = {"error": f"not computed: {load_error}"}
        else:
            from dain.occlusion import occlusion as measure_occlusion

            occ = measure_occlusion(model, data, "test")
            summary["occlusion"] = occ
            fig = _occlusion_figure(plt, occ, weights_mean)
            save(
                fig,
                "occlusion",
                "how much the test predictions change when each agent / modality is removed (mean per-sample "
                "change of the predicted probabilities; the bar labels give the drop of the monitored metric), "
                "beside the mean consensus weight",
            )
    for key in ("router_probs",):
        if key in routing:
            p, mask = routing[key], routing.get("router_mask")
            mat = _router_mean(p, mask)
            empty = np.isnan(mat).all(1)
            # axis 1: a modality (timemoe) or a fusion layer (the token-MoE baselines); unknown in older records
            axis = str(rec["router_axis"]) if "router_axis" in rec and p.ndim >= 3 else ""
            if axis == "modality" and len(mods) == mat.shape[0]:
                rows = mods
            else:
                rows = [f"{axis or '#'} {i}" for i in range(mat.shape[0])]
            fig, ax = plt.subplots(figsize=(6, max(2.5, 0.5 * mat.shape[0] + 1.5)), layout="constrained")
            im = ax.imshow(mat, aspect="auto", cmap="viridis")  # a row without real tokens (NaN) stays blank
            ax.set_xticks(range(mat.shape[1]), [f"expert {e}" for e in range(mat.shape[1])])
            ax.set_yticks(range(mat.shape[0]), [f"{r} (no tokens)" if e else r for r, e in zip(rows, empty)])
            ax.set_ylabel(axis)
            ax.set_title("Mean router probability per expert")
            fig.colorbar(im, ax=ax)
            where = "the real tokens (padding and unobserved tokens left out)" if mask is not None else "all tokens"
            save(fig, "router_probs", f"mean router probability per ({axis or 'row'}, expert) over {where}")
            summary["router_probs_rows"] = rows
            # null: a row without any real token in the record (e.g. a modality missing in every test sample)
            summary["router_probs_mean"] = [None if e else m for m, e in zip(mat.round(4).tolist(), empty)]
    if "bits" in routing:
        summary["comm_bits_per_sample"] = float(routing["bits"].mean())
    (out / "summary.json").write_text(json_text(summary, str(out / "summary.json")))
    files.append(str(out / "summary.json"))
    page = out / "report.html"
    page.write_text(_html(summary, files, metrics))
    files.append(str(page))
    return {"run": str(run), "out": str(out), "files": files, "summary": summary}


def _occlusion_figure(plt: Any, occ: dict[str, Any], weights: dict[str, float]):  # noqa: ANN202 (a Figure)
    """Prediction change when each agent and each modality is removed (one y-scale), and the agents' mean consensus
    weight in a panel of its own (a different quantity)."""
    panels: list[tuple[str, dict[str, Any] | dict[str, float]]] = []
    if occ.get("agents"):
        panels.append(("agent", occ["agents"]))
        if weights:
            panels.append(("weight", weights))
    panels.append(("modality", occ["modalities"]))
    widths = [max(4, len(v)) for _, v in panels]
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(sum(0.55 * w + 1.8 for w in widths), 4.8),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"width_ratios": widths},
    )
    changes = [r["change"] or 0.0 for kind, v in panels if kind != "weight" for r in v.values()]
    top = max([*changes, 0.01]) * 1.25
    metric = next(iter(occ["modalities"].values()))["metric"]
    unit = "" if metric in RAW_METRICS else " points"
    for ax, (kind, res) in zip(axes[0], panels):
        labels = list(res)
        x = np.arange(len(labels))
        ax.set_xticks(x, labels, rotation=60 if kind != "modality" else 30, ha="right", fontsize=8)
        if kind == "weight":
            ax.bar(x, [res[n] for n in labels], 0.7, color="tab:orange")
            ax.set_title("Mean consensus weight (how votes are mixed)", fontsize=10)
            ax.set_ylabel("mean weight")
            continue
        bars = ax.bar(x, [res[n]["change"] or 0.0 for n in labels], 0.7, color="tab:blue")
        for b, n in zip(bars, labels):
            drop = res[n].get("metric_drop")
            if drop is not None:
                ax.annotate(
                    _fmt_drop(metric, drop),
                    (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        ax.set_ylim(0, top)
        ax.set_title(f"Change when {'an' if kind == 'agent' else 'a'} {kind} is removed", fontsize=10)
        ax.set_ylabel("mean per-sample change")
    fig.suptitle(
        f"Occlusion on the {occ['split']} split ({occ['rows']} samples): change = {occ['change_measure']}; "
        f"bar labels: {metric} drop ({unit.strip() or 'metric units'})",
        fontsize=10,
    )
    return fig


RAW_METRICS = ("mae", "mse", "corr")


def _fmt_drop(metric: str, drop: float) -> str:
    return f"{drop:+.3f}" if metric in RAW_METRICS else f"{100 * drop:+.1f}"


def setting_text(chosen: dict[str, Any]) -> str:
    """One sentence on the inference setting calibration chose on validation (``metrics.json``'s
    ``adaptive.chosen``)."""
    budget, threshold = chosen.get("budget"), chosen.get("threshold")
    w, folds = chosen.get("tree_weight"), chosen.get("tree_folds")
    parts = [
        "the trained budget" if budget is None else f"a budget of {budget} routed agent(s) per sample",
        *([] if threshold is None else [f"a confidence cascade at {threshold:g}"]),
    ]
    text = "Inference setting chosen on validation: " + ", ".join(parts)
    if w:
        text += (
            f"; the answer is (1 - {w:g}) x consensus + {w:g} x the tree agent on every row"
            + (" (weight 1: the trees alone answer, and only the shared agent runs beside them)" if w >= 1 else "")
            + ("" if not folds else f", scoring the first {folds} fold boosters")
        )
    return text + "."


def _html(summary: dict[str, Any], files: list[str], metrics: dict[str, Any]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>dain explain</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}</style></head><body>",
        f"<h1>{html.escape(str(summary.get('model')))} on {html.escape(str(summary.get('dataset')))}</h1>",
        f"<p>Test split, {summary['n_samples']} samples. Test metrics: "
        + ", ".join(f"{html.escape(k)} = {v:.4f}" for k, v in (metrics.get("test") or {}).items() if v is not None)
        + "</p>",
    ]
    if summary.get("inference_setting"):
        note = setting_text(summary["inference_setting"])
        if summary.get("inference_setting_overridden_by"):
            note += " This report re-ran the test split with the routing given on the command line instead."
        parts.append(f"<p>{html.escape(note)}</p>")
    miss = summary.get("missing")
    if miss:
        gone = ", ".join(f"{n} from {100 * f:.1f}% of samples" for n, f in miss["removed_fraction"].items() if f)
        parts.append(
            f"<p><b>Explained with modalities missing ({html.escape(miss['condition'])}):</b> removed "
            f"{html.escape(gone or 'nothing')}. Test metrics under this condition: "
            + ", ".join(f"{html.escape(k)} = {v:.4f}" for k, v in summary["test_rerun"].items() if v is not None)
            + "</p>"
        )
    eff = metrics.get("efficiency") or {}
    if eff:
        parts.append(
            "<table><tr><th>efficiency</th><th>value</th></tr>"
            + "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in eff.items())
            + "</table>"
        )
    for f in files:
        if f.endswith(".png"):
            name = Path(f).stem
            b64 = base64.b64encode(Path(f).read_bytes()).decode()
            parts.append(
                f"<h2>{html.escape(name.replace('_', ' '))}</h2>"
                f"<p>{html.escape(summary['figures'].get(name, ''))}</p>"
                f"<img src='data:image/png;base64,{b64}'/>"
            )
    parts += _occlusion_html(summary)
    if "strongest_links" in summary:
        parts.append(
            "<h2>Strongest collaboration links</h2><table><tr><th>sender</th><th>receiver</th>"
            "<th>weight</th></tr>"
            + "".join(
                f"<tr><td>{html.escape(x['sender'])}</td><td>{html.escape(x['receiver'])}</td>"
                f"<td>{x['weight']}</td></tr>"
                for x in summary["strongest_links"]
            )
            + "</table>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _occlusion_html(summary: dict[str, Any]) -> list[str]:
    """The occlusion numbers as a table, each column saying what it measures."""
    occ = summary.get("occlusion")
    if not occ:
        return []
    if "error" in occ:
        return [f"<h2>Occlusion</h2><p>{html.escape(occ['error'])}</p>"]
    weights = summary.get("consensus_weight_mean", {})
    metric = next(iter(occ["modalities"].values()))["metric"]
    unit = "" if metric in RAW_METRICS else " (points)"
    parts = [
        "<h2>Occlusion: what the prediction rests on</h2>",
        f"<p>Each row removes one part and re-runs the model on the {html.escape(occ['split'])} split "
        f"({occ['rows']} samples). A modality is removed through the model's missing-modality path (mask False, "
        "values not read); a DAIN agent by setting its controller score to -inf: a routed agent's slot goes to the "
        "next available agent, the shared agent keeps sending messages but loses its consensus vote. "
        f"<b>change</b>: mean per-sample {html.escape(occ['change_measure'])}; <b>flipped</b>: share of samples "
        f"whose predicted class changes; <b>{html.escape(metric)} drop</b>: how much the monitored metric gets worse"
        f"{unit}. The <b>consensus weight</b> is how the model mixes its agents' votes, a different quantity.</p>",
    ]
    for kind in ("agents", "modalities"):
        res = occ.get(kind)
        if not res:
            continue
        one = {"agents": "agent", "modalities": "modality"}[kind]
        head = f"<tr><th>{one} removed</th><th>change</th><th>flipped</th><th>{html.escape(metric)} drop</th>"
        head += "<th>consensus weight</th>" if kind == "agents" and weights else ""
        head += "<th>samples without a prediction</th></tr>"
        rows = []
        for name, r in res.items():
            cells = [
                html.escape(name),
                "–" if r["change"] is None else f"{r['change']:.4f}",
                "–" if r.get("flipped") is None else f"{100 * r['flipped']:.1f}%",
                "–" if r.get("metric_drop") is None else _fmt_drop(metric, r["metric_drop"]),
            ]
            if kind == "agents" and weights:
                cells.append(f"{weights.get(name, 0.0):.4f}")
            cells.append(str(r["rows_without_prediction"]))
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("<table>" + head + "".join(rows) + "</table>")
    return parts
