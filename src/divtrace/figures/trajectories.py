"""Lineage trajectories: diversity along each post-training lineage, one panel per task and metric.

Reads only the summary table of :func:`divtrace.analysis.summarize_diversity` (DESIGN §7).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from divtrace.analysis.aggregate import BASE_LABEL
from divtrace.figures import style
from divtrace.lineage import Lineage

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.lines import Line2D

REQUIRED_COLUMNS = ("model", "task", "cot", "scope", "subset", "metric", "value")
METRIC_ORDER = ("ead", "sbert", "vendi", "nli")
METRIC_LABELS = {"ead": "EAD", "sbert": "SBERT", "vendi": "Vendi", "nli": "NLI"}
ALL_TASKS = "all tasks (mean)"

Values = dict[tuple[str, str, str, str], float]  # (task, model, cot, metric) -> value


def _order_metrics(metrics: Sequence[str]) -> list[str]:
    known = [m for m in METRIC_ORDER if m in metrics]
    return known + sorted(set(metrics) - set(METRIC_ORDER))


def _values(selection: pd.DataFrame, tasks: list[str]) -> Values:
    """Value lookup, plus the all-tasks mean for models that have every task of the figure."""
    values: Values = {}
    for row in selection.to_dict("records"):
        value = float(row["value"])
        if np.isfinite(value):
            values[(str(row["task"]), str(row["model"]), str(row["cot"]), str(row["metric"]))] = (
                value
            )
    if len(tasks) > 1:
        groups: dict[tuple[str, str, str], list[float]] = {}
        for (_task, model, cot, metric), value in values.items():
            groups.setdefault((model, cot, metric), []).append(value)
        for (model, cot, metric), group in groups.items():
            if len(group) == len(tasks):
                values[(ALL_TASKS, model, cot, metric)] = float(np.mean(group))
    return values


def _stage_ticks(paths: dict[str, list[str]], lineage: Lineage) -> list[str]:
    width = max(len(path) for path in paths.values())
    ticks: list[str] = []
    for position in range(width):
        stages: list[str] = []
        for path in paths.values():
            if position < len(path):
                stage = lineage.checkpoints[path[position]].stage
                if stage not in stages:
                    stages.append(stage)
        ticks.append("\n".join(stages))
    return ticks


def _plot_panel(
    ax: Axes,
    task: str,
    metric: str,
    paths: dict[str, list[str]],
    values: Values,
    handles: dict[str, Line2D],
    root: str,
) -> None:
    # Every lineage starts at the root: one neutral marker there instead of a pile of coloured ones.
    for i, (label, path) in enumerate(paths.items()):
        colour, marker = style.color(i), style.marker(i)
        on = [(x, values.get((task, model, "on", metric))) for x, model in enumerate(path)]
        on_points = [(x, v) for x, v in on if v is not None]
        if on_points:
            xs, ys = zip(*on_points, strict=True)
            (line,) = ax.plot(
                xs,
                ys,
                color=colour,
                marker=marker,
                markevery=[j for j, x in enumerate(xs) if path[x] != root],
                label=label,
                zorder=3,
            )
            handles.setdefault(label, line)
        off = [(x, values.get((task, model, "off", metric))) for x, model in enumerate(path)]
        off_points = [(x, v) for x, v in off if v is not None]
        if not off_points:
            continue
        # The dashed CoT-off line leaves from the stage before the first CoT-off point (its normal
        # run, as in ratio_to_parent); that anchor gets no hollow marker of its own.
        first = off_points[0][0]
        anchor = on[first - 1][1] if first > 0 else None
        points = ([(first - 1, anchor)] if anchor is not None else []) + off_points
        xs, ys = zip(*points, strict=True)
        start = 1 if anchor is not None else 0
        off_label = f"{label} (CoT off)"
        (line,) = ax.plot(
            xs,
            ys,
            color=colour,
            marker=marker,
            markerfacecolor="white",
            markeredgecolor=colour,
            linestyle="--",
            markevery=list(range(start, len(points))),
            label=off_label,
            zorder=2,
        )
        handles.setdefault(off_label, line)
    base = values.get((task, root, "on", metric))
    if base is not None:
        (point,) = ax.plot(
            [0], [base], color="black", marker="o", linestyle="none", label=BASE_LABEL, zorder=4
        )
        handles.setdefault(BASE_LABEL, point)


def plot_lineage_trajectories(
    table: pd.DataFrame,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    scope: str = "per_input",
    subset: str = "all",
) -> None:
    """Plot diversity along each lineage and write ``out_pdf`` and ``out_png`` atomically.

    One column of panels per metric present (EAD, SBERT, Vendi, NLI, then any others), one row per
    task, and, with two or more tasks, a last row "all tasks (mean)": the mean over the figure's
    tasks, drawn only for checkpoints that have all of them. The x axis is the position along the
    lineage (0 = base), labelled with stage names; each lineage of :meth:`Lineage.lineages` is one
    solid line with its own colour and marker, all leaving from one black "base" marker at x = 0.
    CoT-off runs of reasoning checkpoints are the same
    colour, dashed with hollow markers, labelled "<lineage> (CoT off)". The y axis is the raw
    diversity value of the ``scope``/``subset`` rows of ``table``.
    """
    missing = [name for name in REQUIRED_COLUMNS if name not in table.columns]
    if missing:
        raise ValueError(f"summary table lacks column(s) {missing}")
    selection = table[(table["scope"] == scope) & (table["subset"] == subset)]
    if selection.empty:
        raise ValueError(
            f"summary table has no rows with scope={scope!r} and subset={subset!r} "
            f"(scopes: {sorted(set(table['scope']))}, subsets: {sorted(set(table['subset']))})"
        )
    unknown = sorted(set(selection["model"]) - set(lineage.checkpoints))
    if unknown:
        raise ValueError(
            f"summary table column 'model' names model(s) {unknown} not in the lineage"
        )

    metrics = _order_metrics(sorted(set(selection["metric"].astype(str))))
    tasks = sorted(set(selection["task"].astype(str)))
    values = _values(selection, tasks)
    rows = [*tasks, ALL_TASKS] if len(tasks) > 1 else tasks
    # Lineages with no data beyond the shared root would only repeat the base point.
    modelled = {model for (_t, model, _c, _m) in values}
    paths = {
        label: path
        for label, path in lineage.lineages().items()
        if any(model in modelled for model in path[1:])
    } or lineage.lineages()
    ticks = _stage_ticks(paths, lineage)

    with style.style_context():
        figure = style.new_figure(
            style.PANEL_WIDTH_IN * len(metrics), style.PANEL_HEIGHT_IN * len(rows) + 0.5
        )
        axes = figure.subplots(len(rows), len(metrics), sharex=True, squeeze=False)
        handles: dict[str, Line2D] = {}
        for r, task in enumerate(rows):
            for c, metric in enumerate(metrics):
                ax = axes[r][c]
                _plot_panel(ax, task, metric, paths, values, handles, lineage.root)
                ax.set_xticks(range(len(ticks)), ticks)
                ax.set_xlim(-0.3, len(ticks) - 0.7)
                if r == 0:
                    ax.set_title(METRIC_LABELS.get(metric, metric), fontweight="bold")
                if c == 0:
                    ax.set_ylabel(task, fontweight="bold" if task == ALL_TASKS else "normal")
                if not any(key[0] == task and key[3] == metric for key in values):
                    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.5")
        figure.supxlabel("post-training stage (position along the lineage)")
        figure.supylabel(f"diversity ({scope.replace('_', ' ')}, {subset} outputs)")
        rank = {BASE_LABEL: -1} | {label: i for i, label in enumerate(paths)}
        ordered = sorted(
            handles, key=lambda label: (rank.get(label.removesuffix(" (CoT off)"), 0), label)
        )
        figure.legend(
            [handles[label] for label in ordered],
            ordered,
            loc="outside upper center",
            ncols=max(1, min(len(ordered), 2 * len(metrics), 8)),
            frameon=False,
        )
        style.save_figure(figure, out_pdf, out_png)
