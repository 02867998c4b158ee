"""``dain bench``: FLOPs, latency, throughput, active agents and bits per sample of a model on a dataset.

Timing: inference (eval, no grad) on batches drawn from the test split, warm-up first, median of repeated runs;
on CUDA each timing is synchronised. Speed numbers belong here and in benchmarks/, never in unit tests.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dain.errors import ConfigError, DainError


def check_run_flags(run: str, model_name: str | None, data_name: str | None, params: dict[str, Any] | None) -> None:
    """``--run`` benchmarks the run's own model on its own dataset: ``--model`` / ``--data`` naming others, or
    ``--set`` (the run's config.yaml fixes the model), are errors rather than silently ignored."""
    from dain.config import RunConfig

    path = Path(run) / "config.yaml"
    if not path.exists():
        raise DainError(f"--run {run} is not a run directory (no config.yaml)")
    saved = RunConfig.from_yaml(path)
    for flag, given, own in (("--model", model_name, saved.model.name), ("--data", data_name, saved.data.name)):
        if given and given != own:
            raise ConfigError(
                f"{flag} {given} conflicts with --run {run}, whose {flag[2:]} is {own}: "
                f"drop {flag} (bench uses the run's)"
            )
    if params:
        raise ConfigError(f"--set does not apply with --run: the run's config.yaml ({path}) fixes the model")


def run_bench(
    model_name: str | None,
    data_name: str | None,
    device: str = "cpu",
    batch_size: int = 256,
    data_root: str | None = None,
    params: dict[str, Any] | None = None,
    run: str | None = None,
    repeats: int = 20,
    train_step: bool = True,
) -> dict[str, Any]:
    """Benchmark ``model_name`` (fresh weights, ``params``) on ``data_name``, or a trained ``run`` on its own data."""
    from dain.config import RunConfig
    from dain.data.spec import make_batch
    from dain.flops import model_cost
    from dain.training.runner import _to_device, build_from_config, evaluate, load_run

    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    if device == "cuda" and not torch.cuda.is_available():
        raise DainError("--device cuda: no CUDA device is available here")
    if run:
        check_run_flags(run, model_name, data_name, params)
        cfg, data, model = load_run(run, data_root=data_root)
    elif not (model_name and data_name):
        raise ConfigError("dain bench needs --model and --data, or --run RUN (a trained run)")
    else:
        cfg = RunConfig()
        cfg.data.name, cfg.data.root = data_name, data_root
        cfg.model.name, cfg.model.params = model_name, dict(params or {})
        data, model = build_from_config(cfg)
    test = np.asarray(data.splits["test"])
    rows = np.resize(test, batch_size)
    batch = _to_device(make_batch(data, rows), device)
    model = model.to(device).eval()
    stats = evaluate(model, data, "test", device=device).stats if device == "cpu" else {}
    model = model.cpu()
    eff = model_cost(model, data, stats)
    model = model.to(device).eval()

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    with torch.no_grad():
        for _ in range(3):
            model(batch)
        sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(batch)
            sync()
            times.append(time.perf_counter() - t0)
    lat = statistics.median(times)
    res: dict[str, Any] = {
        "model": cfg.model.name,
        "dataset": cfg.data.name,
        "device": device,
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        **eff,
        "latency_ms_per_batch": round(lat * 1e3, 3),
        "throughput_samples_per_s": round(batch_size / lat, 1),
    }
    if train_step:
        from dain.training.metrics import task_loss

        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        ttimes = []
        for i in range(max(5, repeats // 2)):
            t0 = time.perf_counter()
            out = model(batch)
            loss = task_loss(data.spec.task, out.logits, batch["target"]) + sum(out.losses.values())
            opt.zero_grad()
            loss.backward()
            sync()
            if i >= 2:
                ttimes.append(time.perf_counter() - t0)
        res["train_step_ms"] = round(statistics.median(ttimes) * 1e3, 3)
    return res
