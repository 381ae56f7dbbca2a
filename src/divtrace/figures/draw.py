"""Entry point: every figure of DESIGN §7 from the tables of :func:`divtrace.analysis.build_tables`.

>>> draw_figures(tables, lineage, "results/figures")   # → [.../lineage_trajectories.pdf, ...]

Each figure reads one table; a missing or empty table gives a figure that says so instead of an
error, so the step never fails on a degenerate study (no verifiable task, no reasoning model, …).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from divtrace.figures.common import empty_figure
from divtrace.figures.cot import plot_cot_on_off
from divtrace.figures.decomposition import plot_decomposition
from divtrace.figures.quality import plot_quality_by_stage
from divtrace.figures.retention import plot_retention_heatmap
from divtrace.figures.stages import plot_stage_attribution
from divtrace.figures.trajectories import plot_lineage_trajectories
from divtrace.lineage import Lineage

Plot = Callable[[pd.DataFrame | None, Lineage, Path, Path], None]


def _trajectories(table: pd.DataFrame | None, lineage: Lineage, pdf: Path, png: Path) -> None:
    needed = ("model", "task", "cot", "scope", "subset", "metric", "value")
    if table is None or any(column not in table.columns for column in needed):
        empty_figure("Lineage trajectories", "no diversity table", pdf, png)
        return
    selection = table[(table["scope"] == "per_input") & (table["subset"] == "all")]
    if selection.empty:
        empty_figure("Lineage trajectories", "no per-input diversity rows", pdf, png)
        return
    plot_lineage_trajectories(table, lineage, pdf, png)


FIGURES: dict[str, tuple[str, Plot]] = {
    "lineage_trajectories": ("diversity", _trajectories),
    "retention_heatmap": ("retention", plot_retention_heatmap),
    "stage_attribution": ("stages", plot_stage_attribution),
    "cot_on_off": ("cot", plot_cot_on_off),
    "decomposition": ("decomposition", plot_decomposition),
    "quality_by_stage": ("quality", plot_quality_by_stage),
}
"""Figure name → (the table it reads, the function that draws it)."""

FIGURE_NAMES = tuple(FIGURES)


def figure_paths(out_dir: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """``({out_dir}/{name}.pdf, {out_dir}/{name}.png)``."""
    return Path(out_dir) / f"{name}.pdf", Path(out_dir) / f"{name}.png"


def draw_figures(
    tables: Mapping[str, pd.DataFrame],
    lineage: Lineage,
    out_dir: str | os.PathLike[str],
    names: tuple[str, ...] = FIGURE_NAMES,
) -> list[Path]:
    """Write ``{out_dir}/{name}.pdf`` and ``.png`` for every figure in ``names``; return the paths.

    ``tables`` maps table names (``diversity``, ``retention``, ``stages``, ``cot``,
    ``decomposition``, ``quality``) to DataFrames; missing tables give "no data" figures.
    """
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; known: {list(FIGURES)}")
    written: list[Path] = []
    for name in names:
        table_name, plot = FIGURES[name]
        pdf, png = figure_paths(out_dir, name)
        plot(tables.get(table_name), lineage, pdf, png)
        written.extend([pdf, png])
    return written
