"""The bootstrap over prompts: known answers, pairing, NaN handling, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from divtrace.analysis.bootstrap import (
    bootstrap_mean,
    interval,
    paired_bootstrap,
    paired_means,
    resample_indices,
    resample_weights,
    rng_for,
    safe_ratio,
)
from divtrace.errors import AnalysisError


def test_constant_values_give_zero_width_interval():
    for constant in (0.1, 0.7, 3.0, -2.5):
        result = bootstrap_mean(np.full(17, constant), n_boot=500, seed=3)
        low, high = result.interval()
        assert result.estimate[0] == constant
        assert low[0] == constant and high[0] == constant
        assert np.all(result.samples == constant)


def test_mean_of_normal_sample_matches_normal_theory():
    rng = np.random.default_rng(42)
    n = 4000
    values = rng.normal(5.0, 2.0, size=n)
    result = bootstrap_mean(values, n_boot=2000, seed=0)
    low, high = result.interval(0.95)
    half = 1.96 * values.std(ddof=1) / np.sqrt(n)
    assert result.estimate[0] == pytest.approx(values.mean(), abs=1e-12)
    assert low[0] == pytest.approx(values.mean() - half, abs=0.15 * half)
    assert high[0] == pytest.approx(values.mean() + half, abs=0.15 * half)
    # A narrower level gives a narrower interval.
    low90, high90 = result.interval(0.90)
    assert low[0] < low90[0] < high90[0] < high[0]


def test_columns_share_one_resample_and_match_separate_runs():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(50, 3))
    together = bootstrap_mean(values, n_boot=300, seed=9, key=("t",))
    for j in range(3):
        alone = bootstrap_mean(values[:, j], n_boot=300, seed=9, key=("t",))
        np.testing.assert_allclose(alone.samples[:, 0], together.samples[:, j], rtol=1e-12)
    assert together.samples.shape == (300, 3)
    np.testing.assert_allclose(together.estimate, values.mean(axis=0), rtol=1e-12)
    assert list(together.n) == [50, 50, 50]


def test_paired_difference_of_identical_models_is_exactly_zero():
    rng = np.random.default_rng(5)
    a = rng.normal(0.4, 0.1, size=(30, 4))
    result = paired_bootstrap(a, a.copy(), statistic="difference", n_boot=400, seed=1)
    low, high = result.interval()
    assert np.all(result.estimate == 0.0)
    assert np.all(result.samples == 0.0)
    assert np.all(low == 0.0) and np.all(high == 0.0)
    ratio = paired_bootstrap(a, a.copy(), statistic="ratio", n_boot=400, seed=1)
    assert np.all(ratio.estimate == 1.0)
    low, high = ratio.interval()
    np.testing.assert_allclose(low, 1.0, rtol=1e-12)
    np.testing.assert_allclose(high, 1.0, rtol=1e-12)


def test_paired_difference_is_tighter_than_unpaired_for_correlated_arms():
    rng = np.random.default_rng(11)
    prompt_effect = rng.normal(0, 1.0, size=200)
    a = prompt_effect + 0.3 + rng.normal(0, 0.1, size=200)
    b = prompt_effect + rng.normal(0, 0.1, size=200)
    paired = paired_bootstrap(a, b, n_boot=1000, seed=0)
    low, high = paired.interval()
    assert paired.estimate[0] == pytest.approx(a.mean() - b.mean())
    assert low[0] > 0.2 and high[0] < 0.4  # the prompt effect cancels
    separate = bootstrap_mean(a, n_boot=1000, seed=0).interval()
    assert (high[0] - low[0]) < 0.5 * (separate[1][0] - separate[0][0])


def test_paired_ratio_is_ratio_of_means_on_common_prompts():
    a = np.array([1.0, 2.0, np.nan, 4.0])
    b = np.array([2.0, 2.0, 9.0, np.nan])
    result = paired_bootstrap(a, b, statistic="ratio", n_boot=200, seed=0)
    assert result.estimate[0] == pytest.approx(1.5 / 2.0)
    assert result.n[0] == 2
    low, high = result.interval()
    assert low[0] <= result.estimate[0] <= high[0]


def test_nan_values_are_left_out_per_column():
    values = np.array([[1.0, np.nan], [3.0, 10.0], [np.nan, 20.0], [5.0, np.nan]])
    result = bootstrap_mean(values, n_boot=300, seed=2)
    np.testing.assert_allclose(result.estimate, [3.0, 15.0])
    assert list(result.n) == [3, 2]
    low, high = result.interval()
    assert 1.0 <= low[0] <= high[0] <= 5.0
    assert 10.0 <= low[1] <= high[1] <= 20.0


def test_all_nan_and_empty_give_nan_not_errors():
    result = bootstrap_mean(np.full(5, np.nan), n_boot=50, seed=0)
    assert np.isnan(result.estimate[0]) and result.n[0] == 0
    assert all(np.isnan(bound[0]) for bound in result.interval())
    empty = bootstrap_mean(np.zeros((0, 2)), n_boot=50, seed=0)
    assert np.isnan(empty.estimate).all()
    assert np.isnan(np.concatenate(empty.interval())).all()
    none = bootstrap_mean(np.arange(4.0), n_boot=0, seed=0)
    assert none.samples.shape == (0, 1)
    assert none.estimate[0] == pytest.approx(1.5)
    assert np.isnan(np.concatenate(none.interval())).all()


def test_seeded_reproducibility_and_keys():
    values = np.random.default_rng(0).normal(size=40)
    first = bootstrap_mean(values, n_boot=200, seed=7, key=("gsm8k",))
    again = bootstrap_mean(values, n_boot=200, seed=7, key=("gsm8k",))
    np.testing.assert_array_equal(first.samples, again.samples)
    other_seed = bootstrap_mean(values, n_boot=200, seed=8, key=("gsm8k",))
    other_key = bootstrap_mean(values, n_boot=200, seed=7, key=("math",))
    assert not np.array_equal(first.samples, other_seed.samples)
    assert not np.array_equal(first.samples, other_key.samples)
    with pytest.raises(AnalysisError, match="seed"):
        rng_for(-1)


def test_resample_weights_count_the_indices():
    indices = resample_indices(6, 20, rng_for(3, "x"))
    weights = resample_weights(6, 20, rng_for(3, "x"))
    assert indices.shape == (20, 6) and weights.shape == (20, 6)
    np.testing.assert_array_equal(weights.sum(axis=1), 6)
    for row, counts in zip(indices, weights, strict=True):
        np.testing.assert_array_equal(np.bincount(row, minlength=6), counts)


def test_paired_means_use_the_same_resample_for_every_arm():
    rng = np.random.default_rng(4)
    a = rng.normal(size=25)
    estimate, samples, n = paired_means([a, 2 * a, a + 1], n_boot=100, seed=0)
    assert samples.shape == (100, 3, 1) and n[0] == 25
    np.testing.assert_allclose(samples[:, 1, 0], 2 * samples[:, 0, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(samples[:, 2, 0], samples[:, 0, 0] + 1, rtol=1e-9)
    np.testing.assert_allclose(estimate[:, 0], [a.mean(), 2 * a.mean(), a.mean() + 1])
    with pytest.raises(ValueError, match="shape"):
        paired_means([a, a[:-1]])


def test_interval_and_ratio_helpers():
    low, high = interval(np.arange(101.0)[:, None], 0.9)
    assert low[0] == pytest.approx(5.0) and high[0] == pytest.approx(95.0)
    with pytest.raises(ValueError, match="level"):
        interval(np.zeros((3, 1)), 1.5)
    ratio = safe_ratio([1.0, 1.0, 1.0], [2.0, 0.0, np.nan])
    assert ratio[0] == 0.5 and np.isnan(ratio[1:]).all()
    with pytest.raises(ValueError, match="statistic"):
        paired_bootstrap([1.0], [1.0], statistic="product")  # type: ignore[arg-type]


def test_no_column_gives_empty_bounds():
    """A run whose every prompt lacks a value has no metric column left: empty bounds."""
    result = bootstrap_mean(np.zeros((5, 0)), n_boot=10)
    low, high = result.interval()
    assert low.shape == high.shape == (0,)
