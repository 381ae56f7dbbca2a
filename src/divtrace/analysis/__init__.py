"""Tables under ``results/tables/`` built from the per-prompt contracts (DESIGN §3).

Entry points: :func:`build_tables` (every table from the diversity and quality contracts),
:func:`write_tables` / :func:`read_tables`. The tables: ``diversity`` (:func:`summarize_diversity`),
``retention``, ``stages``, ``cot``, ``decomposition`` and ``quality``; the bootstrap over prompts
behind their intervals is :mod:`divtrace.analysis.bootstrap`.
"""

from divtrace.analysis.aggregate import BASE_LABEL, summarize_diversity, write_summary
from divtrace.analysis.common import ALL_TASKS
from divtrace.analysis.cot import cot_table
from divtrace.analysis.decomposition import decomposition_table
from divtrace.analysis.quality import quality_table
from divtrace.analysis.retention import retention_table
from divtrace.analysis.stages import stage_table
from divtrace.analysis.tables import TABLE_NAMES, build_tables, read_tables, write_tables

__all__ = [
    "ALL_TASKS",
    "BASE_LABEL",
    "TABLE_NAMES",
    "build_tables",
    "cot_table",
    "decomposition_table",
    "quality_table",
    "read_tables",
    "retention_table",
    "stage_table",
    "summarize_diversity",
    "write_summary",
    "write_tables",
]
