"""Diversity at a fixed set size k: the mean of a metric over the k-subsets of a set.

Vendi and EAD grow with the number of outputs, so sets of different sizes (a checkpoint's 16
outputs against its 5 correct ones; two checkpoints' correct outputs) cannot be compared. At a
fixed k they can: the value of a set at k is the mean of the metric over **every** k-subset of the
set's usable outputs (:func:`subsets`):

* exact where the number of subsets C(n, k) is at most :data:`MAX_EXACT` (20,000): all of them
  are enumerated;
* beyond, a Monte Carlo estimate over :data:`N_MONTE_CARLO` (2,000) subsets drawn uniformly
  (each a uniform k-subset, drawn independently with a seeded generator) and its standard error
  ``sd / sqrt(2000)``.

Closed forms replace the enumeration where they exist:

* a **mean pairwise distance** (SBERT, ``code_sbert``, ``ast_pairwise``, ``ast_struct_pairwise``):
  every pair of outputs lies in the same number of k-subsets, so the mean over k-subsets of the
  mean pairwise distance is the set's own mean pairwise distance, at every 2 ≤ k ≤ n
  (:func:`pairwise_at_k` says so in code: it returns the full-set value); likewise a **share of
  outputs** (``ast_parseable``) is the set's own share at every k (:func:`share_at_k`);
* the **number of distinct classes** (answer classes): the expected number among k outputs drawn
  without replacement is the rarefaction sum ``Σ_c [1 − C(n − n_c, k) / C(n, k)]``, the form of the
  unbiased pass@k estimator (:func:`rarefaction`).

Pooled counts (EAD's distinct n-grams, ``ast_distinct``'s distinct subtrees) are computed for all
subsets at once: with n ≤ :data:`MAX_MASK_OUTPUTS` outputs each item (an n-gram, a subtree) is a
bitmask of the outputs holding it, and a sum over subsets of masks (the zeta transform) gives for
every subset the number of items it misses. Vendi's eigenvalues are computed for all k-subsets of a
set in stacked :func:`numpy.linalg.eigvalsh` calls on the Gram submatrices of the embeddings.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from divtrace.errors import MetricError
from divtrace.metrics.ead import ead_term

#: Enumerate every k-subset when there are at most this many.
MAX_EXACT = 20_000
#: Monte Carlo subsets drawn when there are more.
N_MONTE_CARLO = 2_000
#: Sets of at most this many outputs count pooled items by bitmask (2**n entries).
MAX_MASK_OUTPUTS = 20
#: Eigenvalues of K / n below this are rounding noise (Vendi of order q != 1; the paper's code
#: drops them for q = 1 too, where they change nothing visible).
EIGENVALUE_FLOOR = 1e-12
# Upper bound on float64 elements of one stacked batch of Gram submatrices (~64 MiB).
_MAX_BATCH_ELEMENTS = 1 << 23


def parse_k_grid(text: str | Sequence[int]) -> list[int]:
    """``"2,4,8,16"`` (or a sequence of ints) as sorted distinct set sizes, each at least 2."""
    items = text.split(",") if isinstance(text, str) else list(text)
    grid: list[int] = []
    for item in items:
        try:
            k = int(str(item).strip())
        except ValueError:
            raise MetricError(f"--k-grid: {item!r} is not an integer set size") from None
        if k < 2:
            raise MetricError(f"--k-grid: set size {k} is below 2 (one output has no diversity)")
        grid.append(k)
    if not grid:
        raise MetricError("--k-grid: no set size given")
    return sorted(set(grid))


@dataclass(frozen=True)
class Subsets:
    """The k-subsets a value at k averages over: ``index`` (S, k), sorted rows; ``exact`` when
    they are all of them."""

    index: np.ndarray
    exact: bool


def subsets(n: int, k: int, seed: int) -> Subsets:
    """Every k-subset of ``range(n)`` when C(n, k) ≤ :data:`MAX_EXACT`, else
    :data:`N_MONTE_CARLO` uniform random ones (seeded by ``seed``)."""
    if not 1 <= k <= n:
        raise ValueError(f"no {k}-subsets of {n} outputs")
    if math.comb(n, k) <= MAX_EXACT:
        combos = np.fromiter(
            itertools.chain.from_iterable(itertools.combinations(range(n), k)),
            dtype=np.int64,
        )
        return Subsets(combos.reshape(-1, k), True)
    rng = np.random.default_rng(seed % (1 << 63))
    index = np.argsort(rng.random((N_MONTE_CARLO, n)), axis=1)[:, :k]
    return Subsets(np.sort(index, axis=1), False)


def summarise(values: np.ndarray, exact: bool) -> tuple[float, float]:
    """(mean, standard error) of per-subset values; the error is NaN for an exact mean."""
    values = np.asarray(values, dtype=np.float64)
    if exact:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def rarefaction(class_sizes: Sequence[int], n: int, k: int) -> float:
    """Expected number of classes met by k of n items drawn without replacement, where class c
    holds ``class_sizes[c]`` of them: ``Σ_c [1 − C(n − n_c, k) / C(n, k)]``."""
    if not 1 <= k <= n:
        raise ValueError(f"no {k}-subsets of {n} outputs")
    total = math.comb(n, k)
    return float(sum(1.0 - math.comb(n - int(c), k) / total for c in class_sizes if c > 0))


def pairwise_at_k(full_value: float, n: int, k: int) -> float:
    """A mean pairwise distance at k: the full set's value (every pair is in equally many
    k-subsets, so the mean over k-subsets of the subset means is the full mean), 2 ≤ k ≤ n."""
    if not 2 <= k <= n:
        raise ValueError(f"no {k}-subsets of {n} outputs")
    return float(full_value)


def share_at_k(full_share: float, n: int, k: int) -> float:
    """A share of outputs (``ast_parseable``) at k: the full set's share (every output is in
    equally many k-subsets, so the subsets' shares average to it), 1 ≤ k ≤ n."""
    if not 1 <= k <= n:
        raise ValueError(f"no {k}-subsets of {n} outputs")
    return float(full_share)


