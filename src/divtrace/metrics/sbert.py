"""SBERT diversity: 1 - mean pairwise cosine similarity of sentence embeddings (docs/design.md §5)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from divtrace.metrics.embeddings import normalize_rows


def sbert_diversity(emb: np.ndarray) -> float:
    """1 - mean cosine over distinct pairs i < j of the (re-normalised) rows; 0.0 for < 2 rows."""
    e = normalize_rows(emb)
    n = e.shape[0]
    if n < 2:
        return 0.0
    # sum_{i != j} cos(i, j) = |sum_i e_i|^2 - sum_i |e_i|^2, in O(n * dim).
    s = e.sum(axis=0)
    off_diagonal = float(s @ s) - float(np.einsum("ij,ij->", e, e))
    mean_cos = off_diagonal / (n * (n - 1))
    # Mathematically 0 <= value <= 1 + 1/(n-1); clipping only removes rounding noise.
    return float(np.clip(1.0 - mean_cos, 0.0, 1.0 + 1.0 / (n - 1)))


def sbert_many(embs: Sequence[np.ndarray]) -> np.ndarray:
    """:func:`sbert_diversity` of every embedding matrix in ``embs``."""
    return np.asarray([sbert_diversity(e) for e in embs], dtype=np.float64)
