"""Gradient-boosted trees (LightGBM) on per-modality summary features: the reference a practitioner tries first.

Features: vector modalities as they are; sequence modalities summarised per channel over observed steps (mean, min,
max, last, count); a missing modality becomes NaN (LightGBM routes missing values natively). Trained directly (not
by gradient descent): the harness calls :meth:`GBMModel.fit_direct` with early stopping on the validation split.
The booster is stored in a uint8 buffer so run directories keep their ``model.safetensors`` format.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dain.data.spec import DatasetSpec, MultimodalDataset
from dain.errors import DainError
from dain.models.base import ModelOutput, register_model


def min_child_samples_for(n_train: int) -> int:
    """LightGBM's ``min_child_samples`` sized from the training rows: its usual 20 from 320 rows up, fewer below
    (never under 2), so that small datasets can still be split."""
    return int(min(20, max(2, n_train // 16)))


def boosters_for(spec: DatasetSpec) -> tuple[str, int]:
    """The LightGBM task of each booster and how many boosters a model of ``spec`` fits: one per label (binary)
    for multilabel, one per target for regression (several targets: one booster each), else one of the spec's own
    task."""
    if spec.task == "multilabel":
        return "binary", spec.num_outputs
    if spec.task == "regression":
        return "regression", spec.num_outputs
    return spec.task, 1


def to_logits(task: str, p: np.ndarray) -> np.ndarray:
    """One booster's predictions as logits ``[N, C]`` (``task``: the booster's, see :func:`boosters_for`): binary
    probabilities -> log-odds ``[N, 1]``, class probabilities -> log-probabilities, values as they are."""
    p = np.asarray(p, dtype=np.float64)
    if task == "binary":
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p)).reshape(-1, 1)
    if task == "multiclass":
        return np.log(np.clip(p, 1e-9, 1.0))
    return p.reshape(-1, 1)


def booster_logits(task: str, booster, x: np.ndarray, threads: int | None = None, **predict) -> np.ndarray:  # noqa: ANN001
    """A booster's logits on ``x`` (:func:`to_logits`), scored on ``threads`` threads (``None``: the process's torch
    thread count). LightGBM's own default is its OpenMP runtime's: where torch shares that runtime (this project's CPU
    machine) ``torch.set_num_threads`` already limits it, elsewhere it would score on every core whatever
    ``--threads`` says."""
    threads = torch.get_num_threads() if threads is None else threads
    return to_logits(task, booster.predict(x, num_threads=max(1, threads), **predict))


def lightgbm_params(
    task: str,
    num_outputs: int,
    n_train: int,
    seed: int,
    threads: int,
    learning_rate: float = 0.02,
    num_leaves: int = 31,
    subsample: float = 0.8,
    colsample_bytree: float = 0.5,
    min_child_samples: int = 0,
    binary_metric: str = "auc",
) -> dict:
    """LightGBM parameters shared by ``gbm`` and DAIN's tree agent (``min_child_samples`` 0: sized from
    ``n_train``)."""
    params = {
        "learning_rate": learning_rate,
        "num_leaves": num_leaves,
        "bagging_fraction": subsample,
        "bagging_freq": 1,
        "feature_fraction": colsample_bytree,
        "min_child_samples": min_child_samples or min_child_samples_for(n_train),
        "seed": seed,
        "verbose": -1,
        "num_threads": max(1, threads),
        "deterministic": True,
        "force_col_wise": True,
    }
    if task == "binary":
        params.update(objective="binary", metric=binary_metric)
    elif task == "multiclass":
        params.update(objective="multiclass", num_class=num_outputs, metric="multi_logloss")
    elif task == "regression":
        params.update(objective="regression_l1", metric="l1")
    else:
        raise DainError(f"LightGBM models support binary, multiclass and regression tasks, not {task!r}")
    return params


def summary_features(
    spec: DatasetSpec,
    inputs: dict[str, np.ndarray],
    mask: np.ndarray,
    steps: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """[N, F] float32 features; sequences -> per-channel mean/min/max/last/count over observed steps."""
    cols = []
    steps = steps or {}
    for j, m in enumerate(spec.modalities):
        x = np.asarray(inputs[m.name], dtype=np.float32)
        if m.kind == "vector":
            f = x.copy()
        elif m.kind == "sequence":
            st = steps.get(m.name)
            st = np.ones(x.shape[:2], bool) if st is None else np.asarray(st, bool)
            cnt = st.sum(1, dtype=np.float32)[:, None]  # [N, 1]: observed steps (the same for every channel)
            obs = st[..., None]
            mean = (x * obs).sum(1) / np.maximum(cnt, 1.0)
            # reductions with where= skip the unobserved steps without building masked copies of x (2x faster)
            mn = np.min(x, axis=1, where=obs, initial=np.inf)
            mx = np.max(x, axis=1, where=obs, initial=-np.inf)
            last_idx = np.where(st.any(1), x.shape[1] - 1 - np.argmax(st[:, ::-1], axis=1), 0)
            last = x[np.arange(len(x)), last_idx]
            f = np.concatenate([mean, mn, mx, last, cnt], axis=1)
            f[cnt[:, 0] == 0, : 4 * x.shape[2]] = np.nan  # no observed step: no statistic
            f[~np.isfinite(f)] = np.nan
        else:
            f = x.reshape(len(x), -1)
        f = f.astype(np.float32, copy=False)  # x is float32 already: the copies above are the only ones
        f[~mask[:, j]] = np.nan
        cols.append(f)
    return np.concatenate(cols, axis=1)


def batch_features(spec: DatasetSpec, batch: dict) -> np.ndarray:
    """:func:`summary_features` of a model's input batch (tensors on any device)."""
    inputs = {k: v.detach().cpu().numpy() for k, v in batch["inputs"].items()}
    steps = {k: v.cpu().numpy() for k, v in batch.get("steps", {}).items()}
    return summary_features(spec, inputs, batch["mask"].cpu().numpy(), steps)


