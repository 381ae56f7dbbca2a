"""Diversity metrics (docs/design.md §5): EAD, SBERT, NLI, Vendi, and the table-level API.

Importing this package is cheap: torch and sentence-transformers are imported only when an
:class:`~divtrace.metrics.embeddings.Embedder` first encodes text.
"""

from __future__ import annotations

from divtrace.metrics.api import METRICS, check_metrics, compute_diversity, count_dropped
from divtrace.metrics.ead import ead, ead_many, ead_terms_many
from divtrace.metrics.embeddings import Embedder, normalize_rows, resolve_model
from divtrace.metrics.nli import HFNLIScorer, nli_diversity, nli_many
from divtrace.metrics.sbert import sbert_diversity, sbert_many
from divtrace.metrics.vendi import vendi_many, vendi_score

__all__ = [
    "METRICS",
    "Embedder",
    "HFNLIScorer",
    "check_metrics",
    "compute_diversity",
    "count_dropped",
    "ead",
    "ead_many",
    "ead_terms_many",
    "nli_diversity",
    "nli_many",
    "normalize_rows",
    "resolve_model",
    "sbert_diversity",
    "sbert_many",
    "vendi_many",
    "vendi_score",
]
