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
(:meth:`flops_per_sample`); the feature summaries, like the glimpses, are element-wise and count 0.

Wide data: LightGBM looks for each split over every bin of every column, so on thousands of continuous summary
features the cross-fit took minutes where late fusion took seconds (2050 columns of 255 bins, 3500 rows: 305 s).
Where the train split's columns have more than ``SCREEN_ABOVE_BINS`` bins in all (LightGBM's own binning), each fold
first fits a short screening booster on its own fit rows, keeps the ``SCREEN_KEEP`` columns with the most split gain,
and fits its booster on those columns only. The screen sees only the fold's fit rows, so the held-out rows'
predictions stay out-of-fold. A booster's columns are its LightGBM feature names (``Column_<j>``, LightGBM's own
default naming), so saved models need no extra record."""

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
    booster_logits,
    boosters_for,
    lightgbm_params,
    summary_features,
    tree_comparisons,
)

# above this many bins over all the summary columns (512 columns of 256 bins) each fold screens its columns first,
# keeping this many. Measured (docs/results.md, issue 12, 2026-12-07 third session): 2050 columns (523k bins) 5.2x
# faster, validation AUROC +0.5; 10040 columns (1.4M bins) 4.6x faster, -0.2; mfeat (80k bins, multiclass) 2.2x
# faster, equal; P12 (116k bins: piecewise-linear columns with few distinct values) 3x faster but -0.1 on 3 splits,
# where the unscreened cross-fit takes 3 minutes of a 10-minute fit: below the threshold, not screened
SCREEN_ABOVE_BINS = 512 * 256
SCREEN_KEEP = 256
# the screening booster: a fixed short run at a high learning rate over all the columns (no early stopping: its only
# use is the ranking by gain)
SCREEN_ROUNDS, SCREEN_LEARNING_RATE = 50, 0.1


def columns_of(booster) -> np.ndarray:  # noqa: ANN001
    """The summary-feature columns a booster was fitted on (increasing), from its feature names (``Column_<j>``)."""
    return np.array([int(n.rsplit("_", 1)[1]) for n in booster.feature_name()], dtype=np.int64)


def select_columns(x: np.ndarray, cols: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """``x [N, F]`` (its ``rows``, if given) restricted to a booster's ``cols``, copying only those columns (no copy of
    ``x`` at all when they are all F and no rows are given: an unscreened booster)."""
    if len(cols) == x.shape[1]:
        return x if rows is None else x[rows]
    return x[:, cols] if rows is None else x[np.ix_(rows, cols)]


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
        screen_above_bins: int = SCREEN_ABOVE_BINS,
    ) -> None:
        super().__init__()
        self.spec, self.folds, self.early_stopping = spec, folds, early_stopping
        self.screen_above_bins = screen_above_bins
        self.learning_rate, self.num_leaves = learning_rate, num_leaves
        self.register_buffer("model_bytes", torch.zeros(0, dtype=torch.uint8))
        self._boosters: list | None = None  # fold-major: fold f, label l at f * labels + l
        self._columns: list[np.ndarray] | None = None  # per booster: the summary columns it reads
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
        bins = self.total_bins(params, x, tr)
        screen = bins > self.screen_above_bins
        if screen and log is not None:
            log(
                f"dain: tree agent: {x.shape[1]} summary columns, {bins} bins: each fold fits on the {SCREEN_KEEP} "
                "its own screening booster ranks highest"
            )
        rng = np.random.default_rng(seed)
        fold_of = rng.permutation(len(tr)) % self.folds
        texts, oof = [], {}
        for f in range(self.folds):
            fit_rows, held = tr[fold_of != f], tr[fold_of == f]
            t0 = time.perf_counter()
            held_logits, rounds = [], 0
            for label in range(self.labels):
                yl = y if self.labels == 1 else y[:, label]
                booster = self.train_booster(params, x, yl, fit_rows, va, screen=screen)
                best = booster.best_iteration or None
                rounds += best or booster.current_iteration()
                texts.append(booster.model_to_string(num_iteration=best))
                xh = select_columns(x, columns_of(booster), held)
                held_logits.append(booster_logits(self.booster_task, booster, xh, threads, num_iteration=best))
            if log is not None:
                log(f"dain: tree agent fold {f + 1}/{self.folds}: {rounds} rounds in {time.perf_counter() - t0:.1f} s")
            held_logits = np.concatenate(held_logits, 1)
            oof.update({int(r): held_logits[i] for i, r in enumerate(held)})
        blob = "\n<<<fold>>>\n".join(texts).encode()
        self.model_bytes = torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone()
        rows = sorted(oof)
        self.oof_rows = torch.tensor(rows, dtype=torch.long)
        self.oof_logits = torch.as_tensor(np.stack([oof[r] for r in rows]), dtype=torch.float32)
        self._boosters, self._columns, self._oof, self._path_len = None, None, oof, None
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

    @staticmethod
    def total_bins(params: dict, x: np.ndarray, rows: np.ndarray) -> int:
        """Bins over all the columns of ``x[rows]`` as LightGBM bins them: the work of each split search."""
        lgb = _lgb()
        ds = lgb.Dataset(x[rows], params={"verbose": -1, "num_threads": params["num_threads"]}).construct()
        return int(sum(ds.feature_num_bin(i) for i in range(ds.num_feature())))

    def train_booster(  # noqa: ANN201
        self, params: dict, x: np.ndarray, y: np.ndarray, rows: np.ndarray, val: np.ndarray, screen: bool = False
    ):
        """One booster on the ``rows`` of ``x``/``y``, early-stopped on the ``val`` rows; with ``screen``, on the
        columns :meth:`screen` keeps."""
        lgb = _lgb()
        if screen:  # one copy of the kept columns only (the screen has read every column of these rows)
            cols = self.screen(params, x, y, rows)
            xr, xv, names = select_columns(x, cols, rows), select_columns(x, cols, val), [f"Column_{j}" for j in cols]
        else:
            xr, xv, names = x[rows], x[val], "auto"
        return lgb.train(
            params,
            lgb.Dataset(xr, y[rows], feature_name=names),
            num_boost_round=2000,
            valid_sets=[lgb.Dataset(xv, y[val], feature_name=names)],
            callbacks=[lgb.early_stopping(self.early_stopping, verbose=False)],
        )

    def screen(self, params: dict, x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The ``SCREEN_KEEP`` columns with the most split gain in a short booster on ``rows`` only (fewer where
        fewer were split on), in column order."""
        lgb = _lgb()
        quick = {**params, "learning_rate": SCREEN_LEARNING_RATE}
        booster = lgb.train(quick, lgb.Dataset(x[rows], y[rows]), num_boost_round=SCREEN_ROUNDS)
        gain = booster.feature_importance(importance_type="gain")
        ranked = np.argsort(-gain, kind="stable")[:SCREEN_KEEP]
        return np.sort(ranked[gain[ranked] > 0]) if (gain > 0).any() else np.sort(ranked)

    def _get_boosters(self) -> list:
        if self._boosters is None:
            if not self.fitted:
                raise DainError("dain's tree agent is not fitted (it is fitted by `dain fit` before training)")
            lgb = _lgb()
            texts = bytes(self.model_bytes.cpu().numpy()).decode().split("\n<<<fold>>>\n")
            self._boosters = [lgb.Booster(model_str=t) for t in texts]
            self._columns = [columns_of(b) for b in self._boosters]
        return self._boosters

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        for name in ("model_bytes", "oof_rows", "oof_logits"):  # variable sizes: take the saved one's
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.zeros_like(state_dict[key]))
            elif name != "model_bytes":  # saved before the out-of-fold logits were: none
                state_dict[key] = getattr(self, name)[:0]
        self._boosters, self._columns, self._path_len, self._oof = None, None, None, None
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
        return self.features_logits(batch_features(self.spec, batch), folds)

    def features_logits(self, x: np.ndarray, folds: int | None = None) -> list[np.ndarray]:
        """:meth:`fold_logits` from summary features ``x`` [B, F] (each booster reads its own columns)."""
        boosters, L, task = self._get_boosters(), self.labels, self.booster_task
        cols = self._columns

        def logits(i: int) -> np.ndarray:
            return booster_logits(task, boosters[i], select_columns(x, cols[i]))

        return [np.concatenate([logits(i) for i in range(f * L, (f + 1) * L)], 1) for f in range(folds or self.folds)]

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
