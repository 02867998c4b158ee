"""``dain bench``: FLOPs, latency, throughput, active agents and bits per sample of a model on a dataset.

Timing: inference (eval, no grad) on batches drawn from the test split, warm-up first, median of repeated runs;
on CUDA each timing is synchronised. Speed numbers belong here and in benchmarks/, never in unit tests.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch

from dain.errors import DainError


def run_bench(
    model_name: str,
    data_name: str,
    device: str = "cpu",
    batch_size: int = 256,
    data_root: str | None = None,
    params: dict[str, Any] | None = None,
    run: str | None = None,
    repeats: int = 20,
    train_step: bool = True,
) -> dict[str, Any]:
    from dain.config import RunConfig
    from dain.data.spec import make_batch
    from dain.flops import model_cost
    from dain.training.runner import _to_device, build_from_config, evaluate, load_run

    if device == "cuda" and not torch.cuda.is_available():
        raise DainError("--device cuda: no CUDA device is available here")
    if run:
        cfg, data, model = load_run(run)
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
