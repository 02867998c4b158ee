"""Piecewise-linear encoding: train-only edges, shape, monotonicity, missing values, degenerate bins."""

from __future__ import annotations

import numpy as np
import pytest

from dain.data.transforms import fit_quantile_edges, piecewise_linear


def test_edges_are_train_quantiles_and_ignore_other_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=(200, 3)).astype(np.float32)
    train = np.arange(150)
    e = fit_quantile_edges(x, train, 4)
    assert e.shape == (3, 5)
    np.testing.assert_allclose(e[1], np.quantile(x[train, 1], [0, 0.25, 0.5, 0.75, 1]), rtol=1e-5)
    x2 = x.copy()
    x2[150:] = 1e6  # corrupting non-train rows leaves the edges unchanged
    np.testing.assert_array_equal(fit_quantile_edges(x2, train, 4), e)


def test_encoding_values_shape_and_monotone() -> None:
    edges = np.array([[0.0, 1.0, 2.0, 4.0]], dtype=np.float32)
    x = np.array([[-1.0], [0.5], [1.0], [3.0], [9.0], [np.nan]], dtype=np.float32)
    out = piecewise_linear(x, edges)
    assert out.shape == (6, 3)
    np.testing.assert_allclose(out, [[0, 0, 0], [0.5, 0, 0], [1, 0, 0], [1, 1, 0.5], [1, 1, 1], [0, 0, 0]], atol=1e-6)
    # the sum of the encoding is a monotone function of x
    xs = np.linspace(-2, 6, 50, dtype=np.float32)[:, None]
    s = piecewise_linear(xs, edges).sum(1)
    assert (np.diff(s) >= 0).all()


def test_zero_width_bins_are_steps_and_empty_columns_are_zero() -> None:
    x = np.array([[0.0, np.nan], [0.0, np.nan], [0.0, np.nan], [5.0, np.nan]], dtype=np.float32)
    e = fit_quantile_edges(x, np.arange(4), 4)  # counts: most values 0 -> repeated edges
    out = piecewise_linear(x, e)
    assert out.shape == (4, 8) and np.isfinite(out).all()
    assert (out[:, 4:] == 0).all()  # a column never observed in train encodes as zeros
    assert out[3, :4].sum() > out[0, :4].sum()
    with pytest.raises(ValueError):
        piecewise_linear(x, e[:1])
    with pytest.raises(ValueError):
        fit_quantile_edges(x, np.arange(4), 0)


def test_column_never_seen_in_training_encodes_as_zeros() -> None:
    x = np.array([[np.nan, 1.0], [np.nan, 2.0], [5.0, 3.0]], dtype=np.float32)
    edges = fit_quantile_edges(x, np.array([0, 1]), 4)  # column 0: no finite training value
    out = piecewise_linear(np.array([[3.5, 2.0], [0.0, 2.0], [-1.0, 2.0]], dtype=np.float32), edges)
    assert (out[:, :4] == 0).all() and out[:, 4:].any()