def tree_comparisons(booster) -> float:  # noqa: ANN001
    """Cost of one prediction of a LightGBM booster: per tree, the count-weighted mean depth of its leaves (node
    comparisons on the way down) plus one add; summed over trees. Reported as FLOPs beside neural models."""

    def mean_depth(node: dict, depth: int = 0) -> float:
        if "left_child" not in node:
            return float(depth)
        left, right = node["left_child"], node["right_child"]
        nl = float(left.get("leaf_count", left.get("internal_count", 1)))
        nr = float(right.get("leaf_count", right.get("internal_count", 1)))
        tot = max(nl + nr, 1.0)
        return (nl * mean_depth(left, depth + 1) + nr * mean_depth(right, depth + 1)) / tot

    return float(sum(mean_depth(t["tree_structure"]) + 1.0 for t in booster.dump_model()["tree_info"]))


@register_model("gbm")
class GBMModel(nn.Module):
    """LightGBM on summary features (LightGBM is a dependency of dain). Hyper-parameters follow the P12 reference run of
    notes/benchmarks.md: up to 2000 trees, learning rate 0.02, 31 leaves, row/column subsampling 0.8/0.5. A
    multilabel task gets one binary booster per label."""

    fit_direct_model = True

    @dataclass
    class Config:
        n_estimators: int = 2000
        learning_rate: float = 0.02
        num_leaves: int = 31
        subsample: float = 0.8
        colsample_bytree: float = 0.5
        early_stopping_rounds: int = 100
        # 0 = sized from the data: min(20, max(2, n_train // 16)); LightGBM's fixed 20 cannot split at all when a
        # class has fewer rows than that (BasicMotions: 8 training rows a class -> a constant prediction)
        min_child_samples: int = 0

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.register_buffer("booster_bytes", torch.zeros(0, dtype=torch.uint8))
        self._boosters: list | None = None  # one per label (multilabel), else one
        self._anchor = nn.Parameter(torch.zeros(()))  # lets optimisers/Lightning see a parameter; never trained

    def _lgb(self):
        try:
            import lightgbm
        except ImportError as e:
            raise DainError("model 'gbm' needs LightGBM (a dependency of dain): pip install lightgbm") from e
        return lightgbm

    def fit_direct(self, data: MultimodalDataset, seed: int = 0, modality_dropout: float = 0.0) -> dict[str, float]:
        """Fit on the train split with early stopping on the validation split. ``modality_dropout`` p > 0 (the
        harness's ``train.modality_dropout``): the trees also see one copy of the training rows in which each present
        modality was removed with probability p, the counterpart of the neural models' per-step dropout."""
        lgb = self._lgb()
        c = self.cfg
        x = summary_features(self.spec, data.inputs, data.mask, data.steps)
        tr, va = data.splits["train"], data.splits["val"]
        task, labels = boosters_for(self.spec)
        params = lightgbm_params(
            task,
            self.spec.num_outputs,
            len(tr),
            seed,
            torch.get_num_threads(),
            c.learning_rate,
            c.num_leaves,
            c.subsample,
            c.colsample_bytree,
            c.min_child_samples,
        )
        y = data.target.astype(np.float64).reshape(len(data.target), -1)[:, :labels]
        x_tr, y_tr = x[tr], y[tr]
        if modality_dropout > 0:
            from dain.data.missing import Missingness, with_missing

            dropped, _ = with_missing(data, "train", Missingness(rate=modality_dropout, seed=seed))
            x_drop = summary_features(
                self.spec,
                {k: v[tr] for k, v in dropped.inputs.items()},
                dropped.mask[tr],
                {k: v[tr] for k, v in dropped.steps.items()},
            )
            x_tr, y_tr = np.concatenate([x_tr, x_drop]), np.concatenate([y_tr, y_tr])
        boosters = []
        for label in range(labels):
            dtr = lgb.Dataset(x_tr, y_tr[:, label])
            dva = lgb.Dataset(x[va], y[va, label], reference=dtr)
            boosters.append(
                lgb.train(
                    params,
                    dtr,
                    num_boost_round=c.n_estimators,
                    valid_sets=[dva],
                    callbacks=[lgb.early_stopping(c.early_stopping_rounds, verbose=False)],
                )
            )
        self._set_boosters(boosters)
        return {"best_iteration": float(np.mean([b.best_iteration for b in boosters]))}

    def size_info(self) -> dict[str, float]:
        """Model size as trees and leaves, and the comparisons a prediction makes (``flops_per_sample``)."""
        if self.booster_bytes.numel() == 0 and self._boosters is None:
            return {}
        boosters = self._get_boosters()
        trees = [t for b in boosters for t in b.dump_model()["tree_info"]]
        return {
            "trees": len(trees),
            "leaves": int(sum(t["num_leaves"] for t in trees)),
            "flops_per_sample": sum(tree_comparisons(b) for b in boosters),
        }

    def _set_boosters(self, boosters: list) -> None:
        text = "\n<<<label>>>\n".join(b.model_to_string(num_iteration=b.best_iteration or None) for b in boosters)
        self.booster_bytes = torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8).clone()
        self._boosters = boosters

    def _get_boosters(self) -> list:
        if self._boosters is None:
            if self.booster_bytes.numel() == 0:
                raise DainError("model 'gbm' is not fitted (train it with `dain fit --model gbm`)")
            lgb = self._lgb()
            texts = bytes(self.booster_bytes.cpu().numpy()).decode().split("\n<<<label>>>\n")
            self._boosters = [lgb.Booster(model_str=t) for t in texts]
        return self._boosters

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        key = prefix + "booster_bytes"
        if key in state_dict:
            self.booster_bytes = torch.zeros_like(state_dict[key])
            self._boosters = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, batch: dict) -> ModelOutput:
        x = batch_features(self.spec, batch)
        task = boosters_for(self.spec)[0]
        logits = np.concatenate([booster_logits(task, b, x) for b in self._get_boosters()], 1)
        out = torch.as_tensor(logits, dtype=torch.float32, device=batch["mask"].device)
        return ModelOutput(out + 0.0 * self._anchor)
