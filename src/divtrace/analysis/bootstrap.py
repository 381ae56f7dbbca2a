"""Seeded percentile bootstrap over prompts, single-sample and paired (vectorised with numpy).

The unit of resampling is the prompt: a statistic that is a mean over prompts is recomputed on
``n_boot`` resamples of the prompts drawn with replacement, and the interval is the
``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the resampled statistic (95 % by default).

Vectorisation: for ``n`` prompts one ``(n_boot, n)`` matrix of resampled indices is drawn and
turned into a matrix ``W`` of multiplicities (how often each prompt is drawn in each resample).
Every column of values (one per metric) and every arm of a paired comparison (one per model) is
then averaged over the same resamples with one matrix product, ``W @ values / W @ mask``.
Non-finite values (NaN) are left out of a column's mean; a paired comparison keeps, per column,
only the prompts whose values are finite in every arm (the intersection; its size is reported).

Reproducibility: the resamples depend only on ``seed``, the number of prompts and an optional
``key`` (any strings, e.g. the task name): :func:`rng_for` hashes them into a
:class:`numpy.random.SeedSequence`. Callers sort prompts by id, so a table does not depend on the
order of its input rows. Different keys give independent resamples, which makes a mean over tasks
of per-task bootstrap replicates a valid stratified bootstrap.

Values are shifted by a per-column centre (the column's first counted value) before averaging, so a constant column gives
exactly that constant in every resample (a zero-width interval), and a paired difference of
identical arms is exactly 0.
"""

from __future__ import annotations

import contextlib
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from divtrace.errors import AnalysisError

DEFAULT_N_BOOT = 1000
DEFAULT_LEVEL = 0.95

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """BLAS limited to one thread inside the block (via threadpoolctl, when it is installed).

    The bootstrap runs many small matrix products; a multithreaded BLAS spends more time starting
    and contending threads than computing them (20x slower on a busy 2-core machine).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """A generator seeded by ``seed`` and a stable hash (CRC-32) of each part of ``key``."""
    if int(seed) < 0:
        raise AnalysisError(f"bootstrap seed (analysis.seed, --seed) must be >= 0, got {seed}")
    words = [int(seed), *(zlib.crc32(str(part).encode("utf-8")) for part in key)]
    return np.random.default_rng(np.random.SeedSequence(words))


def resample_indices(n_items: int, n_boot: int, rng: np.random.Generator) -> npt.NDArray[np.intp]:
    """``(n_boot, n_items)`` indices drawn uniformly with replacement from ``range(n_items)``."""
    if n_boot < 0:
        raise AnalysisError(
            f"bootstrap n_boot (analysis.n_boot, --n-boot) must be >= 0, got {n_boot}"
        )
    if n_items < 0:
        raise ValueError(f"need n_items >= 0, got {n_items}")
    if n_items == 0 or n_boot == 0:
        return np.zeros((n_boot, n_items), dtype=np.intp)
    return rng.integers(0, n_items, size=(n_boot, n_items), dtype=np.intp)


def resample_weights(n_items: int, n_boot: int, rng: np.random.Generator) -> FloatArray:
    """``(n_boot, n_items)`` multiplicities of :func:`resample_indices` (each row sums to n)."""
    indices = resample_indices(n_items, n_boot, rng)
    if indices.size == 0:
        return np.zeros((n_boot, n_items), dtype=float)
    flat = indices + (np.arange(n_boot, dtype=np.intp) * n_items)[:, None]
    counts = np.bincount(flat.ravel(), minlength=n_boot * n_items)
    return counts.reshape(n_boot, n_items).astype(float)


def interval(samples: ArrayLike, level: float = DEFAULT_LEVEL) -> tuple[FloatArray, FloatArray]:
    """Percentile interval over axis 0 of ``samples``; NaN replicates are ignored.

    A column with no finite replicate (or ``n_boot = 0``) gives NaN bounds.
    """
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    array = np.asarray(samples, dtype=float)
    shape = array.shape[1:]
    if array.shape[0] == 0 or array.size == 0:  # no replicate, or no column
        nan = np.full(shape, np.nan)
        return nan, nan.copy()
    tails = [50 * (1 - level), 50 * (1 + level)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns → NaN bounds
        low, high = np.nanpercentile(np.where(np.isfinite(array), array, np.nan), tails, axis=0)
    return np.asarray(low, dtype=float), np.asarray(high, dtype=float)


@dataclass(frozen=True)
class Bootstrap:
    """A statistic per column, its bootstrap replicates and the number of prompts behind it.

    ``estimate`` has shape ``(m,)`` (one value per column), ``samples`` ``(n_boot, m)``, ``n`` the
    number of prompts each column used.
    """

    estimate: FloatArray
    samples: FloatArray
    n: npt.NDArray[np.int64]

    def interval(self, level: float = DEFAULT_LEVEL) -> tuple[FloatArray, FloatArray]:
        return interval(self.samples, level)


def _as_matrix(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 1-D (prompts) or 2-D (prompts × columns)")
    return array


def _centre(values: FloatArray, mask: npt.NDArray[np.bool_]) -> FloatArray:
    """Per column, the first value that counts (0 for a column with none)."""
    if not len(values):
        return np.zeros(values.shape[1])
    first = np.argmax(mask, axis=0)
    centre = values[first, np.arange(values.shape[1])]
    return np.where(mask.any(axis=0), centre, 0.0)


def _means(
    values: FloatArray, mask: npt.NDArray[np.bool_], weights: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Mean of each column over its masked rows: on the sample and on every resample."""
    centre = _centre(values, mask)
    deviation = np.where(mask, values - centre, 0.0)
    counted = mask.astype(float)
    m = values.shape[1]
    # One product for sums and counts; (n, 2m)ᵀ @ Wᵀ is much faster than W @ (n, 2m) for thin
    # right-hand sides with OpenBLAS.
    both = (np.concatenate([deviation, counted], axis=1).T @ weights.T).T
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = centre + deviation.sum(axis=0) / counted.sum(axis=0)
        samples = centre + both[:, :m] / both[:, m:]
    return estimate, samples


