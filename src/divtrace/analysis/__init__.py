"""Tables under ``results/tables/`` built from the per-prompt contracts (DESIGN §3)."""

from divtrace.analysis.aggregate import BASE_LABEL, summarize_diversity, write_summary

__all__ = ["BASE_LABEL", "summarize_diversity", "write_summary"]
