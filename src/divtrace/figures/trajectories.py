"""Lineage trajectories: diversity along each post-training lineage, one panel per task and metric.

Reads only the summary table of :func:`divtrace.analysis.summarize_diversity` (docs/design.md §7).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from divtrace.errors import AnalysisError, ContractError
from divtrace.figures import style
from divtrace.figures.common import metric_label, metric_order, number, records, stage_ticks
from divtrace.lineage import Lineage
from divtrace.names import ALL_TASKS, BASE_LABEL

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

REQUIRED_COLUMNS = ("model", "task", "cot", "scope", "subset", "metric", "value")

Values = dict[tuple[str, str, str, str], float]  # (task, model, cot, metric) -> value
Bounds = dict[tuple[str, str, str, str], tuple[float, float]]  # same key -> (ci_low, ci_high)
DODGE = 0.06  # x offset between the series of a panel, so that their error bars do not overlap
Marked = tuple[str, str, float, float, str]  # a drawn marker: model, cot, x, y, colour


def value_lookup(selection: pl.DataFrame, metric: str | None = None) -> Values:
    """(task, model, cot, metric) → value, for the rows with a finite value (``metric``: the key's
    metric for every row, else the row's own ``metric`` column)."""
    values: Values = {}
    for row in records(selection):
        value = number(row["value"])
        if np.isfinite(value):
            name = metric if metric is not None else str(row["metric"])
            values[(str(row["task"]), str(row["model"]), str(row["cot"]), name)] = value
    return values


def _values(selection: pl.DataFrame, tasks: list[str]) -> Values:
    """Value lookup, plus the all-tasks mean for models that have every task of the figure."""
    values = value_lookup(selection)
    if len(tasks) > 1:
        groups: dict[tuple[str, str, str], list[float]] = {}
        for (_task, model, cot, metric), value in values.items():
            groups.setdefault((model, cot, metric), []).append(value)
        for (model, cot, metric), group in groups.items():
            if len(group) == len(tasks):
                values[(ALL_TASKS, model, cot, metric)] = float(np.mean(group))
    return values


def drawn_lineages(lineage: Lineage, values: Values) -> dict[str, list[str]]:
    """The lineages to draw: those with data beyond the shared root (the others would only
    repeat the base point), or all of them when none has."""
    modelled = {model for (_t, model, _c, _m) in values}
    return {
        label: path
        for label, path in lineage.lineages().items()
        if any(model in modelled for model in path[1:])
    } or lineage.lineages()


def lineage_styles(lineage: Lineage) -> dict[str, tuple[str, str]]:
    """Each lineage's colour and marker, by its place in :meth:`Lineage.lineages` (as in every
    figure)."""
    return {label: (style.color(i), style.marker(i)) for i, label in enumerate(lineage.lineages())}


def lineage_legend(
    figure: Figure, handles: dict[str, Line2D], paths: dict[str, list[str]], max_columns: int
) -> None:
    """The figure's legend above the panels: the base first, then the lineages in their order,
    each followed by its CoT-off series."""
    rank = {BASE_LABEL: -1} | {label: i for i, label in enumerate(paths)}
    ordered = sorted(
        handles, key=lambda label: (rank.get(label.removesuffix(" (CoT off)"), 0), label)
    )
    figure.legend(
        [handles[label] for label in ordered],
        ordered,
        loc="outside upper center",
        ncols=max(1, min(len(ordered), max_columns)),
        frameon=False,
    )


def interval_lookup(selection: pl.DataFrame) -> Bounds:
    """Interval lookup from ``ci_low``/``ci_high`` (empty if the table has no such columns)."""
    if "ci_low" not in selection.columns or "ci_high" not in selection.columns:
        return {}
    bounds: Bounds = {}
    for row in records(selection):
        low, high = number(row["ci_low"]), number(row["ci_high"])
        if np.isfinite(low) and np.isfinite(high):
            key = (str(row["task"]), str(row["model"]), str(row["cot"]), str(row["metric"]))
            bounds[key] = (low, high)
    return bounds


def _offsets(paths: dict[str, list[str]], values: Values) -> dict[tuple[str, str], float]:
    """x offset of each (lineage, cot) series: centred, :data:`DODGE` apart."""
    series = [
        (label, cot)
        for label, path in paths.items()
        for cot in ("on", "off")
        if any((model, cot) == (m, c) for (_t, m, c, _x) in values for model in path[1:])
    ]
    step = min(DODGE, 0.4 / max(len(series), 1))
    return {key: (i - (len(series) - 1) / 2) * step for i, key in enumerate(series)}


def _errorbars(
    ax: Axes,
    points: list[tuple[float, float, tuple[float, float] | None]],
    colour: str,
    zorder: float,
) -> None:
    drawn = [(x, y, b) for x, y, b in points if b is not None]
    if not drawn:
        return
    xs = [x for x, _y, _b in drawn]
    ys = [y for _x, y, _b in drawn]
    low = [max(y - b[0], 0.0) for _x, y, b in drawn]
    high = [max(b[1] - y, 0.0) for _x, y, b in drawn]
    ax.errorbar(
        xs,
        ys,
        yerr=[low, high],
        fmt="none",
        ecolor=colour,
        elinewidth=0.7,
        capsize=1.5,
        capthick=0.7,
        zorder=zorder,
    )


def lineage_panel(
    ax: Axes,
    task: str,
    metric: str,
    paths: dict[str, list[str]],
    values: Values,
    handles: dict[str, Line2D],
    root: str,
    bounds: Bounds | None = None,
    styles: dict[str, tuple[str, str]] | None = None,
) -> list[Marked]:
    """Draw one task × metric panel; return the markers drawn, ``(model, cot, x, y, colour)``
    each (a checkpoint on two lineages' paths has one marker per path)."""
    marked: list[Marked] = []
    bounds = bounds or {}
    offsets = _offsets(paths, values) if bounds else {}
    # Every lineage starts at the root: one neutral marker there instead of a pile of coloured ones.
    for i, (label, path) in enumerate(paths.items()):
        colour, marker = (styles or {}).get(label, (style.color(i), style.marker(i)))
        dx_on, dx_off = offsets.get((label, "on"), 0.0), offsets.get((label, "off"), 0.0)
        on = [(x, values.get((task, model, "on", metric))) for x, model in enumerate(path)]
        on_points = [(x + (dx_on if x else 0.0), v) for x, v in on if v is not None]
        _errorbars(
            ax,
            [
                (x + dx_on, v, bounds.get((task, path[x], "on", metric)))
                for x, v in on
                if v is not None and path[x] != root
            ],
            colour,
            2.5,
        )
        if on_points:
            xs, ys = zip(*on_points, strict=True)
            (line,) = ax.plot(
                xs,
                ys,
                color=colour,
                marker=marker,
                markevery=[j for j, x in enumerate(xs) if path[round(x)] != root],
                label=label,
                zorder=3,
            )
            handles.setdefault(label, line)
            marked += [
                (path[round(x)], "on", x, y, colour) for x, y in on_points if path[round(x)] != root
            ]
        off = [(x, values.get((task, model, "off", metric))) for x, model in enumerate(path)]
        off_points = [(x, v) for x, v in off if v is not None]
        if not off_points:
            continue
        # The dashed CoT-off line leaves from the stage before the first CoT-off point (its normal
        # run, as in ratio_to_parent); that anchor gets no hollow marker of its own.
        first = off_points[0][0]
        anchor = on[first - 1][1] if first > 0 else None
        anchor_x = first - 1 + (dx_on if first > 1 else 0.0)
        points = ([(anchor_x, anchor)] if anchor is not None else []) + [
            (x + dx_off, v) for x, v in off_points
        ]
        _errorbars(
            ax,
            [(x + dx_off, v, bounds.get((task, path[x], "off", metric))) for x, v in off_points],
            colour,
            2.2,
        )
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
        marked += [(path[x], "off", x + dx_off, v, colour) for x, v in off_points]
    base = values.get((task, root, "on", metric))
    if base is not None:
        _errorbars(ax, [(0.0, base, bounds.get((task, root, "on", metric)))], "black", 3.5)
        (point,) = ax.plot(
            [0], [base], color="black", marker="o", linestyle="none", label=BASE_LABEL, zorder=4
        )
        handles.setdefault(BASE_LABEL, point)
        marked.append((root, "on", 0.0, base, "black"))
    return marked


def plot_lineage_trajectories(
    table: pl.DataFrame,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    scope: str = "per_input",
    subset: str = "all",
) -> None:
    """Plot diversity along each lineage and write ``out_pdf`` and ``out_png`` atomically.

    One column of panels per metric present (EAD, SBERT, NLI, Vendi, then any others), one row per
    task, and, with two or more tasks, a last row "all tasks (mean)": the mean over the figure's
    tasks, drawn only for checkpoints that have all of them. The x axis is the position along the
    lineage (0 = base), labelled with stage names; each lineage of :meth:`Lineage.lineages` is one
    solid line with its own colour and marker, all leaving from one black "base" marker at x = 0.
    CoT-off runs of reasoning checkpoints are the same
    colour, dashed with hollow markers, labelled "<lineage> (CoT off)". The y axis is the raw
    diversity value of the ``scope``/``subset`` rows of ``table``. Where the table has ``ci_low``
    and ``ci_high`` (bootstrap intervals over prompts) they are drawn as error bars, and the series
    of a panel are moved a little apart on the x axis so that the bars stay readable; the
    all-tasks row has no intervals.
    """
    missing = [name for name in REQUIRED_COLUMNS if name not in table.columns]
    if missing:
        raise ContractError(f"summary table lacks column(s) {missing}")
    selection = table.filter((pl.col("scope") == scope) & (pl.col("subset") == subset))
    if selection.is_empty():
        raise AnalysisError(
            f"summary table has no rows with scope={scope!r} and subset={subset!r} "
            f"(scopes: {_distinct(table, 'scope')}, subsets: {_distinct(table, 'subset')})"
        )
    unknown = sorted(set(_distinct(selection, "model")) - set(lineage.checkpoints))
    if unknown:
        raise AnalysisError(
            f"summary table column 'model' names model(s) {unknown} not in the lineage"
        )

    metrics = metric_order(_distinct(selection, "metric"))
    tasks = _distinct(selection, "task")
    values = _values(selection, tasks)
    bounds = interval_lookup(selection)
    rows = [*tasks, ALL_TASKS] if len(tasks) > 1 else tasks
    paths = drawn_lineages(lineage, values)
    ticks = stage_ticks(paths, lineage)
    styles = lineage_styles(lineage)

    with style.style_context():
        figure = style.new_figure(
            style.PANEL_WIDTH_IN * len(metrics), style.PANEL_HEIGHT_IN * len(rows) + 0.5
        )
        axes = figure.subplots(len(rows), len(metrics), sharex=True, squeeze=False)
        handles: dict[str, Line2D] = {}
        for r, task in enumerate(rows):
            for c, metric in enumerate(metrics):
                ax = axes[r][c]
                lineage_panel(
                    ax, task, metric, paths, values, handles, lineage.root, bounds, styles
                )
                ax.set_xticks(range(len(ticks)), ticks)
                ax.set_xlim(-0.3, len(ticks) - 0.7)
                if r == 0:
                    ax.set_title(metric_label(metric), fontweight="bold")
                if c == 0:
                    ax.set_ylabel(task, fontweight="bold" if task == ALL_TASKS else "normal")
                if not any(key[0] == task and key[3] == metric for key in values):
                    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.5")
        figure.supxlabel("post-training stage (position along the lineage)")
        figure.supylabel(f"diversity ({scope.replace('_', ' ')}, {subset} outputs)")
        lineage_legend(figure, handles, paths, min(2 * len(metrics), 8))
        style.save_figure(figure, out_pdf, out_png)


def _distinct(table: pl.DataFrame, column: str) -> list[str]:
    """The distinct values of a column as sorted strings (nulls as "None")."""
    return sorted({str(value) for value in table.get_column(column).to_list()})
