"""Entry points: every table under ``results/tables/`` from the per-prompt contracts, in one call.

>>> tables = build_tables(diversity, quality, lineage, n_boot=1000, seed=0)
>>> write_tables(tables, "results/tables", metadata={"n_boot": 1000, "seed": 0})

``build_tables`` returns ``{name: polars.DataFrame}`` for :data:`divtrace.names.TABLE_NAMES`
(``quality`` only when a quality table is given, ``truncation`` only with the generations);
``write_tables`` writes ``{out_dir}/{name}.parquet`` and ``.csv`` atomically; ``read_tables``
reads them back (what the figures step needs). A table holds a missing value as null, in memory
as on disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from divtrace import io
from divtrace.analysis.aggregate import summarize_diversity
from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT
from divtrace.analysis.common import diversity_data, order_metrics
from divtrace.analysis.cot import DEFAULT_EQUIVALENCE_MARGIN, cot_table
from divtrace.analysis.decomposition import decomposition_table
from divtrace.analysis.fixed_k import fixed_k_table, k_rows
from divtrace.analysis.judge import JudgeRun, judge_table
from divtrace.analysis.missing import (
    Run,
    complete_cot,
    complete_diversity,
    complete_quality,
    missing_table,
    run_counts,
)
from divtrace.analysis.quality import QUALITY_METRICS, quality_per_prompt, quality_table
from divtrace.analysis.retention import retention_table
from divtrace.analysis.stages import stage_table
from divtrace.analysis.truncation import truncation_table
from divtrace.lineage import Lineage
from divtrace.names import TABLE_NAMES

__all__ = ["TABLE_NAMES", "build_tables", "read_tables", "table_paths", "write_tables"]


def build_tables(
    diversity: pl.DataFrame,
    quality: pl.DataFrame | None,
    lineage: Lineage,
    *,
    generations: pl.DataFrame | None = None,
    families: Mapping[str, str] | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    equivalence_margin: float = DEFAULT_EQUIVALENCE_MARGIN,
    runs: Sequence[Run] | None = None,
    judgements: pl.DataFrame | None = None,
    judge_runs: Sequence[JudgeRun] | None = None,
    judge_protocols: Mapping[str, str] | None = None,
    judge_prices: Mapping[str, Mapping[str, float]] | None = None,
    judge_backend: str | None = None,
) -> dict[str, pl.DataFrame]:
    """All analysis tables from the diversity contract and (optionally) the quality contract.

    ``diversity``: rows of the docs/design.md §3 diversity contract for many checkpoints (the per-model
    files concatenated). ``quality``: the quality contract (one row per sample), or None.
    ``generations``: the generations' accounting columns
    (:data:`divtrace.analysis.truncation.INPUT_COLUMNS`), or None. ``families``: the task family
    of each task of ``quality`` whose name is not its family's (majority@K votes by the family's
    answer equivalence; :func:`divtrace.quality.metrics.per_prompt`).
    A lineage is whatever the ``parent`` links of ``lineage`` say. The diversity rows are
    validated and arranged per prompt once, for every table. ``equivalence_margin`` is the CoT
    table's equivalence margin, a fraction of the CoT-on value (:func:`cot_table`).
    ``runs``: the study's runs (model, task, cot, verifiable): every one gets its cells in the
    diversity and quality tables, null where it has no value (:mod:`divtrace.analysis.missing`);
    the ``missing`` table (built whenever ``runs`` or ``generations`` is given) lists the null
    cells with their reasons.
    ``judgements``: the rows ``divtrace judge`` wrote (:mod:`divtrace.analysis.judge`), or None;
    ``judge_runs`` the expected judge cells (each gets its row, null where it has no value, and
    is listed in ``missing``), ``judge_protocols`` task → protocol, ``judge_prices`` and
    ``judge_backend`` price the judge's tokens. The ``judge`` table is always there (empty when
    nothing is judged).
    """
    options: dict[str, Any] = {"n_boot": n_boot, "seed": seed, "level": level}
    data = diversity_data(diversity, lineage)
    at_k = k_rows(diversity)  # the rows at fixed set sizes (--k-grid); the others use whole sets
    prompts = quality_per_prompt(quality, lineage, families) if quality is not None else None
    tables = {
        "diversity": summarize_diversity(data, lineage, **options),
        "retention": retention_table(data, lineage, **options),
        "stages": stage_table(data, lineage, **options),
        "cot": cot_table(data, lineage, prompts, **options, equivalence_margin=equivalence_margin),
        "decomposition": decomposition_table(data, lineage, **options, fixed_k=at_k),
        "diversity_k": fixed_k_table(at_k, lineage, **options),
    }
    if prompts is not None:
        tables["quality"] = quality_table(prompts, lineage, **options)
    if generations is not None:
        tables["truncation"] = truncation_table(generations, lineage)
    tables["judge"] = judge_table(
        judgements,
        lineage,
        prices=judge_prices,
        backend=judge_backend,
        runs=judge_runs,
        protocols=judge_protocols,
        **options,
    )
    if runs is not None or generations is not None:
        counts = run_counts(generations)
        if runs:
            metrics = sorted(set(data.frame.get_column("metric").to_list()))
            order = ["task", "cot", "scope", "subset", "metric"]
            for name in ("diversity", "retention"):
                tables[name] = complete_diversity(
                    tables[name],
                    runs,
                    lineage,
                    counts,
                    order_metrics(metrics),
                    order,
                    retention=name == "retention",
                    families=families,
                )
            tables["cot"] = complete_cot(
                tables["cot"],
                runs,
                lineage,
                order_metrics(metrics),
                QUALITY_METRICS if prompts is not None else (),
            )
            if "quality" in tables:
                tables["quality"] = complete_quality(
                    tables["quality"], runs, lineage, ["task", "cot"]
                )
        tables["missing"] = missing_table(
            tables["diversity"], tables.get("quality"), lineage, counts, judge=tables["judge"]
        )
    return {name: tables[name] for name in TABLE_NAMES if name in tables}


def table_paths(out_dir: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """``({out_dir}/{name}.parquet, {out_dir}/{name}.csv)``."""
    return Path(out_dir) / f"{name}.parquet", Path(out_dir) / f"{name}.csv"


def write_tables(
    tables: Mapping[str, pl.DataFrame],
    out_dir: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write each table as ``{out_dir}/{name}.parquet`` (metadata ``{"table": name, **metadata}``)
    and ``{out_dir}/{name}.csv``, each atomically. Returns the paths written."""
    written: list[Path] = []
    for name, table in tables.items():
        parquet, csv = table_paths(out_dir, name)
        written.extend(
            io.write_table_pair(table, parquet, csv, {"table": name, **(metadata or {})})
        )
    return written


def read_tables(
    out_dir: str | os.PathLike[str], names: Iterable[str] = TABLE_NAMES
) -> dict[str, pl.DataFrame]:
    """Read the Parquet tables that exist among ``names`` from ``out_dir``."""
    tables: dict[str, pl.DataFrame] = {}
    for name in names:
        parquet, _csv = table_paths(out_dir, name)
        if parquet.exists():
            tables[name] = io.read_table(parquet)
    return tables
