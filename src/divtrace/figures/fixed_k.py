"""Diversity against the set size k, and the number of distinct answers by stage.

``diversity_by_k`` reads the ``diversity_k`` table (:mod:`divtrace.analysis.fixed_k`): one panel
per task × metric (all outputs), x the set size k, one line per checkpoint run (coloured by
lineage, CoT off dashed) with the 95 % bootstrap interval of the mean over prompts. The paper
reports one point of these curves (k = 16); the curves show whether two checkpoints differ at
every size or only at the size the study happened to sample.

``distinct_answers_by_stage`` reads the diversity table: per task with answer classes, the mean
number of distinct final answers per prompt (``distinct_answers``, all outputs) along each
lineage, drawn like the quality-filtered Vendi figure.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from divtrace.figures import style
from divtrace.figures.common import (
    empty_figure,
    has_columns,
    metric_label,
    metric_order,
    number,
    order_runs,
    records,
    run_colour,
    run_label,
    run_marker,
    strings,
    task_order,
)
from divtrace.figures.quality_filtered import plot_by_stage
from divtrace.lineage import Lineage

if TYPE_CHECKING:
    from matplotlib.lines import Line2D

REQUIRED = ("model", "task", "cot", "subset", "metric", "k", "value")
TITLE = "Diversity against the set size k"
COLUMNS_PER_ROW = 3


def plot_diversity_by_k(
    table: pl.DataFrame | None,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
) -> None:
    """The curves of the module docstring; a figure that says so without rows at fixed k."""
    if not has_columns(table, REQUIRED):
        empty_figure(
            TITLE, "no diversity_k table (run divtrace diversity with --k-grid)", out_pdf, out_png
        )
        return
    assert table is not None
    rows = table.filter(
        (pl.col("subset") == "all")
        & pl.col("model").is_in(list(lineage.checkpoints))
        & pl.col("k").is_not_null()
    )
    if rows.is_empty():
        empty_figure(
            TITLE, "no rows at a fixed set size (metrics.k_grid is empty)", out_pdf, out_png
        )
        return
    panels = [
        (task, metric)
        for task in task_order(strings(rows, "task"), all_tasks_last=False)
        for metric in metric_order(strings(rows.filter(pl.col("task") == task), "metric"))
    ]
    ncols = min(len(panels), COLUMNS_PER_ROW)
    nrows = math.ceil(len(panels) / ncols)
    runs = order_runs(lineage, {(str(r["model"]), str(r["cot"])) for r in records(rows)})
    with style.style_context():
        figure = style.new_figure(
            style.PANEL_WIDTH_IN * ncols + 0.4, (style.PANEL_HEIGHT_IN + 0.2) * nrows + 0.9
        )
        axes = figure.subplots(nrows, ncols, squeeze=False)
        handles: dict[str, Line2D] = {}
        for i, ax in enumerate(axes.flat):
            if i >= len(panels):
                ax.set_axis_off()
                continue
            task, metric = panels[i]
            panel = rows.filter((pl.col("task") == task) & (pl.col("metric") == metric))
            for model, cot in runs:
                line = panel.filter((pl.col("model") == model) & (pl.col("cot") == cot)).sort("k")
                points = [
                    (number(r["k"]), number(r["value"]), number(r["ci_low"]), number(r["ci_high"]))
                    for r in records(line)
                    if np.isfinite(number(r["value"])) and np.isfinite(number(r["k"]))
                ]
                if not points:
                    continue
                ks, ys, lows, highs = (np.asarray(v) for v in zip(*points, strict=True))
                colour = run_colour(lineage, model)
                (handle,) = ax.plot(
                    ks,
                    ys,
                    color=colour,
                    marker=run_marker(lineage, model),
                    linestyle="--" if cot == "off" else "-",
                    markersize=3,
                    linewidth=1,
                )
                finite = np.isfinite(lows) & np.isfinite(highs)
                if finite.any():
                    ax.fill_between(
                        ks[finite], lows[finite], highs[finite], color=colour, alpha=0.12, lw=0
                    )
                handles.setdefault(run_label(model, cot), handle)
            ks_all = sorted({int(number(k)) for k in panel.get_column("k").to_list()})
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks_all, [str(k) for k in ks_all])
            ax.set_title(f"{task}: {metric_label(metric)}", fontweight="bold")
            if i % ncols == 0:
                ax.set_ylabel("mean over k-subsets")
        figure.supxlabel("set size k (outputs per prompt)", fontsize=7)
        figure.legend(
            list(handles.values()),
            list(handles),
            loc="outside upper center",
            ncols=max(1, min(len(handles), 6)),
            frameon=False,
        )
        style.save_figure(figure, out_pdf, out_png)


def plot_distinct_answers(
    diversity: pl.DataFrame | None,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
) -> None:
    """``distinct_answers`` per prompt by stage (module docstring)."""
    plot_by_stage(
        diversity,
        lineage,
        out_pdf,
        out_png,
        metric="distinct_answers",
        subset="all",
        title="Distinct final answers per prompt",
        ylabel="distinct answers (of K)",
        caption=(
            "Answer classes by the task's judge (math by equivalence, CRUXEval by value, IFEval "
            "by the verdicts). Under each point: the share of the run's prompts with a value."
        ),
        nothing="no distinct_answers rows (no task with answer classes, or metric not asked)",
        panel_empty="no prompt with two outputs",
    )
