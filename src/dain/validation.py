"""Checks run before anything is built or trained, so a bad input ends in one ``error:`` line naming the flag or file
(a :class:`~dain.errors.DainError`), never in a traceback from deep inside torch or in a silently wrong result.

* :func:`coerce` / :func:`coerce_fields`: a ``--set`` / config value against its dataclass field's type;
* :func:`check_train_config`: ranges of the training options (``--max-epochs 0`` trains nothing, ...) and the
  Lightning names (:func:`check_lightning_flags`);
* :func:`spec_differences`: what differs between a run's dataset and another one it is tested on;
* :func:`parse_rates`: a comma list of missing rates in [0, 1);
* :func:`check_splits`: every split non-empty, a classification train split with two classes or more;
* :func:`parse_lags` / :func:`check_lags`: ``--lags`` syntax and fit to the data;
* :func:`check_budget` / :func:`check_trained_budget`: agent budgets in 0..K;
* :func:`ensure_creatable`: an output folder that can be created;
* :func:`json_text`: standard JSON only (NaN/inf become null, with a warning naming the fields).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dain.errors import ConfigError, DainWarning, DataValidationError


def yaml_problem(e: Exception) -> str:
    """A YAML parse error on one line: the problem and where (PyYAML's own message spans several lines)."""
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(e, 'problem', None) or str(e).splitlines()[0]}{where}"


def warn(message: str) -> None:
    """A user-facing warning (the CLI prints it as one ``warning:`` line on stderr)."""
    warnings.warn(message, DainWarning, stacklevel=2)


# ------------------------------------------------------------------------------------------------ typed values
def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true/false"
    if tp is str:
        return "a string"
    if origin in (tuple, list):
        return "a list such as [a, b]"
    if origin is dict:
        return "a mapping such as {key: value}"
    return str(tp)


def coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` converted to type ``tp`` (int, float, bool, str, list/tuple[X], dict[K, V], X | None, Any), or a
    ConfigError saying what ``where`` must be. Strict: 2.5 is not an integer, "abc" is not a number."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return coerce(value, inner[0], where)
        # the first alternative that takes the value; a string last (any scalar converts to one)
        for alt in sorted(inner, key=lambda a: a is str):
            try:
                return coerce(value, alt, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} must be {' or '.join(_describe(a) for a in inner)}, got {value!r}")
    bad = ConfigError(f"{where} must be {_describe(tp)}, got {value!r}")
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise bad
        return int(value)
    if tp is float:
        if isinstance(value, str):  # YAML reads 1e-3 as a string
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise bad
        if not math.isfinite(float(value)):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (bool, list, tuple, dict)) or value is None:
            raise bad
        return str(value)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise bad
        item = args[0] if args else Any
        out = [coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        kt, vt = args if len(args) == 2 else (Any, Any)
        return {coerce(k, kt, f"{where} key"): coerce(v, vt, f"{where}[{k!r}]") for k, v in value.items()}
    return value


def coerce_fields(cls: type, values: dict[str, Any], label: Callable[[str], str]) -> dict[str, Any]:
    """Every entry of ``values`` checked against the field of dataclass ``cls`` of the same name (unknown names are
    the caller's to report); ``label(name)`` names the value in the message."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: coerce(v, hints[k], label(k)) if k in names else v for k, v in values.items()}


# ------------------------------------------------------------------------------------------------ training options
# (field, CLI flag, lowest allowed value, why)
_TRAIN_RANGES = (
    ("max_epochs", "--max-epochs", 1, "0 epochs would save and score the untrained model"),
    ("batch_size", "--batch-size", 1, ""),
    ("patience", "--patience", 0, "0 disables early stopping"),
    ("devices", "--devices", 1, ""),
    ("num_nodes", "--num-nodes", 1, ""),
    ("num_threads", "--threads", 0, "0 keeps torch's default"),
    ("seed", "--seed", 0, "seeds are 0..2**32-1"),
)


def check_train_config(tc: Any) -> None:
    """Ranges of the training options; the message names the CLI flag and the config key."""
    for name, flag, low, why in _TRAIN_RANGES:
        v = getattr(tc, name)
        if v < low:
            raise ConfigError(f"{flag} (train.{name}) must be at least {low}, got {v}" + (f" ({why})" if why else ""))
    if tc.seed >= 2**32:
        raise ConfigError(f"--seed (train.seed) must be below 2**32, got {tc.seed}")
    if not tc.lr > 0:
        raise ConfigError(f"--lr (train.lr) must be a positive learning rate, got {tc.lr}")
    for name in ("weight_decay", "grad_clip"):
        if getattr(tc, name) < 0:
            raise ConfigError(f"train.{name} must be >= 0, got {getattr(tc, name)}")
    if not 0.0 <= tc.modality_dropout < 1.0:
        raise ConfigError(
            f"--modality-dropout (train.modality_dropout) is a probability in [0, 1), got {tc.modality_dropout}"
        )
    if tc.class_weight not in ("none", "balanced"):
        raise ConfigError(f"--class-weight (train.class_weight) must be none or balanced, got {tc.class_weight!r}")
    check_lightning_flags(tc)


def check_lightning_flags(tc: Any) -> None:
    """``--precision``, ``--accelerator``, ``--strategy`` against the names the installed Lightning accepts, and the
    accelerator's availability here (Lightning itself checks them only when the Trainer is built, after the data is
    loaded, and with a traceback)."""
    from lightning.pytorch.accelerators import AcceleratorRegistry
    from lightning.pytorch.strategies import StrategyRegistry

    try:  # Lightning's private names of its precision values: a version without them leaves the check to Lightning
        from lightning.fabric.plugins.precision.precision import (
            _PRECISION_INPUT_INT,
            _PRECISION_INPUT_STR,
            _PRECISION_INPUT_STR_ALIAS,
        )

        literals = (_PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS, _PRECISION_INPUT_INT)
        precisions = list(dict.fromkeys(str(p) for t in literals for p in typing.get_args(t)))
    except ImportError:
        precisions = [str(tc.precision)]
    accelerators = ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]
    strategies = ["auto", *StrategyRegistry.available_strategies()]
    for flag, key, value, allowed in (
        ("--precision", "precision", str(tc.precision), precisions),
        ("--accelerator", "accelerator", str(tc.accelerator), accelerators),
        ("--strategy", "strategy", str(tc.strategy).lower(), strategies),  # Lightning lowercases the strategy
    ):
        if value not in allowed:
            raise ConfigError(f"{flag} (train.{key}) must be one of {', '.join(allowed)}; got {value!r}")
    acc = tc.accelerator
    if acc in ("auto", "cpu"):
        return
    names = ("cuda", "mps") if acc == "gpu" else (acc,)
    if not any(AcceleratorRegistry[n]["accelerator"].is_available() for n in names):
        raise ConfigError(f"--accelerator {acc}: no {acc} device is available here; use cpu or auto")


def parse_rates(text: str | Sequence[float], flag: str) -> tuple[float, ...]:
    """Missing rates, each a probability in [0, 1): a comma list as ``--robustness-rates 0.1,0.3`` takes them, or a
    sequence of numbers."""
    try:
        rates = tuple(float(r) for r in (text.split(",") if isinstance(text, str) else text) if str(r).strip())
    except ValueError:
        raise ConfigError(f"{flag} must be comma-separated numbers, got {text!r}") from None
    if not rates:
        raise ConfigError(f"{flag} names no rate; write e.g. 0.1,0.3,0.5")
    bad = [r for r in rates if not 0.0 <= r < 1.0]
    if bad:
        raise ConfigError(f"{flag}: each rate is a probability in [0, 1), got {bad[0]}")
    return rates


def spec_differences(run: Any, new: Any) -> list[str]:
    """How dataset spec ``new`` differs from ``run`` (the spec a run was trained on) in what its weights depend on:
    task, number of outputs, modality names, kinds and shapes; empty when a model of ``run`` fits ``new``."""
    diffs = []
    if run.task != new.task:
        diffs.append(f"task {run.task} vs {new.task}")
    if run.num_outputs != new.num_outputs:
        diffs.append(f"outputs {run.num_outputs} vs {new.num_outputs}")
    if run.modality_names != new.modality_names:
        diffs.append(f"modalities {','.join(run.modality_names)} vs {','.join(new.modality_names)}")
        return diffs
    for a, b in zip(run.modalities, new.modalities):
        if (a.kind, tuple(a.shape)) != (b.kind, tuple(b.shape)):
            diffs.append(f"{a.name} {a.kind} {list(a.shape)} vs {b.kind} {list(b.shape)}")
    return diffs


# ------------------------------------------------------------------------------------------------ splits
def check_splits(data: Any, where: str) -> None:
    """Before training: every split holds rows and a classification train split holds two classes or more
    (``where`` names the dataset or folder in the message)."""
    sizes = data.split_sizes()
    shown = ", ".join(f"{s} {n}" for s, n in sizes.items())
    for s, n in sizes.items():
        if n == 0:
            src = "split.json" if data.info.get("protocol") == "split.json" else "the split"
            raise DataValidationError(
                f"{where}: the {s} split is empty ({shown}); training needs rows in train, val and test: fix {src}"
            )
    if data.spec.task in ("binary", "multiclass"):
        y = np.asarray(data.target)[np.asarray(data.splits["train"])].astype(np.int64).reshape(-1)
        classes = np.unique(y)
        if len(classes) < 2:
            names = data.spec.class_names
            c = int(classes[0])
            label = names[c] if c < len(names) else str(c)
            raise DataValidationError(
                f"{where}: the train split holds one class only (class {label!r}, {len(y)} rows); "
                "a classifier needs two classes or more: check the labels and the split"
            )


# ------------------------------------------------------------------------------------------------ --lags
def parse_lags(text: str | None) -> list[int] | None:
    """``--lags`` as ``L``, ``A..B`` (inclusive) or a comma list of non-negative integers."""
    if text is None:
        return None
    text = text.strip()
    usage = "write 0..L, A..B or a comma list such as 0,2,5 (non-negative time-step offsets)"
    try:
        if ".." in text:
            a, b = text.split("..", 1)
            lo, hi = int(a), int(b)
            lags = list(range(lo, hi + 1))
            if lo > hi:
                raise ConfigError(f"--lags {text} is an empty range (from {lo} down to {hi}); write LOW..HIGH")
        else:
            lags = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--lags {text}: not integers; {usage}") from None
    if not lags:
        raise ConfigError(f"--lags {text!r} names no lag; {usage}")
    neg = [v for v in lags if v < 0]
    if neg:
        raise ConfigError(f"--lags {text}: lags must be >= 0, got {neg or lags[:1]}; {usage}")
    return lags


def check_lags(lags: list[int] | None, data: Any, modalities: list[str] | None) -> None:
    """``--lags`` needs a pair of sequence modalities among those chosen, and lags shorter than their sequences."""
    if lags is None:
        return
    names = modalities or data.spec.modality_names
    seq = [m for m in names if data.spec.modality(m).kind == "sequence"]
    kinds = ", ".join(f"{m} ({data.spec.modality(m).kind})" for m in names)
    if len(seq) < 2:
        raise ConfigError(
            f"--lags applies to pairs of sequence modalities; the chosen modalities are {kinds}: drop --lags "
            "(or choose two sequence modalities with --modalities)"
        )
    steps = min(data.spec.modality(m).shape[0] for m in seq)
    if max(lags) >= steps:
        raise ConfigError(
            f"--lags: lag {max(lags)} needs sequences longer than that; {', '.join(seq)} have {steps} steps "
            f"(largest lag {steps - 1})"
        )
    if len(seq) < len(names):
        other = [m for m in names if m not in seq]
        warn(f"--lags applies to sequence pairs only; pairs with {', '.join(other)} are estimated without lags")


# ------------------------------------------------------------------------------------------------ --budget
def check_budget(model: Any, budget: int | None, flag: str = "--budget") -> None:
    """A test-time budget is 0 (the shared agent alone) .. K (every routed agent); above the trained budget it is
    allowed but is an extrapolation, which the warning says."""
    if budget is None:
        return
    k_max = int(getattr(model, "num_agents", 1)) - 1
    if not 0 <= int(budget) <= k_max:
        raise ConfigError(
            f"{flag} must be between 0 (shared agent only) and {k_max} (every routed agent), got {budget}"
        )
    if budget_is_extrapolated(model, budget):
        warn(
            f"{flag} {budget} is above the trained budget {model.cfg.active_agents} (active_agents): allowed up to "
            f"K={k_max}, but it is an extrapolation (the controller never routed that many agents per sample in "
            "training)"
        )


def budget_is_extrapolated(model: Any, budget: int | None) -> bool:
    """Whether a test-time ``budget`` is above the budget the agent model was trained with (``active_agents``); a
    dense-trained model woke every agent in training, so no budget is."""
    if getattr(model, "trained_gating", None) == "dense":
        return False
    trained = getattr(getattr(model, "cfg", None), "active_agents", None)
    return budget is not None and trained is not None and int(budget) > int(trained)


def check_trained_budget(model: Any, model_cfg: Any) -> None:
    """``active_agents`` of an agent model: negative is an error; above K routed agents it is capped at K, which
    the warning says (the model clamps it)."""
    k = getattr(model_cfg, "active_agents", None)
    if k is None or not hasattr(model, "num_agents"):
        return
    k_max = int(model.num_agents) - 1
    if k < 0:
        raise ConfigError(f"model option active_agents (--set active_agents=...) must be >= 0, got {k}")
    if k > k_max:
        warn(f"active_agents {k} is above the {k_max} routed agents of this model: it trains with {k_max}")


# ------------------------------------------------------------------------------------------------ output paths
def _check_nearest_folder(p: Path, flag: str, verb: str) -> None:
    """The nearest existing ancestor of ``p`` must be a writable folder, else ``p`` cannot be ``verb``."""
    parent = p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {p}: cannot be {verb}, {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {p}: cannot be {verb}, {parent} is not writable")


def ensure_parent(path: str | Path, flag: str) -> Path:
    """Fail early when file ``path`` cannot be written because its folder cannot be created."""
    p = Path(path).expanduser()
    _check_nearest_folder(p, flag, "written")
    return p


def ensure_creatable(path: str | Path, flag: str) -> Path:
    """Fail early, without creating anything, when folder ``path`` cannot be created (a parent is a file, or not
    writable)."""
    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ConfigError(f"{flag} {p}: exists and is not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise ConfigError(f"{flag} {p}: the folder is not writable")
        return p
    _check_nearest_folder(p, flag, "created")
    return p


# ------------------------------------------------------------------------------------------------ JSON
def json_safe(obj: Any, path: str = "", bad: list[str] | None = None) -> Any:
    """``obj`` with NaN/inf replaced by None (their dotted paths appended to ``bad``) and numpy scalars/arrays made
    plain, so that ``json.dumps(allow_nan=False)`` accepts it."""
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        if bad is not None:
            bad.append(path)
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v, f"{path}.{k}" if path else str(k), bad) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, f"{path}[{i}]", bad) for i, v in enumerate(obj)]
    return obj


def json_text(obj: Any, name: str | None = None) -> str:
    """Standard JSON (``indent=2``); when ``name`` is given, undefined values (NaN, e.g. AUROC on a split holding one
    class) are reported in a warning naming the file and the fields, and written as null."""
    bad: list[str] = []
    clean = json_safe(obj, bad=bad)
    fields = [b for b in bad if b.split(".")[0] in ("val", "test", "train")] or bad
    if name is not None and fields:
        shown = ", ".join(fields[:8]) + (" ..." if len(fields) > 8 else "")
        warn(f"{name}: {shown} undefined (NaN: e.g. AUROC/AUPRC on a split holding one class only); written as null")
    return json.dumps(clean, indent=2, allow_nan=False)
