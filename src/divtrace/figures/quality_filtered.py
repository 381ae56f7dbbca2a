"""Quality-filtered Vendi: the Vendi score of each prompt's correct outputs, along each lineage.

The paper's Figure 6 ("Quality filtered Vendi Score on six verifiable tasks", PAPER.md §7, §9):
per verifiable task, ``V_correct`` of every checkpoint by stage. Reads only the diversity summary
table (:func:`divtrace.analysis.summarize_diversity`): its rows with ``scope = per_input``,
``subset = correct`` and ``metric = vendi``, which exist for the tasks with a judge.

A prompt has a value only where at least two of its outputs are correct (``names.MIN_OUTPUTS``),
so each checkpoint is averaged over its own prompts: the figure writes under every point the
share of the run's prompts it covers, ``n_prompts / (n_prompts + n_missing)``. Vendi also grows
with the number of outputs in a set, and a more accurate checkpoint has more correct outputs per
prompt; the figure says so, as the decomposition refuses to split Vendi for the same reason.
"""

from __future__ import annotations

import math
import os
import textwrap
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from divtrace.figures import style
from divtrace.figures.common import (
    empty_figure,
    has_columns,
    note,
    number,
    records,
    stage_ticks,
    strings,
    task_order,
)
from divtrace.figures.trajectories import (
    drawn_lineages,
    interval_lookup,
    lineage_legend,
    lineage_panel,
    lineage_styles,
    value_lookup,
)
from divtrace.lineage import Lineage
from divtrace.names import PAPER_DECOMPOSITION_TASKS

if TYPE_CHECKING:
    from matplotlib.lines import Line2D

REQUIRED = ("model", "task", "cot", "scope", "subset", "metric", "value")
TITLE = "Quality-filtered Vendi score"
METRIC = "vendi"
COLUMNS_PER_ROW = 3
SIZE_NOTE = (
    "Vendi of each prompt's correct outputs (prompts with at least two); it grows with their "
    "number as well as their diversity. Under each point: the share of the run's prompts with a "
    "value."
)
EXTRA = "(extra: not in the paper's six)"

Coverage = dict[tuple[str, str, str], float]  # (task, model, cot) -> share of prompts covered


def coverage_label(share: float) -> str:
    """How a point's coverage is written (``"83%"``)."""
    return f"{share:.0%}"


def plot_quality_filtered_vendi(
    diversity: pl.DataFrame | None,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    metric: str = METRIC,
) -> None:
    """One panel per task with correct-subset rows (the paper's six verifiable tasks first, in its
    order, then divtrace's extras, titled as such); x is the position along the lineage (0 =
    base, ticks the stage labels), one line per lineage of :meth:`Lineage.lineages` leaving from
    a black base marker, CoT-off runs dashed with hollow markers (as
    :func:`divtrace.figures.trajectories.lineage_panel` draws them). Error bars: the 95 %
    bootstrap interval of the mean over prompts. Under each marker: the share of the run's prompts
    that have a value (``n_prompts / (n_prompts + n_missing)``), where the table counts them.
    """
    plot_by_stage(
        diversity,
        lineage,
        out_pdf,
        out_png,
        metric=metric,
        subset="correct",
        title=TITLE,
        ylabel="Vendi (correct outputs)",
        caption=SIZE_NOTE,
        nothing=f"no {metric} rows over correct outputs (no verifiable task in the study)",
        panel_empty="no prompt with two correct outputs",
    )


def plot_by_stage(
    diversity: pl.DataFrame | None,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    *,
    metric: str,
    subset: str,
    title: str,
    ylabel: str,
    caption: str,
    nothing: str,
    panel_empty: str,
) -> None:
    """Per-input ``metric`` of ``subset`` by stage, one panel per task that has it, drawn as
    :func:`plot_quality_filtered_vendi` describes (its layout, intervals and coverage)."""
    if not has_columns(diversity, REQUIRED):
        empty_figure(title, "no diversity table", out_pdf, out_png)
        return
    assert diversity is not None
    table = diversity.filter(
        (pl.col("scope") == "per_input")
        & (pl.col("subset") == subset)
        & (pl.col("metric") == metric)
        & pl.col("model").is_in(list(lineage.checkpoints))
    )
    if table.is_empty():
        empty_figure(title, nothing, out_pdf, out_png)
        return
    present = task_order(strings(table, "task"), all_tasks_last=False)
    tasks = [t for t in PAPER_DECOMPOSITION_TASKS if t in present]
    tasks += [t for t in present if t not in PAPER_DECOMPOSITION_TASKS]
    values = value_lookup(table, metric)
    bounds = interval_lookup(table)
    coverage = _coverage(table)
    paths = drawn_lineages(lineage, values)
    ticks = stage_ticks(paths, lineage)
    styles = lineage_styles(lineage)
    ncols = min(len(tasks), COLUMNS_PER_ROW)
    nrows = math.ceil(len(tasks) / ncols)
    with style.style_context():
        figure = style.new_figure(
            style.PANEL_WIDTH_IN * ncols + 0.4, (style.PANEL_HEIGHT_IN + 0.3) * nrows + 0.9
        )
        axes = figure.subplots(nrows, ncols, squeeze=False)
        handles: dict[str, Line2D] = {}
        for i, ax in enumerate(axes.flat):
            if i >= len(tasks):
                ax.set_axis_off()
                continue
            task = tasks[i]
            marked = lineage_panel(
                ax, task, metric, paths, values, handles, lineage.root, bounds, styles
            )
            for model, cot, x, y, colour in marked:
                share = coverage.get((task, model, cot))
                if share is not None:
                    ax.annotate(
                        coverage_label(share),
                        (x, y),
                        xytext=(0, -5),
                        textcoords="offset points",
                        ha="center",
                        va="top",
                        fontsize=5.5,
                        color=colour,
                        zorder=6,
                    )
            ax.set_xticks(range(len(ticks)), ticks)
            ax.set_xlim(-0.3, len(ticks) - 0.7)
            extra = task not in PAPER_DECOMPOSITION_TASKS
            ax.set_title(f"{task}\n{EXTRA}" if extra else task, fontweight="bold")
            if i % ncols == 0:
                ax.set_ylabel(ylabel)
            if not marked:
                note(ax, panel_empty)
        note_lines = textwrap.fill(caption, width=48 * ncols)
        figure.supxlabel(
            f"post-training stage (position along the lineage)\n{note_lines}", fontsize=7
        )
        lineage_legend(figure, handles, paths, 8)
        style.save_figure(figure, out_pdf, out_png)


def _coverage(table: pl.DataFrame) -> Coverage:
    """(task, model, cot) → ``n_prompts / (n_prompts + n_missing)``; empty where the table does
    not count the prompts without a value (no ``n_missing`` column)."""
    if "n_prompts" not in table.columns or "n_missing" not in table.columns:
        return {}
    shares: Coverage = {}
    for row in records(table):
        covered, missing = number(row["n_prompts"]), number(row["n_missing"])
        if np.isfinite(covered) and np.isfinite(missing) and covered + missing > 0:
            key = (str(row["task"]), str(row["model"]), str(row["cot"]))
            shares[key] = covered / (covered + missing)
    return shares
