"""Stage attribution: stacked bars per lineage, each segment one stage's share of the total loss.

Reads only the stages table (:func:`divtrace.analysis.stages.stage_table`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from divtrace.figures import style
from divtrace.figures.common import (
    empty_figure,
    has_columns,
    metric_label,
    metric_order,
    note,
    stage_colours,
    task_order,
)
from divtrace.lineage import Lineage

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.patches import Patch

REQUIRED = ("lineage", "model", "stage", "task", "cot", "scope", "subset", "metric", "share")
TITLE = "Stage attribution of the diversity loss"
LABEL_MIN = 0.12  # segments narrower than this (in share units) get no percentage label


def plot_stage_attribution(
    stages: pd.DataFrame | None,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    scope: str = "per_input",
    subset: str = "all",
) -> None:
    """One panel per task (rows, the all-tasks mean last) and metric (columns).

    In each panel one horizontal bar per lineage (and per lineage sampled with CoT off), split into
    the stages of the lineage in order, each as long as its share of the total loss base → final;
    negative shares (a stage that raised diversity) extend left of 0. The text right of each bar is
    the total ``D(base) − D(final)``: "loss x", or "gain x" where diversity rose overall (the shares
    are then shares of the gain). A bar with no net change (shares NaN) says so.
    """
    if not has_columns(stages, REQUIRED):
        empty_figure(TITLE, "no stages table", out_pdf, out_png)
        return
    assert stages is not None
    table = stages[(stages["scope"] == scope) & (stages["subset"] == subset)]
    if table.empty:
        empty_figure(TITLE, f"no stage rows (scope {scope}, subset {subset})", out_pdf, out_png)
        return
    metrics = metric_order(table["metric"].unique())
    tasks = task_order(table["task"].unique())
    labels = list(lineage.lineages())
    series = sorted(
        {(str(lab), str(c)) for lab, c in zip(table["lineage"], table["cot"], strict=True)},
        key=lambda s: (labels.index(s[0]) if s[0] in labels else len(labels), s[0], s[1] != "on"),
    )
    colours = stage_colours([str(s) for s in table["stage"].unique()])
    height = max(0.9, 0.28 * len(series) + 0.55)
    with style.style_context():
        figure = style.new_figure(
            style.PANEL_WIDTH_IN * len(metrics) + 0.9, height * len(tasks) + 0.6
        )
        axes = figure.subplots(len(tasks), len(metrics), squeeze=False, sharey=True, sharex="col")
        handles: dict[str, Patch] = {}
        for r, task in enumerate(tasks):
            for c, metric in enumerate(metrics):
                ax = axes[r][c]
                panel = table[(table["task"] == task) & (table["metric"] == metric)]
                _panel(ax, panel, series, colours, handles)
                if r == 0:
                    ax.set_title(metric_label(metric), fontweight="bold")
                if c == 0:
                    ax.set_ylabel(task, fontweight="bold" if task.startswith("all") else "normal")
                if r == len(tasks) - 1:
                    ax.set_xlabel("share of the total loss")
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


def _panel(
    ax: Axes,
    panel: pd.DataFrame,
    series: list[tuple[str, str]],
    colours: dict[str, str],
    handles: dict[str, Patch],
) -> None:
    from matplotlib.ticker import MultipleLocator

    ax.set_yticks(
        range(len(series)), [lab if cot == "on" else f"{lab} (CoT off)" for lab, cot in series]
    )
    ax.set_ylim(len(series) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    ax.axvline(0, color="0.3", linewidth=0.6, zorder=1)
    ax.axvline(1, color="0.6", linewidth=0.6, linestyle=":", zorder=1)
    lows, highs = [0.0], [1.0]
    drawn = False
    for y, (label, cot) in enumerate(series):
        rows = panel[(panel["lineage"] == label) & (panel["cot"] == cot)].sort_values("depth")
        if rows.empty:
            continue
        shares = rows["share"].to_numpy(dtype=float)
        total = float(rows["total_loss"].iloc[0]) if "total_loss" in rows else np.nan
        if not np.isfinite(shares).any():
            text = "no net change" if np.isfinite(total) else "missing stages"
            ax.text(0.02, y, text, va="center", fontsize=6.5, color="0.45")
            continue
        drawn = True
        left_pos, left_neg = 0.0, 0.0
        for stage, share in zip(rows["stage"].astype(str), shares, strict=True):
            if not np.isfinite(share):
                continue
            # Positive shares stack rightwards from 0, negative ones leftwards from 0.
            start = left_pos if share >= 0 else left_neg
            bar = ax.barh(
                y,
                share,
                left=start,
                height=0.62,
                color=colours[stage],
                edgecolor="white",
                linewidth=0.5,
                zorder=2,
            )
            handles.setdefault(stage, bar.patches[0])
            if abs(share) >= LABEL_MIN:
                ax.text(
                    start + share / 2,
                    y,
                    f"{share:.0%}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white",
                    zorder=3,
                )
            if share >= 0:
                left_pos += share
            else:
                left_neg += share
        lows.append(left_neg)
        highs.append(left_pos)
        if np.isfinite(total):
            ax.text(
                left_pos + 0.03,
                y,
                f"{'loss' if total >= 0 else 'gain'} {abs(total):.2g}",
                va="center",
                ha="left",
                fontsize=6,
                color="0.25",
            )
    low, high = min(ax.get_xlim()[0], min(lows) - 0.05), max(ax.get_xlim()[1], max(highs) + 0.45)
    ax.set_xlim(low, high)
    ax.xaxis.set_major_locator(MultipleLocator(0.5))
    if not drawn:
        note(ax)
