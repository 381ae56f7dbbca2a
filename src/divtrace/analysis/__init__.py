"""Tables under ``results/tables/`` built from the per-prompt contracts (docs/design.md §3), as polars frames.

Entry points: :func:`build_tables` (every table from the diversity and quality contracts),
:func:`write_tables` / :func:`read_tables`. One module per table: ``diversity``
(:mod:`~divtrace.analysis.aggregate`, :func:`summarize_diversity`), ``retention``, ``stages``,
``cot``, ``decomposition``, ``quality`` (also :func:`quality_per_prompt`, the one reader of the
quality contract) and ``truncation``. What they share (validation, lineage labels, orderings,
the per-prompt arrays) is :mod:`~divtrace.analysis.common`; the bootstrap over prompts behind the
intervals is :mod:`~divtrace.analysis.bootstrap`. Names, orderings and labels are
:mod:`divtrace.names`.
"""

from divtrace.analysis.aggregate import summarize_diversity, write_summary
from divtrace.analysis.cot import cot_table
from divtrace.analysis.decomposition import decomposition_table
from divtrace.analysis.quality import quality_per_prompt, quality_table
from divtrace.analysis.retention import retention_table
from divtrace.analysis.stages import stage_table
from divtrace.analysis.tables import build_tables, read_tables, write_tables
from divtrace.analysis.truncation import truncation_table

__all__ = [
    "build_tables",
    "cot_table",
    "decomposition_table",
    "quality_per_prompt",
    "quality_table",
    "read_tables",
    "retention_table",
    "stage_table",
    "summarize_diversity",
    "truncation_table",
    "write_summary",
    "write_tables",
]
