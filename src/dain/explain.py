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


def _labels(target: np.ndarray, logits: np.ndarray) -> np.ndarray:
    if target.ndim == 1 and np.all(np.mod(target, 1) == 0):
        return target.astype(int)
    if target.ndim == 1:
        return (target > np.median(target)).astype(int)
    return logits.argmax(-1)


def explain_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    budget: int | None = None,
    adaptive: float | None = None,
) -> dict[str, Any]:
    """Write explain/*.png, explain/report.html and explain/summary.json for a finished run.

    ``budget`` / ``adaptive`` (agent models): re-evaluate the test split with that test-time routing first (the
    record is written to the output folder) and explain it instead of the record saved by ``fit``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run_dir)
    rec_path = run / "routing.npz"
    if not rec_path.exists():
        raise DainError(f"{run} has no routing.npz (is it a finished run directory?)")
    out = Path(out_dir) if out_dir else run / "explain"
    out.mkdir(parents=True, exist_ok=True)
    if budget is not None or adaptive is not None:
        from dain.training.runner import apply_budget, evaluate, load_run, save_routing

        _, data, model = load_run(run)
        apply_budget(model, budget, adaptive)
        rec_path = out / "routing.npz"
        save_routing(rec_path, evaluate(model, data, "test", collect_routing=True), model)
    rec = dict(np.load(rec_path, allow_pickle=False))
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
    routing = {k.removeprefix("routing__"): v for k, v in rec.items() if k.startswith("routing__")}
    if not routing:
        raise DainError(
            f"model {metrics.get('model', '?')} of {run} records no routing (static fusion models "
            "have nothing to explain; use dain, i2moe, moe_topk, fusemoe, flexmoe or timemoe)"
        )
    names = [str(n) for n in rec.get("agent_names", [])]
    y = _labels(rec["target"], rec["logits"])
    classes = np.unique(y)
    files: list[str] = []
    summary: dict[str, Any] = {
        "model": metrics.get("model"),
        "dataset": metrics.get("dataset"),
        "n_samples": int(len(y)),
        "figures": {},
    }

    def save(fig, name: str, caption: str) -> None:
        p = out / f"{name}.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        files.append(str(p))
        summary["figures"][name] = caption

    def axis_names(k: int) -> list[str]:
        return names if len(names) == k else [f"#{i}" for i in range(k)]

    if "active" in routing:
        act = routing["active"].astype(float)
        k = act.shape[1]
        fig, ax = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 1.3]})
        ax[0].bar(range(k), act.mean(0))
        ax[0].set_xticks(range(k), axis_names(k), rotation=60, ha="right", fontsize=8)
        ax[0].set_ylabel("activation frequency")
        ax[0].set_title("How often each agent is woken")
        counts = act.sum(1)
        ax[1].hist(counts, bins=np.arange(0.5, k + 1.5), rwidth=0.85)
        ax[1].set_xlabel("active agents per sample")
        fixed = " — top-k gating fixes the count" if len(np.unique(counts)) == 1 else ""
        ax[1].set_title(f"Active agents per sample (mean {counts.mean():.2f} of {k}){fixed}", fontsize=9)
        save(fig, "agent_activation", "activation frequency per agent and active agents per sample")
        summary["activation_frequency"] = dict(zip(axis_names(k), act.mean(0).round(4).tolist()))
        summary["active_agents_mean"] = float(counts.mean())
        summary["active_agents_distribution"] = {
            str(int(c)): round(float((counts == c).mean()), 4) for c in np.unique(counts)
        }
        if "encoders_run" in routing:
            enc = routing["encoders_run"].astype(float)
            mods = [str(m) for m in rec.get("modality_names", [])]
            summary["encoders_run_frequency"] = dict(
                zip(
                    mods if len(mods) == enc.shape[1] else [f"#{i}" for i in range(enc.shape[1])],
                    enc.mean(0).round(4).tolist(),
                )
            )
            summary["encoders_run_mean"] = float(enc.sum(1).mean())
        per_class = np.stack([act[y == c].mean(0) for c in classes])
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * k + 2), max(3, 0.35 * len(classes) + 1.5)))
        im = ax.imshow(per_class, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(k), axis_names(k), rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(classes)), [str(c) for c in classes])
        ax.set_ylabel("class")
        ax.set_title("Context-dependent roles: activation frequency by class")
        fig.colorbar(im, ax=ax)
        save(fig, "activation_by_class", "which agents each class wakes")
    if "messages" in routing:
        msg = routing["messages"]
        graph = msg.mean(0)
        k = graph.shape[0]
        fig, ax = plt.subplots(figsize=(max(5, 0.45 * k + 2), max(4, 0.45 * k + 1.5)))
        im = ax.imshow(graph, cmap="magma")
        ax.set_xticks(range(k), axis_names(k), rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), axis_names(k), fontsize=8)
        ax.set_xlabel("sender")
        ax.set_ylabel("receiver")
        ax.set_title("Collaboration graph: mean attention on messages")
        fig.colorbar(im, ax=ax)
        save(fig, "collaboration_graph", "mean message attention receiver <- sender (last round)")
        flat = [(float(graph[i, j]), axis_names(k)[j], axis_names(k)[i]) for i in range(k) for j in range(k) if i != j]
        summary["strongest_links"] = [
            {"sender": s, "receiver": r, "weight": round(w, 4)} for w, s, r in sorted(flat, reverse=True)[:5]
        ]
    weight_key = next((k for k in ("consensus_weights", "weights") if k in routing), None)
    if weight_key:
        w = routing[weight_key]
        k = w.shape[1]
        per_class = np.stack([w[y == c].mean(0) for c in classes])
        fig, ax = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [1, 1.4]})
        ax[0].bar(range(k), w.mean(0), color="tab:orange")
        ax[0].set_xticks(range(k), axis_names(k), rotation=60, ha="right", fontsize=8)
        ax[0].set_title("Role importance: mean weight in the consensus")
        im = ax[1].imshow(per_class, aspect="auto", cmap="viridis")
        ax[1].set_xticks(range(k), axis_names(k), rotation=60, ha="right", fontsize=8)
        ax[1].set_yticks(range(len(classes)), [str(c) for c in classes])
        ax[1].set_title("Role importance by class")
        fig.colorbar(im, ax=ax[1])
        save(fig, "role_importance", f"mean {weight_key} per agent/expert, overall and by class")
        summary["role_importance"] = dict(zip(axis_names(k), w.mean(0).round(4).tolist()))
    for key in ("router_probs",):
        if key in routing:
            p = routing[key]
            mat = (
                p.reshape(p.shape[0], p.shape[1], -1, p.shape[-1]).mean((0, 2))
                if p.ndim >= 3
                else p.mean(0, keepdims=True)
            )
            fig, ax = plt.subplots(figsize=(6, max(2.5, 0.5 * mat.shape[0] + 1.5)))
            im = ax.imshow(mat, aspect="auto", cmap="viridis")
            ax.set_xticks(range(mat.shape[1]), [f"expert {e}" for e in range(mat.shape[1])])
            rows = [str(m) for m in rec.get("modality_names", [])]
            ax.set_yticks(
                range(mat.shape[0]), rows if len(rows) == mat.shape[0] else [f"#{i}" for i in range(mat.shape[0])]
            )
            ax.set_ylabel("modality" if p.ndim >= 3 else "")
            ax.set_title("Mean router probability per expert")
            fig.colorbar(im, ax=ax)
            save(fig, "router_probs", "mean router probability per (modality, expert)")
            summary["router_probs_mean"] = mat.round(4).tolist()
    if "bits" in routing:
        summary["comm_bits_per_sample"] = float(routing["bits"].mean())
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    files.append(str(out / "summary.json"))
    page = out / "report.html"
    page.write_text(_html(summary, files, metrics))
    files.append(str(page))
    return {"run": str(run), "out": str(out), "files": files, "summary": summary}


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
