"""Entry point: every figure of docs/design.md §7 from the tables of :func:`divtrace.analysis.build_tables`.

>>> draw_figures(tables, lineage, "results/figures")   # → [.../lineage_trajectories.pdf, ...]

Each figure reads one table (:data:`divtrace.names.FIGURE_TABLES`; a few more besides, passed by
name: :data:`divtrace.names.FIGURE_EXTRA_TABLES`), a polars frame as
:func:`divtrace.io.read_table` reads it back; a missing or empty table gives a figure that says so
instead of an error, so the step never fails on a degenerate study (no verifiable task, no
reasoning model, …).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl

from divtrace.errors import AnalysisError
from divtrace.figures.common import empty_figure
from divtrace.figures.cot import plot_cot_on_off
from divtrace.figures.decomposition import plot_decomposition
from divtrace.figures.fixed_k import plot_distinct_answers, plot_diversity_by_k
from divtrace.figures.quality import plot_quality_by_stage
from divtrace.figures.quality_filtered import plot_quality_filtered_vendi
from divtrace.figures.retention import plot_retention_heatmap
from divtrace.figures.stages import plot_stage_attribution
from divtrace.figures.trajectories import REQUIRED_COLUMNS, plot_lineage_trajectories
from divtrace.lineage import Lineage
from divtrace.names import FIGURE_EXTRA_TABLES, FIGURE_NAMES, FIGURE_TABLES

#: ``plot(table, lineage, pdf, png, **extra_tables)``: the extra tables by their names.
Plot = Callable[..., None]


def _trajectories(table: pl.DataFrame | None, lineage: Lineage, pdf: Path, png: Path) -> None:
    if table is None or any(column not in table.columns for column in REQUIRED_COLUMNS):
        empty_figure("Lineage trajectories", "no diversity table", pdf, png)
        return
    selection = table.filter((pl.col("scope") == "per_input") & (pl.col("subset") == "all"))
    if selection.is_empty():
        empty_figure("Lineage trajectories", "no per-input diversity rows", pdf, png)
        return
    plot_lineage_trajectories(table, lineage, pdf, png)


PLOTS: dict[str, Plot] = {
    "lineage_trajectories": _trajectories,
    "retention_heatmap": plot_retention_heatmap,
    "stage_attribution": plot_stage_attribution,
    "cot_on_off": plot_cot_on_off,
    "decomposition": plot_decomposition,
    "quality_by_stage": plot_quality_by_stage,
    "quality_filtered_vendi": plot_quality_filtered_vendi,
    "diversity_by_k": plot_diversity_by_k,
    "distinct_answers_by_stage": plot_distinct_answers,
}
"""Figure name → the function that draws it (one for each of :data:`FIGURE_NAMES`)."""

FIGURES: dict[str, tuple[str, Plot]] = {
    name: (FIGURE_TABLES[name], PLOTS[name]) for name in FIGURE_NAMES
}
"""Figure name → (the table it reads, the function that draws it), in :data:`FIGURE_NAMES` order."""

if set(PLOTS) != set(FIGURE_NAMES):  # pragma: no cover - a figure added to names.py only
    raise ImportError(f"figures drawn {sorted(PLOTS)} differ from FIGURE_NAMES {FIGURE_NAMES}")


def figure_paths(out_dir: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """``({out_dir}/{name}.pdf, {out_dir}/{name}.png)``."""
    return Path(out_dir) / f"{name}.pdf", Path(out_dir) / f"{name}.png"


def draw_figures(
    tables: Mapping[str, pl.DataFrame],
    lineage: Lineage,
    out_dir: str | os.PathLike[str],
    names: tuple[str, ...] = FIGURE_NAMES,
) -> list[Path]:
    """Write ``{out_dir}/{name}.pdf`` and ``.png`` for every figure in ``names``; return the paths.

    ``tables`` maps table names (``diversity``, ``retention``, ``stages``, ``cot``,
    ``decomposition``, ``quality``, ``judge``) to polars DataFrames; missing or empty tables give "no data"
    figures. Two figures read the diversity table: the trajectories (all outputs) and the
    quality-filtered Vendi (correct outputs).
    """
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        raise AnalysisError(f"unknown figure(s) {unknown}; known: {list(FIGURES)}")
    written: list[Path] = []
    for name in names:
        table_name, plot = FIGURES[name]
        pdf, png = figure_paths(out_dir, name)
        extra = {extra: tables.get(extra) for extra in FIGURE_EXTRA_TABLES.get(name, ())}
        plot(tables.get(table_name), lineage, pdf, png, **extra)
        written.extend([pdf, png])
    return written
