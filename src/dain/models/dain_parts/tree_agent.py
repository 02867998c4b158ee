"""A heterogeneous agent: gradient-boosted trees (LightGBM) over the per-modality summary features of ``gbm``.

Trees are strong on tabular and summary features where small neural agents are not, so DAIN can route to them per
sample. The trees are fitted once, before gradient training (``fit``), as a *cross-fit*: the train split is cut into
``folds`` parts and one booster is fitted per part left out (parameters and early stopping on the validation split
as ``gbm``).
During training each training row gets the prediction of the booster that never saw it (out-of-fold), so the
controller and the consensus learn how far to trust the trees on new rows rather than on rows they memorised. At
inference the prediction is the mean of the fold boosters. A multilabel task gets one binary booster per label
in each fold. Measured on P12 (Raindrop splits 1-2, out-of-fold
AUROC on the train rows): 5 folds at learning rate 0.02 give 87.5 / 87.2 against 86.7 / 86.6 for 3 folds at 0.05.

The agent's input to the network is its prediction (logits); a small neural trunk/head on top calibrates it and
gives the messaging state. Cost: one comparison per tree level visited, counted as one FLOP each
(:meth:`flops_per_sample`); the feature summaries, like the glimpses, are element-wise and count 0."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from dain.data.spec import DatasetSpec, MultimodalDataset
from dain.errors import DainError
from dain.models.gbm import (
    batch_features,
    boosters_for,
    lightgbm_params,
    summary_features,
    to_logits,
    tree_comparisons,
)


def lightgbm_available() -> bool:
    """Whether LightGBM can be imported (a dependency of dain, but an install with ``--no-deps`` may lack it)."""
    import importlib.util

    return importlib.util.find_spec("lightgbm") is not None


def _lgb():
    try:
        import lightgbm
    except ImportError as e:
        raise DainError(
            "dain's tree agent needs LightGBM (a dependency of dain): pip install lightgbm (or set tree_agent=never)"
        ) from e
    return lightgbm


class TreeAgent(nn.Module):
    """Cross-fitted LightGBM boosters; ``forward(batch)`` -> logits ``[B, C]`` (out-of-fold on training rows)."""

    def __init__(
        self,
        spec: DatasetSpec,
        folds: int = 5,
        learning_rate: float = 0.02,
        num_leaves: int = 31,
        early_stopping: int = 100,
    ) -> None:
        super().__init__()
        self.spec, self.folds, self.early_stopping = spec, folds, early_stopping
        self.learning_rate, self.num_leaves = learning_rate, num_leaves
        self.register_buffer("model_bytes", torch.zeros(0, dtype=torch.uint8))
        self._boosters: list | None = None  # fold-major: fold f, label l at f * labels + l
        self.booster_task, self.labels = boosters_for(spec)  # labels: boosters per fold
        # out-of-fold logits of the training rows (what the agent answers in training), saved with the weights so
        # that a loaded model trains on them too; a dict row -> logits is built from them on first use
        self.register_buffer("oof_rows", torch.zeros(0, dtype=torch.long))
        self.register_buffer("oof_logits", torch.zeros(0, 0))
        self._oof: dict[int, np.ndarray] | None = None
        self._path_len: list[float] | None = None  # comparisons per prediction, per booster
        self.used_folds: int | None = None  # inference: the mean of the first this many folds (None = all)

    @property
    def fitted(self) -> bool:
        return self.model_bytes.numel() > 0

    # ------------------------------------------------------------------ fitting
    def fit(
        self, data: MultimodalDataset, seed: int = 0, threads: int = 1, log: Callable[[str], None] | None = None
    ) -> dict[str, float]:
        """Cross-fit the boosters on the train split (early stopping on val) and keep out-of-fold train logits;
        ``log(text)`` gets one line per fold (a fold can take minutes on a large train split)."""
        x, y, tr, va = self.arrays(data)
        params = self.params(len(tr) * (self.folds - 1) // self.folds, seed, threads)
        rng = np.random.default_rng(seed)
        fold_of = rng.permutation(len(tr)) % self.folds
        texts, oof = [], {}
        for f in range(self.folds):
            fit_rows, held = tr[fold_of != f], tr[fold_of == f]
            t0 = time.perf_counter()
            held_logits, rounds = [], 0
            for label in range(self.labels):
                yl = y if self.labels == 1 else y[:, label]
                booster = self.train_booster(params, x, yl, fit_rows, va)
                best = booster.best_iteration or None
                rounds += best or booster.current_iteration()
                texts.append(booster.model_to_string(num_iteration=best))
                held_logits.append(to_logits(self.booster_task, booster.predict(x[held], num_iteration=best)))
            if log is not None:
                log(f"dain: tree agent fold {f + 1}/{self.folds}: {rounds} rounds in {time.perf_counter() - t0:.1f} s")
            held_logits = np.concatenate(held_logits, 1)
            oof.update({int(r): held_logits[i] for i, r in enumerate(held)})
        blob = "\n<<<fold>>>\n".join(texts).encode()
        self.model_bytes = torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone()
        rows = sorted(oof)
        self.oof_rows = torch.tensor(rows, dtype=torch.long)
        self.oof_logits = torch.as_tensor(np.stack([oof[r] for r in rows]), dtype=torch.float32)
        self._boosters, self._oof, self._path_len = None, oof, None
        return {"trees": float(sum(t.count("Tree=") for t in texts))}

    def arrays(self, data: MultimodalDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What the boosters train on: summary features [N, F], the target ([N]; several labels or targets: [N, L]),
        train rows, val rows."""
        x = summary_features(self.spec, data.inputs, data.mask, data.steps)
        y = data.target.astype(np.float64).reshape(len(data.target), -1)
        y = y if self.labels > 1 else y[:, 0]
        return x, y, np.asarray(data.splits["train"]), np.asarray(data.splits["val"])

    def params(self, n_fit: int, seed: int, threads: int) -> dict:
        """LightGBM parameters of the boosters: ``gbm``'s, sized from ``n_fit`` training rows."""
        task = self.booster_task
        p = lightgbm_params(task, self.spec.num_outputs, n_fit, seed, threads, self.learning_rate, self.num_leaves)
        if task == "regression":  # the agent's logits feed a network trained with the squared error
            p.update(objective="regression", metric="l2")
        return p

    def train_booster(self, params: dict, x: np.ndarray, y: np.ndarray, rows: np.ndarray, val: np.ndarray):  # noqa: ANN201
        """One booster on the ``rows`` of ``x``/``y``, early-stopped on the ``val`` rows."""
        lgb = _lgb()
        return lgb.train(
            params,
            lgb.Dataset(x[rows], y[rows]),
            num_boost_round=2000,
            valid_sets=[lgb.Dataset(x[val], y[val])],
            callbacks=[lgb.early_stopping(self.early_stopping, verbose=False)],
        )

    def _get_boosters(self) -> list:
        if self._boosters is None:
            if not self.fitted:
                raise DainError("dain's tree agent is not fitted (it is fitted by `dain fit` before training)")
            lgb = _lgb()
            texts = bytes(self.model_bytes.cpu().numpy()).decode().split("\n<<<fold>>>\n")
            self._boosters = [lgb.Booster(model_str=t) for t in texts]
        return self._boosters

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        for name in ("model_bytes", "oof_rows", "oof_logits"):  # variable sizes: take the saved one's
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.zeros_like(state_dict[key]))
            elif name != "model_bytes":  # saved before the out-of-fold logits were: none
                state_dict[key] = getattr(self, name)[:0]
        self._boosters, self._path_len, self._oof = None, None, None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _oof_by_row(self) -> dict[int, np.ndarray]:
        if self._oof is None:
            logits = self.oof_logits.detach().cpu().numpy()
            self._oof = {int(r): logits[i] for i, r in enumerate(self.oof_rows.tolist())}
        return self._oof

    # ------------------------------------------------------------------ inference
    def set_folds(self, folds: int | None) -> None:
        """Answer at inference with the mean of the first ``folds`` fold boosters (``None``: all). Fewer boosters
        score faster (their time is in the tree traversals, about 120 ns per tree and row on P12); the harness's
        calibration picks the count on validation."""
        if folds is not None and not 1 <= folds <= self.folds:
            raise ValueError(f"dain: the tree agent has {self.folds} fold boosters, got tree_folds={folds}")
        self.used_folds = None if folds == self.folds else folds

    def fold_logits(self, batch: dict, folds: int | None = None) -> list[np.ndarray]:
        """The logits [B, C] on ``batch`` of each of the first ``folds`` folds (``None``: every fold, whatever
        :meth:`set_folds` chose)."""
        x = batch_features(self.spec, batch)
        boosters, L, task = self._get_boosters(), self.labels, self.booster_task
        return [
            np.concatenate([to_logits(task, b.predict(x)) for b in boosters[f * L : (f + 1) * L]], 1)
            for f in range(folds or self.folds)
        ]

    def forward(self, batch: dict) -> torch.Tensor:
        """Logits [B, C]: out-of-fold predictions for training rows while training, else the mean of the fold
        boosters in use."""
        B = batch["mask"].shape[0]
        index = batch.get("index")
        device = batch["mask"].device
        oof = self._oof_by_row() if self.training and index is not None else {}
        if oof:
            idx = index.cpu().numpy().tolist()
            if all(i in oof for i in idx):
                return torch.as_tensor(np.stack([oof[i] for i in idx]), dtype=torch.float32, device=device)
        logits = np.mean(self.fold_logits(batch, self.used_folds), axis=0)
        return torch.as_tensor(logits.reshape(B, -1), dtype=torch.float32, device=device)

    def flops_per_sample(self, all_folds: bool = False) -> float:
        """Node comparisons per prediction: the mean depth of the leaves reached, weighted by their training counts,
        summed over every tree of every fold booster in use (``all_folds``: of all of them, whatever calibration
        chose; plus one add per tree)."""
        if self._path_len is None:
            self._path_len = [tree_comparisons(b) for b in self._get_boosters()]
        folds = self.folds if all_folds else (self.used_folds or self.folds)
        return float(sum(self._path_len[: folds * self.labels]))
