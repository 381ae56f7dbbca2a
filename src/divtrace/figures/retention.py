"""Retention heatmap: task × checkpoint, colour = D(checkpoint) / D(base), one panel per metric.

Reads only the retention table (:func:`divtrace.analysis.retention.retention_table`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from divtrace.figures import style
from divtrace.figures.common import (
    empty_figure,
    floats,
    has_columns,
    metric_label,
    metric_order,
    note,
    number,
    order_runs,
    records,
    run_label,
    runs_of,
    strings,
    task_order,
)
from divtrace.lineage import Lineage

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Normalize
    from matplotlib.image import AxesImage

REQUIRED = ("model", "task", "cot", "scope", "subset", "metric", "ratio_to_base")
TITLE = "Retention of base-model diversity"
CELL_W_IN = 0.52
CELL_H_IN = 0.26
CMAP = "RdBu"  # ColorBrewer diverging, colour-blind safe: red = loss (< 1), blue = gain (> 1)


def plot_retention_heatmap(
    retention: pl.DataFrame | None,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    scope: str = "per_input",
    subset: str = "all",
) -> None:
    """Heatmap of ``ratio_to_base`` per task (rows) and checkpoint run (columns), per metric.

    The base model itself (ratio 1 by definition) is left out; CoT-off runs are separate columns.
    Each cell is annotated with the ratio; a ``*`` marks a paired 95 % interval that excludes 1.
    Missing cells are grey. The colour scale is shared by the panels and centred on 1.
    """
    if not has_columns(retention, REQUIRED):
        empty_figure(TITLE, "no retention table", out_pdf, out_png)
        return
    assert retention is not None
    table = retention.filter(
        (pl.col("scope") == scope)
        & (pl.col("subset") == subset)
        & (pl.col("model") != lineage.root)
        & pl.col("model").is_in(list(lineage.checkpoints))
    )
    if table.is_empty():
        empty_figure(TITLE, f"no retention rows (scope {scope}, subset {subset})", out_pdf, out_png)
        return
    from matplotlib.colors import LogNorm

    metrics = metric_order(strings(table, "metric"))
    tasks = task_order(strings(table, "task"))
    runs = order_runs(lineage, runs_of(table))
    ratios = floats(table, "ratio_to_base")
    finite = ratios[np.isfinite(ratios) & (ratios > 0)]
    spread = float(np.max(np.abs(np.log(finite)))) if len(finite) else 0.1
    spread = max(spread, 0.05)
    # Log scale symmetric around 1: a halving and a doubling get equally strong colours.
    norm = LogNorm(vmin=float(np.exp(-spread)), vmax=float(np.exp(spread)))

    lookup = {
        (str(r["task"]), str(r["model"]), str(r["cot"]), str(r["metric"])): r
        for r in records(table)
    }
    width = CELL_W_IN * len(runs) + 1.6
    height = (CELL_H_IN * len(tasks) + 0.55) * len(metrics) + 0.5
    with style.style_context():
        figure = style.new_figure(max(width, 3.2), height)
        axes = figure.subplots(len(metrics), 1, squeeze=False)
        image = None
        for k, (ax, metric) in enumerate(zip(axes[:, 0], metrics, strict=True)):
            grid = np.full((len(tasks), len(runs)), np.nan)
            stars = np.zeros_like(grid, dtype=bool)
            for i, task in enumerate(tasks):
                for j, (model, cot) in enumerate(runs):
                    row = lookup.get((task, model, cot, metric))
                    if row is None:
                        continue
                    grid[i, j] = number(row["ratio_to_base"])
                    low = number(row.get("ratio_to_base_ci_low"))
                    high = number(row.get("ratio_to_base_ci_high"))
                    stars[i, j] = bool(np.isfinite(low) and np.isfinite(high)) and (
                        low > 1 or high < 1
                    )
            image = _heatmap(ax, grid, stars, norm, tasks, runs, k == len(metrics) - 1)
            ax.set_title(metric_label(metric), fontweight="bold", loc="left")
            if not np.isfinite(grid).any():
                note(ax, "no data")
        if image is not None:
            bar = figure.colorbar(image, ax=axes[:, 0].tolist(), shrink=0.8, aspect=30, pad=0.02)
            bar.set_label("D / D(base)  (log scale)")
            low, high = float(np.exp(-spread)), float(np.exp(spread))
            ticks = [
                t for t in (0.25, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 4.0) if low <= t <= high
            ]
            bar.set_ticks(ticks, labels=[f"{t:g}" for t in ticks])
            bar.minorticks_off()
        figure.suptitle(
            f"Diversity relative to the base model\n({scope.replace('_', ' ')}, {subset} outputs;"
            " * paired 95% CI excludes 1)",
            fontsize=8,
        )
        style.save_figure(figure, out_pdf, out_png)


def _heatmap(
    ax: Axes,
    grid: np.ndarray,
    stars: np.ndarray,
    norm: Normalize,
    tasks: list[str],
    runs: list[tuple[str, str]],
    labels: bool,
) -> AxesImage:
    from matplotlib import colormaps

    cmap = colormaps[CMAP].with_extremes(bad="#eeeeee")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
    if labels:
        ax.set_xticks(range(len(runs)), [run_label(m, c) for m, c in runs], rotation=35, ha="right")
    else:
        ax.set_xticks(range(len(runs)), [""] * len(runs))
    ax.set_yticks(range(len(tasks)), tasks)
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xticks(np.arange(-0.5, len(runs)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(tasks)), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            value = grid[i, j]
            if not np.isfinite(value):
                ax.text(j, i, "–", ha="center", va="center", fontsize=6.5, color="0.5")
                continue
            shade = float(norm(value))
            colour = "white" if abs(shade - 0.5) > 0.32 else "black"
            text = f"{value:.2f}" + ("*" if stars[i, j] else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color=colour)
    if tasks and tasks[-1].startswith("all tasks"):
        ax.axhline(len(tasks) - 1.5, color="black", linewidth=0.8)
    return image
