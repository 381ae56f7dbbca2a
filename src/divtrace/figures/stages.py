"""Stage attribution: stacked bars per lineage, each segment the diversity one stage lost.

Reads only the stages table (:func:`divtrace.analysis.stages.stage_table`). Segments are drawn in
units of the base model's diversity (``loss / D(base)``), not as shares of the total loss: a share
is unbounded when a lineage's net change is near zero (an SFT stage that lost 16% and an RL stage
that won it back make shares of ±1,600%), while fractions of the base value stay on one readable
scale and still show which stage accounts for what. The table keeps the shares.
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
    stage_colours,
    strings,
    task_order,
)
from divtrace.lineage import Lineage

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.patches import Patch

REQUIRED = ("lineage", "model", "stage", "task", "cot", "scope", "subset", "metric", "share")
TITLE = "Stage attribution of the diversity loss"
LABEL_MIN = 0.06  # segments narrower than this (a fraction of base diversity) get no label


def plot_stage_attribution(
    stages: pl.DataFrame | None,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    scope: str = "per_input",
    subset: str = "all",
) -> None:
    """One panel per task (rows, the all-tasks mean last) and metric (columns).

    In each panel one horizontal bar per lineage (and per lineage sampled with CoT off), split into
    the stages of the lineage in order, each as long as the diversity it lost,
    ``(D(parent) − D(stage)) / D(base)``; stages that raised diversity extend left of 0 (see
    :func:`stage_segments`). A black tick marks the net change and the text right of each bar gives
    it: "net loss x%" or "net gain x%" of the base value. Columns share one x scale.
    """
    if not has_columns(stages, REQUIRED):
        empty_figure(TITLE, "no stages table", out_pdf, out_png)
        return
    assert stages is not None
    table = stages.filter((pl.col("scope") == scope) & (pl.col("subset") == subset))
    if table.is_empty():
        empty_figure(TITLE, f"no stage rows (scope {scope}, subset {subset})", out_pdf, out_png)
        return
    metrics = metric_order(strings(table, "metric"))
    tasks = task_order(strings(table, "task"))
    labels = list(lineage.lineages())
    series = sorted(
        set(zip(strings(table, "lineage"), strings(table, "cot"), strict=True)),
        key=lambda s: (labels.index(s[0]) if s[0] in labels else len(labels), s[0], s[1] != "on"),
    )
    colours = stage_colours(sorted(set(strings(table, "stage"))))
    height = max(0.9, 0.28 * len(series) + 0.55)
    with style.style_context():
        figure = style.new_figure(
            style.PANEL_WIDTH_IN * len(metrics) + 0.9, height * len(tasks) + 0.6
        )
        axes = figure.subplots(len(tasks), len(metrics), squeeze=False, sharey=True, sharex="col")
        handles: dict[str, Patch] = {}
        extents: dict[int, list[float]] = {c: [0.0, 0.0] for c in range(len(metrics))}
        for r, task in enumerate(tasks):
            for c, metric in enumerate(metrics):
                ax = axes[r][c]
                panel = table.filter((pl.col("task") == task) & (pl.col("metric") == metric))
                low, high = _panel(ax, panel, series, colours, handles)
                extents[c] = [min(extents[c][0], low), max(extents[c][1], high)]
                if r == 0:
                    ax.set_title(metric_label(metric), fontweight="bold")
                if c == 0:
                    ax.set_ylabel(task, fontweight="bold" if task.startswith("all") else "normal")
                if r == len(tasks) - 1:
                    ax.set_xlabel("diversity lost per stage (of base)")
        for c, (low, high) in extents.items():
            span = max(high - low, 0.1)
            # Room on the right for the "net …" text.
            axes[0][c].set_xlim(low - 0.04 * span, high + 0.45 * span)
        ordered = [s for s in colours if s in handles]
        figure.legend(
            [handles[s] for s in ordered],
            ordered,
            loc="outside upper center",
            ncols=max(1, len(ordered)),
            frameon=False,
            title="stage",
        )
        style.save_figure(figure, out_pdf, out_png)


def stage_segments(
    losses: np.ndarray, base_value: float
) -> tuple[list[tuple[int, float, float]], float]:
    """Bar segments ``(stage index, start, width)`` of losses in units of ``base_value``, and the net.

    Losses (positive widths) stack rightwards from 0 and gains (negative widths) leftwards from 0,
    in stage order; stages with a NaN loss are skipped. The net is the sum of the finite widths
    (NaN when there are none, or ``base_value`` is not a positive number).
    """
    if not np.isfinite(base_value) or base_value <= 0:
        return [], float("nan")
    segments: list[tuple[int, float, float]] = []
    right, left = 0.0, 0.0
    for i, loss in enumerate(np.asarray(losses, dtype=float)):
        if not np.isfinite(loss):
            continue
        width = float(loss) / base_value
        if width >= 0:
            segments.append((i, right, width))
            right += width
        else:
            segments.append((i, left, width))
            left += width
    net = float(sum(w for _, _, w in segments)) if segments else float("nan")
    return segments, net


def _panel(
    ax: Axes,
    panel: pl.DataFrame,
    series: list[tuple[str, str]],
    colours: dict[str, str],
    handles: dict[str, Patch],
) -> tuple[float, float]:
    """Draw one panel; return the extent of its bars (left, right) in data units."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    ax.set_yticks(
        range(len(series)), [lab if cot == "on" else f"{lab} (CoT off)" for lab, cot in series]
    )
    ax.set_ylim(len(series) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    ax.axvline(0, color="0.3", linewidth=0.6, zorder=1)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    low, high = 0.0, 0.0
    drawn = False
    for y, (label, cot) in enumerate(series):
        rows = panel.filter((pl.col("lineage") == label) & (pl.col("cot") == cot)).sort(
            "depth", maintain_order=True, nulls_last=True
        )
        if rows.is_empty():
            continue
        has_base = "value_parent" in rows.columns and "loss" in rows.columns
        base_value = float(floats(rows, "value_parent")[0]) if has_base else np.nan
        losses = floats(rows, "loss") if has_base else np.array([])
        segments, net = stage_segments(losses, base_value)
        if not segments:
            ax.text(0.02, y, "missing stages", va="center", fontsize=6.5, color="0.45")
            continue
        drawn = True
        stages = strings(rows, "stage")
        for i, start, width in segments:
            bar = ax.barh(
                y,
                width,
                left=start,
                height=0.62,
                color=colours[stages[i]],
                edgecolor="white",
                linewidth=0.5,
                zorder=2,
            )
            handles.setdefault(stages[i], bar.patches[0])
            if abs(width) >= LABEL_MIN:
                ax.text(
                    start + width / 2,
                    y,
                    f"{width:.0%}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white",
                    zorder=3,
                )
        right = max(0.0, sum(w for _, _, w in segments if w > 0))
        left = min(0.0, sum(w for _, _, w in segments if w < 0))
        ax.plot([net, net], [y - 0.38, y + 0.38], color="black", linewidth=1.2, zorder=4)
        ax.text(
            right + 0.02,
            y,
            f"net {'loss' if net >= 0 else 'gain'} {abs(net):.0%}",
            va="center",
            ha="left",
            fontsize=6,
            color="0.25",
        )
        low, high = min(low, left), max(high, right)
    if not drawn:
        note(ax)
    return low, high
