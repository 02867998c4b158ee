"""The life of a run: build data + model from a RunConfig, fit with Lightning, evaluate, write the run directory.

Run directory layout::

    config.yaml        complete, re-runnable config (model config expanded)
    metrics.json       written last and atomically: its presence marks a finished run
    model.safetensors  best weights (by the monitored validation metric)
    checkpoints/       Lightning checkpoints (best.ckpt, last.ckpt) for --resume
    logs/              CSV logs of every loss term and validation metric per epoch
    routing.npz        per-sample routing record on the test split (for ``dain explain``)
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from dain.config import RunConfig
from dain.data.paths import atomic_write
from dain.data.registry_api import load_dataset
from dain.data.spec import MultimodalDataset, make_batch
from dain.errors import ConfigError, DainError
from dain.flops import model_cost
from dain.models.base import config_to_dict, make_config
from dain.registry import MODELS
from dain.training.metrics import MONITOR, TIEBREAK_TASKS, compute_class_weight, compute_metrics, lower_is_better
from dain.training.thresholds import BUFFER as LABEL_OFFSETS
from dain.training.thresholds import attach_label_offsets, tune_label_thresholds
from dain.validation import (
    check_budget,
    check_splits,
    check_train_config,
    check_trained_budget,
    ensure_creatable,
    json_text,
    warn,
)

RUNNING_MARKER = "RUNNING"
FAILED_MARKER = "FAILED"


def _quiet_lightning() -> None:
    import lightning  # noqa: F401  (import first: lightning sets its loggers' levels on import)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*is deprecated.*TreeSpec.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory.*exists and is not empty.*")
    warnings.filterwarnings("ignore", message=".*Experiment logs directory.*")  # --resume restores the rows


def seed_all(seed: int) -> None:
    import lightning as L

    with contextlib.redirect_stdout(sys.stderr):
        L.seed_everything(seed, workers=True, verbose=False)


def build_from_config(
    cfg: RunConfig, data: MultimodalDataset | None = None
) -> tuple[MultimodalDataset, torch.nn.Module]:
    """Load the dataset (unless ``data``, already loaded for this config, is given) and build the model; expands
    ``cfg.model.params`` to every field (in place)."""
    seed_all(cfg.train.seed)
    if data is None:
        data = load_dataset(cfg.data.name, root=cfg.data.root, seed=cfg.train.seed, **cfg.data.options)
    model_cfg = make_config(cfg.model.name, cfg.model.params)
    cls = MODELS.get(cfg.model.name)
    if hasattr(cls, "resolve_config"):  # data-dependent defaults (dain's tree_agent=auto), saved resolved
        model_cfg = cls.resolve_config(model_cfg, data)
    cfg.model.params = config_to_dict(model_cfg)
    try:
        model = cls(data.spec, model_cfg)
    except ValueError as e:  # a model's own check of its options (e.g. dain's gating)
        msg = str(e).removeprefix(f"{cfg.model.name}: ")
        raise ConfigError(f"model {cfg.model.name!r}: {msg} (set with --set or model.params)") from e
    check_trained_budget(model, model_cfg)
    attach_label_offsets(model, data.spec)  # multilabel: per-label thresholds, tuned on validation by _finish
    return data, model


def make_loader(
    data: MultimodalDataset, split: str, batch_size: int, shuffle: bool, seed: int, balanced: bool = False
) -> torch.utils.data.DataLoader:
    from dain.data.spec import BatchCollator

    idx = np.asarray(data.splits[split], dtype=np.int64)
    g = torch.Generator().manual_seed(seed)
    sampler = None
    if balanced and shuffle and data.spec.task in ("binary", "multiclass"):
        y = data.target[idx].astype(int).reshape(-1)
        counts = np.bincount(y)
        w = 1.0 / counts[y]
        sampler = torch.utils.data.WeightedRandomSampler(torch.tensor(w, dtype=torch.double), len(idx), True, g)
        shuffle = False
    return torch.utils.data.DataLoader(
        idx.tolist(),
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        generator=g if shuffle else None,
        collate_fn=BatchCollator(data),
        drop_last=False,
    )


@dataclass
class EvalResult:
    metrics: dict[str, float]
    logits: torch.Tensor
    target: torch.Tensor
    index: np.ndarray
    stats: dict[str, float] = field(default_factory=dict)
    routing: dict[str, np.ndarray] = field(default_factory=dict)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    data: MultimodalDataset,
    split: str,
    batch_size: int = 256,
    collect_routing: bool = False,
    device: str = "cpu",
) -> EvalResult:
    """Evaluate on a whole split (eval mode, no gradients)."""
    model.eval()
    idx = np.asarray(data.splits[split], dtype=np.int64)
    logits, targets = [], []
    stats: dict[str, float] = {}
    routing: dict[str, list[np.ndarray]] = {}
    n_seen = 0
    for start in range(0, len(idx), batch_size):
        rows = idx[start : start + batch_size]
        batch = _to_device(make_batch(data, rows), device)
        out = model(batch)
        logits.append(out.logits.float().cpu())
        targets.append(batch["target"].cpu())
        b = len(rows)
        for k, v in out.stats.items():
            stats[k] = stats.get(k, 0.0) + float(v.float().mean()) * b
        if collect_routing:
            for k, v in out.routing.items():
                if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == b:
                    routing.setdefault(k, []).append(v.detach().float().cpu().numpy())
        n_seen += b
    logit = torch.cat(logits)
    target = torch.cat(targets)
    metrics = compute_metrics(data.spec.task, logit, target, data.spec.num_outputs)
    return EvalResult(
        metrics=metrics,
        logits=logit,
        target=target,
        index=idx,
        stats={k: v / max(n_seen, 1) for k, v in stats.items()},
        routing={k: np.concatenate(v) for k, v in routing.items()},
    )


def apply_budget(model: torch.nn.Module, budget: int | None = None, adaptive: float | None = None) -> None:
    """Test-time routing of an agent model, no retraining: ``budget`` routed agents per sample (0 = the shared agent
    only, up to the trained budget's maximum K) and/or ``adaptive`` confidence threshold (the cascade: routed agents
    wake only where the shared agent's confidence is below it), capped at ``budget`` or else at the trained budget,
    never at a budget calibration chose (so the cascade runs as calibration and ``compare``'s budget curve scored it;
    a calibrated tree blend is kept, as :func:`dain.training.frontier.set_test_setting` keeps it)."""
    if not hasattr(model, "set_budget"):
        raise DainError(f"model {type(model).__name__} has no agent budget; --budget/--adaptive apply to dain models")
    if budget is not None and adaptive is None and hasattr(model, "set_gating"):
        # exactly k agents: no calibrated cascade (set_budget below turns a dense-trained model's gating to top-k)
        model.set_gating(model.trained_gating, model.cfg.threshold)
    if budget is not None:
        check_budget(model, budget)  # 0..K; above the trained budget: a warning (an extrapolation)
    model.set_budget(None if budget is None else int(budget))  # None: the trained budget, not the calibrated one
    if adaptive is not None:
        if not 0.0 < float(adaptive) <= 1.0:
            raise DainError(f"--adaptive is a confidence threshold in (0, 1], got {adaptive}")
        model.set_gating("threshold", float(adaptive))


def _to_device(batch: Any, device: str) -> Any:
    if device == "cpu":
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def efficiency(model: torch.nn.Module, data: MultimodalDataset, stats: dict[str, float]) -> dict[str, Any]:
    """The run's cost record: :func:`dain.flops.model_cost` (one cost function for ``fit`` and ``bench``)."""
    return model_cost(model, data, stats)


def default_run_dir(cfg: RunConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = Path(cfg.data.name).name if os.sep in cfg.data.name else cfg.data.name
    return Path("runs") / f"{name}-{cfg.model.name}-s{cfg.train.seed}-{stamp}"


def _write_json_atomic(path: Path, obj: Any) -> None:
    text = json_text(obj, str(path))  # standard JSON: an undefined metric is null (and a warning), never NaN
    atomic_write(path, lambda tmp: tmp.write_text(text))


def fit_run(
    cfg: RunConfig, out_dir: str | Path | None = None, resume: bool = False, progress: bool | str = True
) -> dict[str, Any]:
    """Train, select the best checkpoint on validation, evaluate val/test, write the run directory.

    ``progress``: ``True``/``"auto"`` (a bar on a terminal, one line per epoch otherwise), ``"bar"``, ``"lines"``,
    or ``False``/``"quiet"`` (see :mod:`dain.training.progress`)."""
    _quiet_lightning()
    if cfg.train.num_threads > 0:
        torch.set_num_threads(cfg.train.num_threads)
    out = ensure_creatable(out_dir if out_dir else default_run_dir(cfg), "--out")
    if (out / "metrics.json").exists() and not resume:
        raise DainError(f"run directory {out} already holds a finished run; choose another --out or pass --resume")
    last_ckpt = out / "checkpoints" / "last.ckpt"
    if resume and (out / "config.yaml").exists():
        saved = RunConfig.from_yaml(out / "config.yaml")
        _warn_ignored_on_resume(cfg, saved)
        cfg = saved
    if resume:
        resume = _resumable(out, last_ckpt)
    check_train_config(cfg.train)
    data, model = build_from_config(cfg)
    check_splits(data, cfg.data.name)  # before anything is written or trained
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DainError(f"--out {out}: cannot create the run directory ({e.strerror or e})") from e
    (out / "metrics.json").unlink(missing_ok=True)
    (out / RUNNING_MARKER).write_text(time.strftime("%Y-%m-%d %H:%M:%S"))
    (out / FAILED_MARKER).unlink(missing_ok=True)
    cfg.to_yaml(out / "config.yaml")
    try:
        result = _fit(cfg, data, model, out, last_ckpt if resume else None, progress)
    except BaseException as e:
        (out / FAILED_MARKER).write_text(f"{type(e).__name__}: {e}\n")
        (out / RUNNING_MARKER).unlink(missing_ok=True)
        raise
    if result:
        (out / RUNNING_MARKER).unlink(missing_ok=True)
    return result


def config_fields(cfg: RunConfig) -> dict[str, Any]:
    """A config as ``{"train.max_epochs": 60, "model.params.hidden": 128, ...}``, values as YAML saves them (tuples
    as lists), so a config in memory compares equal to its saved config.yaml; an empty mapping adds no field."""

    def flat(d: dict[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    return flat(yaml.safe_load(yaml.safe_dump(cfg.to_dict())), "")


def _warn_ignored_on_resume(given: RunConfig, saved: RunConfig) -> None:
    """``--resume`` continues with the run's saved config.yaml: warn about the settings given now that differ from
    it and so do nothing (e.g. ``--max-epochs``). Only settings given away from their defaults count: a flag left
    out is not an attempt to change the run."""
    unset = "(unset)"
    default, now, then = (config_fields(c) for c in (RunConfig(), given, saved))
    ignored = [
        f"{k}={now[k]!r} (the run's: {then.get(k, unset)!r})"
        for k in sorted(now)
        if now[k] != default.get(k, unset) and now[k] != then.get(k, unset)
    ]
    if ignored:
        warn(
            f"--resume continues with the run's saved config.yaml; ignored: {', '.join(ignored)} "
            "(edit its config.yaml to change them)"
        )


def _resumable(out: Path, last_ckpt: Path) -> bool:
    """Whether ``--resume`` has a checkpoint to continue from; a run killed before its first checkpoint starts over
    (with a warning), an unreadable checkpoint is an error naming it."""
    if not last_ckpt.exists():
        if (out / "metrics.json").exists():
            raise DainError(f"--resume: {out} is a finished run without checkpoints; nothing to resume")
        warn(
            f"--resume: no checkpoint at {last_ckpt} (the run stopped before its first epoch ended); "
            "training from the first epoch"
        )
        return False
    try:
        torch.load(last_ckpt, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, or not a weights-only checkpoint
        raise DainError(
            f"--resume: {last_ckpt} cannot be read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            "delete it to train from the first epoch"
        ) from e
    return True


def _fit(
    cfg: RunConfig,
    data: MultimodalDataset,
    model: torch.nn.Module,
    out: Path,
    ckpt: Path | None,
    progress: bool | str,
) -> dict[str, Any]:
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from dain.training.interaction_cache import provide_interactions
    from dain.training.module import FusionModule
    from dain.training.progress import progress_callbacks, resolve_progress
    from dain.training.resume import ResumeState

    tc = cfg.train
    task = data.spec.task
    metric, mode = MONITOR[task]
    if tc.monitor != "auto":
        metric = tc.monitor.removeprefix("val/")
        mode = "min" if lower_is_better(metric) else "max"
    elif task in TIEBREAK_TASKS:
        metric = "select"  # the task's metric, ties broken by validation loss
    t_prepare = time.perf_counter()
    if hasattr(model, "prepare"):  # data-dependent set-up before training (e.g. DAIN's cross-fitted tree agent)
        quiet = resolve_progress(progress) == "quiet"
        model.prepare(data, out / "cache", log=None if quiet else lambda text: print(text, file=sys.stderr))
    # what an interaction-aware router asks for (timemoe), estimated once per training split and cached
    ri = provide_interactions(model, data, progress=bool(progress))
    if ri is not None:  # the run's record of what its router was given (and what that cost)
        record = {
            "seconds": ri.seconds,
            "from_cache": ri.from_cache,
            "label_entropy_bits": ri.label_entropy,
            "thresholds_bits": list(model.thresholds()) if hasattr(model, "thresholds") else None,
            "pairs": ri.pairs,
        }
        _write_json_atomic(out / "interactions.json", record)
    # the set-up is part of what a fit costs (DAIN's tree cross-fit: minutes on a large or wide train split)
    prepare_seconds = time.perf_counter() - t_prepare
    cw = None
    if tc.class_weight == "balanced":
        cw = compute_class_weight(task, data.target[data.splits["train"]], data.spec.num_outputs)
    elif tc.class_weight != "none":
        raise ConfigError(f"train.class_weight must be 'none' or 'balanced', got {tc.class_weight!r}")
    if getattr(model, "fit_direct_model", False):  # e.g. gbm: trained directly, not by gradient descent
        t0 = time.perf_counter()
        model.fit_direct(data, seed=tc.seed, modality_dropout=tc.modality_dropout)
        return _finish(cfg, data, model, out, time.perf_counter() - t0, 0, metric, prepare_seconds)
    module = FusionModule(model, data.spec, tc, cw)
    train_loader = make_loader(data, "train", tc.batch_size, True, tc.seed, tc.balanced_batches)
    val_loader = make_loader(data, "val", max(256, tc.batch_size), False, tc.seed)
    ckpt_cb = ModelCheckpoint(
        dirpath=out / "checkpoints",
        filename="best",
        monitor=f"val/{metric}",
        mode=mode,
        save_top_k=1,
        save_on_train_epoch_end=True,  # after validation: the point ResumeState's saved states refer to
        enable_version_counter=False,
    )
    # last.ckpt after every epoch (Lightning's save_last skips the epochs that did not improve the best)
    last_cb = ModelCheckpoint(
        dirpath=out / "checkpoints", filename="last", save_on_train_epoch_end=True, enable_version_counter=False
    )
    # RNG, shuffle-generator and log-row states in every checkpoint: --resume continues the run exactly
    resume_cb = ResumeState(train_loader, out / "logs" / "metrics.csv")
    callbacks: list[Any] = [ckpt_cb, last_cb, resume_cb]
    if tc.patience > 0:
        callbacks.append(EarlyStopping(monitor=f"val/{metric}", mode=mode, patience=tc.patience))
    shown = f"val/{MONITOR[task][0]}" if metric == "select" else f"val/{metric}"  # select: the metric, tie-broken
    progress = resolve_progress(progress)
    callbacks += progress_callbacks(progress, shown, mode, len(train_loader))
    trainer = L.Trainer(
        max_epochs=tc.max_epochs,
        accelerator=tc.accelerator,
        devices=tc.devices,
        strategy=tc.strategy,
        num_nodes=tc.num_nodes,
        precision=tc.precision,
        gradient_clip_val=tc.grad_clip or None,
        callbacks=callbacks,
        logger=CSVLogger(str(out), name="logs", version=""),
        enable_progress_bar=progress == "bar",
        enable_model_summary=False,
        deterministic="warn" if tc.deterministic else False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        trainer.fit(module, train_loader, val_loader, ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
    fit_seconds = resume_cb.seconds_before + time.perf_counter() - t0  # resumed: the whole fit, as epochs counts
    epochs = int(trainer.current_epoch)
    best = ckpt_cb.best_model_path
    if best and Path(best).exists():
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    if not trainer.is_global_zero:
        return {}
    return _finish(cfg, data, module.model, out, fit_seconds, epochs, metric, prepare_seconds)


def _finish(
    cfg: RunConfig,
    data: MultimodalDataset,
    model: torch.nn.Module,
    out: Path,
    fit_seconds: float,
    epochs: int,
    metric: str,
    prepare_seconds: float = 0.0,
) -> dict[str, Any]:
    """Save best weights, evaluate val/test, write routing record and metrics.json (last, atomically).
    ``fit_seconds``: the training loop; ``prepare_seconds``: the data-dependent set-up before it (the model's
    ``prepare``, an interaction estimate)."""
    from safetensors.torch import save

    tc = cfg.train
    model = model.cpu().eval()
    from dain.training.adaptive import calibrate_for_run

    offsets = getattr(model, LABEL_OFFSETS, None)  # multilabel: each label's threshold, on the chosen setting's scores
    if offsets is not None:  # a run finished again (recalibrated) is calibrated as when it was trained: at 0.5
        offsets.zero_()
    adaptive = calibrate_for_run(model, data, metric)  # agent models: the inference setting chosen on validation
    val = evaluate(model, data, "val")
    thresholds = None
    if offsets is not None:  # the forward hook adds the tuned offsets to these very logits: shift, do not re-run
        thresholds = tune_label_thresholds(model, val.logits, val.target)
        thresholds["val_at_half"] = val.metrics
        shifted = val.logits + offsets
        val = replace(val, logits=shifted, metrics=compute_metrics(data.spec.task, shifted, val.target, len(offsets)))
    # through bytes: safetensors' save_file creates its file 0600; every other output follows the umask (0644)
    weights = save({k: v.contiguous() for k, v in model.state_dict().items()})
    atomic_write(out / "model.safetensors", lambda tmp: tmp.write_bytes(weights))
    test = evaluate(model, data, "test", collect_routing=True)
    save_routing(out / "routing.npz", test, model)
    result: dict[str, Any] = {
        "dataset": cfg.data.name,
        "model": cfg.model.name,
        "seed": tc.seed,
        "task": data.spec.task,
        "protocol": cfg.data.options.get("protocol", "default"),
        "split": cfg.data.options.get("split"),
        "monitor": f"val/{metric}",
        "val": val.metrics,
        "test": test.metrics,
        "efficiency": (eff := efficiency(model, data, test.stats)),
        **({"adaptive": adaptive} if adaptive is not None else {}),
        **({"label_thresholds": thresholds} if thresholds is not None else {}),
        "time": {
            "fit_seconds": round(fit_seconds, 3),
            "prepare_seconds": round(prepare_seconds, 3),
            "epochs": epochs,
            "seconds_per_epoch": round(fit_seconds / max(epochs, 1), 4),
        },
        "data": {
            "n_samples": data.n_samples,
            "splits": data.split_sizes(),
            "source": data.info.get("source", ""),
        },
        "run_dir": str(out),
    }
    if adaptive is not None and adaptive["chosen"] is None:  # scored with the trained setting: that is its score
        adaptive["trained_setting_test"] = test.metrics
        adaptive["trained_setting_flops_per_sample"] = eff.get("flops_per_sample")
    _write_json_atomic(out / "metrics.json", result)
    return result


def save_routing(path: Path, res: EvalResult, model: torch.nn.Module) -> None:
    """Per-sample routing record + predictions on a split, for ``dain explain``."""
    arrays: dict[str, Any] = {f"routing__{k}": v for k, v in res.routing.items()}
    arrays["index"] = res.index
    arrays["logits"] = res.logits.numpy()
    arrays["target"] = res.target.numpy()
    spec = getattr(model, "spec", None)
    if spec is not None:
        arrays["modality_names"] = np.asarray(spec.modality_names)
        if spec.class_names:
            arrays["class_names"] = np.asarray([str(c) for c in spec.class_names])
    names = getattr(model, "agent_names", None) or getattr(model, "roles", None)
    if names:
        arrays["agent_names"] = np.asarray([str(n) for n in names])
    if "router_probs" in res.routing:  # what axis 1 of router_probs is: a fusion layer, or a modality (timemoe)
        arrays["router_axis"] = np.asarray(getattr(model, "router_axis", "layer"))
    np.savez_compressed(path, **arrays)


def load_run(
    run_dir: str | Path,
    data_name: str | None = None,
    data_options: dict[str, Any] | None = None,
    data_root: str | None = None,
    data: MultimodalDataset | None = None,
) -> tuple[RunConfig, MultimodalDataset, torch.nn.Module]:
    """Rebuild a finished run's dataset and model with its best weights (``data``: the run's dataset, already loaded,
    e.g. shared by several runs of one split)."""
    from safetensors.torch import load_file

    run = Path(run_dir)
    if not (run / "config.yaml").exists():
        raise DainError(f"{run} is not a run directory (no config.yaml)")
    cfg = RunConfig.from_yaml(run / "config.yaml")
    if data is None and (data_name or data_options or data_root):
        data = _other_data(run, cfg, data_name, data_options, data_root)
    if not (run / "model.safetensors").exists():
        state = "it failed" if (run / FAILED_MARKER).exists() else "it is unfinished"
        raise DainError(f"{run} has no trained weights (model.safetensors); {state}")
    if data_name:
        cfg.data.name = data_name
    if data_options:
        cfg.data.options.update(data_options)
    if data_root:
        cfg.data.root = data_root
    data, model = build_from_config(cfg, data)
    try:
        state = load_file(str(run / "model.safetensors"))
    except Exception as e:  # SafetensorError, OSError: truncated or overwritten file
        raise DainError(
            f"{run / 'model.safetensors'}: the weights cannot be read ({e}); the file is corrupt or truncated: "
            f"restore it or retrain (dain fit --config {run / 'config.yaml'})"
        ) from e
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # size mismatch: data of other shapes or outputs than the run was trained on
        raise DainError(
            f"the weights in {run} do not fit a {cfg.model.name} built for {cfg.data.name}: its modality shapes or "
            f"outputs differ from the run's ({str(e).splitlines()[-1].strip()[:200]})"
        ) from e
    missing = [m for m in missing if m != LABEL_OFFSETS]  # a run saved before label thresholds: 0.5 for every label
    if unexpected or [m for m in missing if not m.endswith("_cache")]:
        raise DainError(f"weights in {run} do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.eval()
    return cfg, data, model


def _other_data(
    run: Path, cfg: RunConfig, name: str | None, options: dict[str, Any] | None, root: str | None
) -> MultimodalDataset:
    """The data a finished run is asked to score in place of its own (``dain test --data/--option/--data-root``),
    checked before any weight is loaded: it must have the task, outputs and modalities (names, kinds, shapes) of
    the run's own data. Without the run's own data here the check is skipped (the weights still must fit)."""
    from dain.errors import DataNotFoundError
    from dain.validation import spec_differences

    d, seed = cfg.data, cfg.train.seed
    new = load_dataset(name or d.name, root=root or d.root, seed=seed, **{**d.options, **(options or {})})
    try:
        own = load_dataset(d.name, root=d.root, seed=seed, **d.options).spec
    except DataNotFoundError:
        return new
    diffs = spec_differences(own, new.spec)
    if diffs:
        raise DainError(
            f"--run {run} was trained on {d.name}, which differs from the data asked for ({new.spec.name}): "
            f"{'; '.join(diffs)}; a run can only be tested on data with the same task, outputs and modalities"
        )
    return new


def test_run(
    run_dir: str | Path,
    split: str = "test",
    drop: tuple[str, ...] | list[str] | str = (),
    missing_rate: float = 0.0,
    seed: int = 0,
    budget: int | None = None,
    adaptive: float | None = None,
    data_name: str | None = None,
    data_options: dict[str, Any] | None = None,
    data_root: str | None = None,
) -> dict[str, Any]:
    """Evaluate a finished run on ``split``, optionally with modalities missing (``drop``: names removed from every
    sample; ``missing_rate``: each present modality removed per sample with that probability, drawn from ``seed``,
    never a sample's last one; see :mod:`dain.data.missing`) and, for agent models, another budget. The result
    names what was removed under ``"missing"``."""
    from dain.data.missing import Missingness, check_missingness, parse_drop, with_missing

    cfg, data, model = load_run(run_dir, data_name, data_options, data_root)
    if len(data.splits[split]) == 0:
        raise ConfigError(f"--split {split}: the {split} split of {cfg.data.name} is empty")
    missing = Missingness(parse_drop(drop) if isinstance(drop, str) else tuple(drop), float(missing_rate), int(seed))
    check_missingness(data.spec.modality_names, missing)
    report = None
    if missing.active:
        data, report = with_missing(data, split, missing)
        if report["empty_samples"]:
            warn(
                f"--drop {','.join(missing.drop)}: {report['empty_samples']} {split} samples have no modality left; "
                "models predict them from no input"
            )
    if budget is not None or adaptive is not None:
        apply_budget(model, budget, adaptive)
    res = evaluate(model, data, split)
    return {
        "dataset": cfg.data.name,
        "model": cfg.model.name,
        "seed": cfg.train.seed,
        "task": data.spec.task,
        "split": split,
        "budget": budget,
        "adaptive": adaptive,
        "missing": report,
        split: res.metrics,
        "efficiency": efficiency(model, data, res.stats),
        "run_dir": str(run_dir),
    }
