"""Quality per stage: accuracy@1 along each lineage, and pass@k curves per checkpoint.

Reads only the quality table (:func:`divtrace.analysis.quality.quality_table`; the plain
:func:`divtrace.quality.metrics.quality_summary` works too, without intervals).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from divtrace.figures import style
from divtrace.figures.common import (
    empty_figure,
    floats,
    has_columns,
    lineage_colours,
    note,
    number,
    order_runs,
    records,
    run_colour,
    run_label,
    run_marker,
    runs_of,
    stage_ticks,
    strings,
    task_order,
)
from divtrace.lineage import Lineage
from divtrace.names import BASE_LABEL

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

REQUIRED = ("model", "task", "cot", "accuracy_at_1")
TITLE = "Quality per stage"
PASS = re.compile(r"^pass_at_(\d+)$")
DODGE = 0.06


def plot_quality_by_stage(
    quality: pl.DataFrame | None,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
) -> None:
    """Top row: accuracy@1 by position along each lineage (one line per lineage, dashed hollow
    for CoT off, 95 % bootstrap intervals where the table has them), one panel per task.
    Bottom row: pass@k against k (log scale) for every checkpoint run, one panel per task."""
    if not has_columns(quality, REQUIRED):
        empty_figure(TITLE, "no quality table (no verifiable task)", out_pdf, out_png)
        return
    assert quality is not None
    table = quality.filter(pl.col("model").is_in(list(lineage.checkpoints)))
    if table.is_empty():
        empty_figure(TITLE, "no quality rows", out_pdf, out_png)
        return
    tasks = task_order(strings(table, "task"))
    ks = sorted(
        int(match.group(1))
        for column in table.columns
        if (match := PASS.match(str(column))) and not np.isnan(floats(table, column)).all()
    )
    models = set(strings(table, "model"))
    paths = {
        label: path
        for label, path in lineage.lineages().items()
        if any(model in models for model in path[1:])
    } or lineage.lineages()
    offsets = _series_offsets(table, paths)
    width = max(len(p) for p in paths.values())
    with style.style_context():
        figure = style.new_figure(style.PANEL_WIDTH_IN * len(tasks) + 0.4, 2 * 2.1 + 1.2)
        halves = figure.subfigures(2, 1, height_ratios=[1, 1.1], squeeze=False)
        top, bottom = halves[0][0], halves[1][0]
        top_axes = top.subplots(1, len(tasks), squeeze=False, sharey=True)[0]
        bottom_axes = bottom.subplots(1, len(tasks), squeeze=False, sharey=True)[0]
        line_handles: dict[str, Artist] = {}
        run_handles: dict[str, Artist] = {}
        for ax, task in zip(top_axes, tasks, strict=True):
            rows = table.filter(pl.col("task") == task)
            _stage_panel(ax, rows, paths, offsets, lineage, line_handles)
            ax.set_title(task, fontweight="bold")
            ax.set_xticks(range(width), stage_ticks(paths, lineage))
            ax.set_xlim(-0.3, width - 0.7)
        top_axes[0].set_ylabel("accuracy@1")
        for ax, task in zip(bottom_axes, tasks, strict=True):
            _pass_panel(ax, table.filter(pl.col("task") == task), ks, lineage, run_handles)
        bottom_axes[0].set_ylabel("pass@k")
        ordered = sorted(line_handles, key=lambda name: name != BASE_LABEL)
        top.legend(
            [line_handles[name] for name in ordered],
            ordered,
            loc="outside upper center",
            ncols=min(len(line_handles), 6) or 1,
            frameon=False,
        )
        bottom.legend(
            list(run_handles.values()),
            list(run_handles),
            loc="outside lower center",
            ncols=min(len(run_handles), 4) or 1,
            frameon=False,
        )
        style.save_figure(figure, out_pdf, out_png)


def _series_offsets(
    table: pl.DataFrame, paths: dict[str, list[str]]
) -> dict[tuple[str, str], float]:
    """x offset of each (lineage, cot) line, so that equal values and their intervals stay apart."""
    runs = set(runs_of(table))
    series = [
        (label, cot)
        for label, path in paths.items()
        for cot in ("on", "off")
        if any((model, cot) in runs for model in path[1:])
    ]
    step = min(DODGE, 0.4 / max(len(series), 1))
    return {key: (i - (len(series) - 1) / 2) * step for i, key in enumerate(series)}


def _stage_panel(
    ax: Axes,
    rows: pl.DataFrame,
    paths: dict[str, list[str]],
    offsets: dict[tuple[str, str], float],
    lineage: Lineage,
    handles: dict[str, Artist],
) -> None:
    lookup = {(str(r["model"]), str(r["cot"])): r for r in records(rows)}
    colours = lineage_colours(lineage)
    order = list(lineage.lineages())
    drawn = False
    for i, (label, path) in enumerate(paths.items()):
        colour = colours.get(label, style.color(i))
        marker = style.marker(order.index(label)) if label in order else "o"
        on = [
            (x, lookup[(m, "on")])
            for x, m in enumerate(path)
            if (m, "on") in lookup and np.isfinite(number(lookup[(m, "on")]["accuracy_at_1"]))
        ]
        off = [
            (x, lookup[(m, "off")])
            for x, m in enumerate(path)
            if x > 0
            and (m, "off") in lookup
            and np.isfinite(number(lookup[(m, "off")]["accuracy_at_1"]))
        ]
        for cot, points in (("on", on), ("off", off)):
            if not points or (cot == "on" and all(x == 0 for x, _r in points)):
                continue
            dx = offsets.get((label, cot), 0.0)
            xy = [(x + dx, number(r["accuracy_at_1"])) for x, r in points if x > 0]
            # Lines leave from the stage before their first point (for CoT off: its normal run).
            first = points[0][0] if cot == "on" else points[0][0] - 1
            anchor = dict(on).get(first) if cot == "off" else None
            if cot == "on" and points[0][0] == 0:
                xy.insert(0, (0.0, number(points[0][1]["accuracy_at_1"])))
            elif anchor is not None:
                anchor_dx = offsets.get((label, "on"), 0.0) if first > 0 else 0.0
                xy.insert(0, (first + anchor_dx, number(anchor["accuracy_at_1"])))
            starts_at_anchor = len(xy) > len([p for p in points if p[0] > 0])
            (line,) = ax.plot(
                [p[0] for p in xy],
                [p[1] for p in xy],
                color=colour,
                marker=marker,
                linestyle="-" if cot == "on" else "--",
                markerfacecolor=colour if cot == "on" else "white",
                markevery=list(range(1 if starts_at_anchor else 0, len(xy))),
                zorder=3 if cot == "on" else 2,
            )
            handles.setdefault(label if cot == "on" else f"{label} (CoT off)", line)
            drawn = True
            _intervals(ax, [(x + dx, r) for x, r in points if x > 0], colour)
    base = lookup.get((lineage.root, "on"))
    if base is not None and np.isfinite(number(base["accuracy_at_1"])):
        _intervals(ax, [(0.0, base)], "black")
        (point,) = ax.plot(
            [0],
            [number(base["accuracy_at_1"])],
            marker="o",
            color="black",
            linestyle="none",
            zorder=5,
        )
        handles.setdefault(BASE_LABEL, point)
    ax.set_ylim(-0.03, 1.03)
    if not drawn and base is None:
        note(ax)


def _intervals(ax: Axes, points: list[tuple[float, dict[Any, Any]]], colour: str) -> None:
    keep = []
    for x, row in points:
        value = number(row["accuracy_at_1"])
        low = number(row.get("accuracy_at_1_ci_low"))
        high = number(row.get("accuracy_at_1_ci_high"))
        if np.isfinite(low) and np.isfinite(high):
            keep.append((x, value, max(value - low, 0.0), max(high - value, 0.0)))
    if keep:
        ax.errorbar(
            [k[0] for k in keep],
            [k[1] for k in keep],
            yerr=[[k[2] for k in keep], [k[3] for k in keep]],
            fmt="none",
            ecolor=colour,
            elinewidth=0.7,
            capsize=1.5,
            zorder=2.2,
        )


def _pass_panel(
    ax: Axes,
    rows: pl.DataFrame,
    ks: list[int],
    lineage: Lineage,
    handles: dict[str, Artist],
) -> None:
    runs = order_runs(lineage, runs_of(rows))
    lookup = {(str(r["model"]), str(r["cot"])): r for r in records(rows)}
    drawn = False
    for model, cot in runs:
        row = lookup[(model, cot)]
        points = [
            (k, number(row[f"pass_at_{k}"])) for k in ks if np.isfinite(number(row[f"pass_at_{k}"]))
        ]
        if not points:
            continue
        colour, marker = run_colour(lineage, model), run_marker(lineage, model)
        # CoT-off runs: larger hollow markers underneath, so equal curves stay visible.
        (line,) = ax.plot(
            [k for k, _v in points],
            [v for _k, v in points],
            color=colour,
            marker=marker,
            linestyle="-" if cot == "on" else "--",
            markerfacecolor=colour if cot == "on" else "white",
            markersize=4.5 if cot == "on" else 6.5,
            zorder=3 if cot == "on" else 2,
        )
        handles.setdefault(run_label(model, cot), line)
        drawn = True
    if ks:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
    ax.set_xlabel("k (samples)")
    ax.set_ylim(-0.03, 1.03)
    if not drawn:
        note(ax)
