"""Vendi score (Friedman & Dieng 2023) with the cosine kernel (docs/design.md §5).

Vendi = exp(-sum_i lam_i log lam_i) over the eigenvalues lam of K / n, K the cosine kernel of the
n L2-normalised embeddings. Tiny negative eigenvalues (rounding) are clipped to 0, 0 log 0 = 0,
and the score is 1.0 for n <= 1. The nonzero eigenvalues of E E^T equal those of E^T E, so sets
larger than the embedding dimension use the smaller (dim x dim) matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from divtrace.metrics.embeddings import normalize_rows

# Upper bound on float64 elements of one stacked batch of kernels (~64 MiB).
_MAX_BATCH_ELEMENTS = 1 << 23


def _entropy_exp(eigenvalues: np.ndarray) -> np.ndarray:
    lam = np.clip(eigenvalues, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(lam > 0, lam * np.log(np.where(lam > 0, lam, 1.0)), 0.0)
    return np.exp(-terms.sum(axis=-1))


def vendi_many(embs: Sequence[np.ndarray]) -> np.ndarray:
    """Vendi scores of many embedding matrices.

    Matrices of equal shape are stacked and their eigenvalues computed with one
    ``np.linalg.eigvalsh`` call per batch.
    """
    out = np.ones(len(embs), dtype=np.float64)
    matrices: dict[int, np.ndarray] = {}
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, emb in enumerate(embs):
        e = normalize_rows(emb)
        if e.shape[0] <= 1:
            continue
        matrices[i] = e
        by_shape.setdefault((int(e.shape[0]), int(e.shape[1])), []).append(i)
    for (n, dim), indices in sorted(by_shape.items()):
        m = min(n, dim)
        step = max(1, _MAX_BATCH_ELEMENTS // max(1, m * m + n * dim))
        for start in range(0, len(indices), step):
            chunk = indices[start : start + step]
            stack = np.stack([matrices[i] for i in chunk])  # (B, n, dim)
            if n <= dim:
                kernel = stack @ stack.transpose(0, 2, 1)
            else:
                kernel = stack.transpose(0, 2, 1) @ stack
            eigenvalues = np.linalg.eigvalsh(kernel / n)
            # 1 <= Vendi <= n mathematically; clipping only removes rounding noise.
            out[chunk] = np.clip(_entropy_exp(eigenvalues), 1.0, float(n))
    return out


def vendi_score(emb: np.ndarray) -> float:
    """Vendi score of one embedding matrix (rows are re-normalised)."""
    return float(vendi_many([emb])[0])