# --------------------------------------------------------------------------- pooled counts
def _subset_masks(index: np.ndarray) -> np.ndarray:
    return np.bitwise_or.reduce(np.left_shift(np.int64(1), index), axis=1)


class PooledItems:
    """Items (n-grams, subtrees) held by a set's outputs, ready to count per subset: the boolean
    ``presence`` matrix (items × outputs) and the item count of each output (``counts``). With at
    most :data:`MAX_MASK_OUTPUTS` outputs, the zeta transform of the items' output masks is
    computed once here and serves every k."""

    def __init__(self, presence: np.ndarray, counts: np.ndarray) -> None:
        self.presence = np.asarray(presence, dtype=bool)
        self.counts = np.asarray(counts, dtype=np.int64)
        n_items, n = self.presence.shape
        self.n_outputs = n
        self._within: np.ndarray | None = None
        if n_items and n <= MAX_MASK_OUTPUTS:
            weights = np.left_shift(np.int64(1), np.arange(n, dtype=np.int64))
            masks = self.presence.astype(np.int64) @ weights
            # within[T] = items whose outputs all lie in T (zeta transform over subsets).
            within = np.bincount(masks, minlength=1 << n).astype(np.int64)
            for bit in range(n):
                step = 1 << bit
                view = within.reshape(-1, 2 * step)
                view[:, step:] += view[:, :step]
            self._within = within

    def distinct(self, index: np.ndarray) -> np.ndarray:
        """For each subset (row of ``index``), the number of items held by one of its outputs."""
        n_items, n = self.presence.shape
        if n_items == 0:
            return np.zeros(len(index), dtype=np.int64)
        if self._within is not None:
            full = (1 << n) - 1
            return n_items - self._within[full ^ _subset_masks(index)]
        out = np.empty(len(index), dtype=np.int64)
        chunk = max(1, _MAX_BATCH_ELEMENTS // max(1, n_items * index.shape[1]))
        for start in range(0, len(index), chunk):
            block = index[start : start + chunk]
            out[start : start + chunk] = self.presence[:, block].any(axis=2).sum(axis=0)
        return out

    def total(self, index: np.ndarray) -> np.ndarray:
        """For each subset, the number of items of its outputs, with repeats."""
        return self.counts[index].sum(axis=1)


def ngram_presence(token_lists: Sequence[Sequence[str]], n_max: int) -> list[PooledItems]:
    """For n = 1..n_max, the outputs' word n-grams as :class:`PooledItems`."""
    out: list[PooledItems] = []
    n_outputs = len(token_lists)
    for n in range(1, n_max + 1):
        ids: dict[tuple[str, ...], int] = {}
        rows: list[int] = []
        cols: list[int] = []
        counts = np.zeros(n_outputs, dtype=np.int64)
        for j, tokens in enumerate(token_lists):
            grams = {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}
            counts[j] = max(0, len(tokens) - n + 1)
            for gram in grams:
                rows.append(ids.setdefault(gram, len(ids)))
                cols.append(j)
        presence = np.zeros((len(ids), n_outputs), dtype=bool)
        presence[rows, cols] = True
        out.append(PooledItems(presence, counts))
    return out


def ead_at_k(
    grams: Sequence[PooledItems], k: int, vocab_size: int, seed: int
) -> tuple[float, float]:
    """EAD (mean over n of EAD_n of the pooled k outputs) averaged over the k-subsets; ``grams``
    the outputs' n-grams for n = 1..n_max (:func:`ngram_presence`)."""
    chosen = subsets(grams[0].n_outputs, k, seed)
    terms = np.zeros((len(chosen.index), len(grams)), dtype=np.float64)
    for n, items in enumerate(grams):
        terms[:, n] = ead_term(items.distinct(chosen.index), items.total(chosen.index), vocab_size)
    return summarise(terms.mean(axis=1), chosen.exact)


def distinct_ratio_at_k(items: PooledItems, k: int, seed: int) -> tuple[float, float]:
    """Distinct over total pooled items (``ast_distinct``) averaged over the k-subsets."""
    chosen = subsets(items.n_outputs, k, seed)
    return summarise(items.distinct(chosen.index) / items.total(chosen.index), chosen.exact)


# --------------------------------------------------------------------------- Vendi
def vendi_of_eigenvalues(eigenvalues: np.ndarray, q: float) -> np.ndarray:
    """Vendi of order q from the eigenvalues of K / n (last axis): q = 1 the exponential of the
    Shannon entropy; q = ∞ ``1 / max λ``; otherwise ``(Σ λ^q)^(1 / (1 − q))``, the Rényi form."""
    lam = np.clip(eigenvalues, 0.0, None)  # sums to 1 for unit-norm rows: trace(K / n) = 1
    if q == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(lam > 0, lam * np.log(np.where(lam > 0, lam, 1.0)), 0.0)
        return np.exp(-terms.sum(axis=-1))
    if math.isinf(q):
        return 1.0 / lam.max(axis=-1)
    # Rounding leaves eigenvalues of ~1e-16 where the kernel is singular (k > dim); q < 1 would
    # raise them to ~1e-8 each, so eigenvalues below EIGENVALUE_FLOOR count as zero.
    lam = np.where(lam > EIGENVALUE_FLOOR, lam, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        powered = np.where(lam > 0, np.power(np.where(lam > 0, lam, 1.0), q), 0.0)
    return np.power(powered.sum(axis=-1), 1.0 / (1.0 - q))


def vendi_orders(emb: np.ndarray, orders: Sequence[float]) -> np.ndarray:
    """Vendi of each order in ``orders`` of one set of unit-norm embeddings (n, dim)."""
    n = emb.shape[0]
    kernel = emb @ emb.T if n <= emb.shape[1] else emb.T @ emb
    lam = np.linalg.eigvalsh(kernel / n)
    return np.asarray(
        [np.clip(vendi_of_eigenvalues(lam, q), 1.0, float(n)) for q in orders], dtype=np.float64
    )


def vendi_at_k(
    emb: np.ndarray, k: int, orders: Sequence[float], seed: int
) -> list[tuple[float, float]]:
    """Vendi of each order averaged over the k-subsets of the rows of ``emb`` (unit norm): the
    Gram submatrices of all subsets, stacked, in batched ``eigvalsh`` calls."""
    chosen = subsets(emb.shape[0], k, seed)
    gram = emb @ emb.T
    values = np.empty((len(chosen.index), len(orders)), dtype=np.float64)
    step = max(1, _MAX_BATCH_ELEMENTS // (k * k))
    for start in range(0, len(chosen.index), step):
        idx = chosen.index[start : start + step]
        sub = gram[idx[:, :, None], idx[:, None, :]]
        lam = np.linalg.eigvalsh(sub / k)
        for j, q in enumerate(orders):
            values[start : start + step, j] = np.clip(vendi_of_eigenvalues(lam, q), 1.0, float(k))
    return [summarise(values[:, j], chosen.exact) for j in range(len(orders))]