def paired_means(
    arms: Sequence[ArrayLike],
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    key: Sequence[object] = (),
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Means of several arms (e.g. models) on the same prompts, on the sample and on resamples.

    Each arm is an array of shape ``(n,)`` or ``(n, m)`` whose row i is prompt i (the same prompt
    in every arm) and whose columns are metrics. Per column only the prompts finite in every arm
    count. Returns ``estimate`` ``(k, m)``, ``samples`` ``(n_boot, k, m)`` and ``n`` ``(m,)``: the
    number of prompts used per column. All arms use the same resampled prompts.
    """
    if not arms:
        raise ValueError("paired_means needs at least one arm")
    matrices = [_as_matrix(arm, f"arm {i}") for i, arm in enumerate(arms)]
    shape = matrices[0].shape
    for i, matrix in enumerate(matrices):
        if matrix.shape != shape:
            raise ValueError(f"arm {i} has shape {matrix.shape}, arm 0 has {shape}")
    mask = np.logical_and.reduce([np.isfinite(matrix) for matrix in matrices])
    weights = resample_weights(shape[0], n_boot, rng_for(seed, *key))
    estimates, samples = [], []
    with single_threaded_blas():
        for matrix in matrices:
            estimate, replicate = _means(matrix, mask, weights)
            estimates.append(estimate)
            samples.append(replicate)
    return (
        np.stack(estimates),
        np.stack(samples, axis=1) if n_boot else np.zeros((0, len(matrices), shape[1])),
        mask.sum(axis=0).astype(np.int64),
    )


def bootstrap_mean(
    values: ArrayLike,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    key: Sequence[object] = (),
) -> Bootstrap:
    """Mean over prompts of each column of ``values`` (``(n,)`` or ``(n, m)``), bootstrapped.

    One resample matrix serves every column; NaN values are left out of their column.
    """
    estimate, samples, n = paired_means([values], n_boot=n_boot, seed=seed, key=key)
    return Bootstrap(estimate[0], samples[:, 0, :], n)


def safe_ratio(numerator: ArrayLike, denominator: ArrayLike) -> FloatArray:
    """``numerator / denominator`` with NaN (never inf) where the denominator is 0 or not finite."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where((den != 0) & np.isfinite(den), num / den, np.nan)
    return np.asarray(out, dtype=float)


def paired_bootstrap(
    a: ArrayLike,
    b: ArrayLike,
    *,
    statistic: Literal["difference", "ratio"] = "difference",
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    key: Sequence[object] = (),
) -> Bootstrap:
    """Paired comparison of two arms on the same prompts (row i of ``a`` and ``b``: one prompt).

    ``difference``: ``mean(a) − mean(b)``, computed as the mean of the per-prompt differences (so
    identical arms give exactly 0); ``ratio``: ``mean(a) / mean(b)`` (ratio of means, NaN where
    ``mean(b)`` is 0). Both on the prompts finite in both arms, resampled together.
    """
    left, right = _as_matrix(a, "a"), _as_matrix(b, "b")
    if left.shape != right.shape:
        raise ValueError(f"paired arms differ in shape: {left.shape} vs {right.shape}")
    if statistic == "difference":
        return bootstrap_mean(left - right, n_boot=n_boot, seed=seed, key=key)
    if statistic == "ratio":
        estimate, samples, n = paired_means([left, right], n_boot=n_boot, seed=seed, key=key)
        return Bootstrap(
            safe_ratio(estimate[0], estimate[1]),
            safe_ratio(samples[:, 0, :], samples[:, 1, :]),
            n,
        )
    raise ValueError(f"statistic must be 'difference' or 'ratio', got {statistic!r}")
