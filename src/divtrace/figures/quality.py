"""Quality per stage: accuracy@1 along each lineage, pass@k curves per checkpoint, and the LLM
judge's win rates (the paper's Figure 4: top the verifiable tasks, bottom the judged ones).

Reads the quality table (:func:`divtrace.analysis.quality.quality_table`; the plain
:func:`divtrace.quality.metrics.quality_summary` works too, without intervals) and, where there
is one, the judge table (:func:`divtrace.analysis.judge.judge_table`).
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
JUDGE_REQUIRED = ("model", "task", "cot", "measure", "value")
TITLE = "Quality per stage"
#: y label and limits of a judge panel, by the judge table's measure.
JUDGE_AXES = {
    "win_rate": ("LLM-judge win rate", (-0.03, 1.03)),
    "wb_score": ("WB-Score", (-10.5, 10.5)),
}
PASS = re.compile(r"^pass_at_(\d+)$")
DODGE = 0.06


def plot_quality_by_stage(
    quality: pl.DataFrame | None,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    judge: pl.DataFrame | None = None,
) -> None:
    """Top row: accuracy@1 by position along each lineage (one line per lineage, dashed hollow
    for CoT off, 95 % bootstrap intervals where the table has them), one panel per task.
    Middle row: pass@k against k (log scale) for every checkpoint run, one panel per task.
    Bottom row (where ``judge`` has values): the judge's win rate (or WB-Score) by position along
    each lineage, one panel per judged task, drawn as the top row (CoT off dashed and hollow,
    leaving from its CoT-on parent), with the tie level (0.5, or 0) dotted."""
    table = (
        quality.filter(pl.col("model").is_in(list(lineage.checkpoints)))
        if has_columns(quality, REQUIRED) and quality is not None
        else None
    )
    judged = (
        judge.filter(
            pl.col("model").is_in(list(lineage.checkpoints)) & pl.col("value").is_not_null()
        )
        if has_columns(judge, JUDGE_REQUIRED) and judge is not None
        else None
    )
    if judged is not None and judged.is_empty():
        judged = None
    if table is None and judged is None:
        empty_figure(TITLE, "no quality table (no verifiable task)", out_pdf, out_png)
        return
    if table is not None and table.is_empty():
        if judged is None:
            empty_figure(TITLE, "no quality rows", out_pdf, out_png)
            return
        table = None
    tasks = task_order(strings(table, "task")) if table is not None else []
    judge_tasks = task_order(strings(judged, "task")) if judged is not None else []
    frames = [t for t in (table, judged) if t is not None]
    models = {m for t in frames for m in strings(t, "model")}
    paths = {
        label: path
        for label, path in lineage.lineages().items()
        if any(model in models for model in path[1:])
    } or lineage.lineages()
    width = max(len(p) for p in paths.values())
    ticks = stage_ticks(paths, lineage)
    rows = (2 if table is not None else 0) + (1 if judged is not None else 0)
    ratios = ([1, 1.1] if table is not None else []) + ([1] if judged is not None else [])
    with style.style_context():
        figure = style.new_figure(
            style.PANEL_WIDTH_IN * max(len(tasks), len(judge_tasks)) + 0.4, rows * 2.1 + 1.2
        )
        halves = iter(figure.subfigures(rows, 1, height_ratios=ratios, squeeze=False)[:, 0])
        line_handles: dict[str, Artist] = {}
        if table is not None:
            ks = sorted(
                int(match.group(1))
                for column in table.columns
                if (match := PASS.match(str(column))) and not np.isnan(floats(table, column)).all()
            )
            offsets = _series_offsets(table, paths)
            top, bottom = next(halves), next(halves)
            top_axes = top.subplots(1, len(tasks), squeeze=False, sharey=True)[0]
            bottom_axes = bottom.subplots(1, len(tasks), squeeze=False, sharey=True)[0]
            run_handles: dict[str, Artist] = {}
            for ax, task in zip(top_axes, tasks, strict=True):
                rows_ = table.filter(pl.col("task") == task)
                _stage_panel(ax, rows_, paths, offsets, lineage, line_handles)
                ax.set_title(task, fontweight="bold")
                ax.set_xticks(range(width), ticks)
                ax.set_xlim(-0.3, width - 0.7)
            top_axes[0].set_ylabel("accuracy@1")
            for ax, task in zip(bottom_axes, tasks, strict=True):
                _pass_panel(ax, table.filter(pl.col("task") == task), ks, lineage, run_handles)
            bottom_axes[0].set_ylabel("pass@k")
            bottom.legend(
                list(run_handles.values()),
                list(run_handles),
                loc="outside lower center",
                ncols=min(len(run_handles), 4) or 1,
                frameon=False,
            )
            legend_at = top
        if judged is not None:
            judge_row = next(halves)
            offsets = _series_offsets(judged, paths)
            judge_axes = judge_row.subplots(1, len(judge_tasks), squeeze=False)[0]
            for ax, task in zip(judge_axes, judge_tasks, strict=True):
                rows_ = judged.filter(pl.col("task") == task)
                measure = str(rows_.get_column("measure")[0])
                label, ylim = JUDGE_AXES.get(measure, (measure, (-0.03, 1.03)))
                _stage_panel(
                    ax, rows_, paths, offsets, lineage, line_handles, value="value", ylim=ylim
                )
                ax.axhline(
                    0.5 if measure == "win_rate" else 0.0,
                    color="grey",
                    linestyle=":",
                    linewidth=0.8,
                    zorder=1,
                )
                ax.set_title(f"{task} (judge)", fontweight="bold")
                ax.set_ylabel(label)
                ax.set_xticks(range(width), ticks)
                ax.set_xlim(-0.3, width - 0.7)
            if table is None:
                legend_at = judge_row
        ordered = sorted(line_handles, key=lambda name: name != BASE_LABEL)
        legend_at.legend(
            [line_handles[name] for name in ordered],
            ordered,
            loc="outside upper center",
            ncols=min(len(line_handles), 6) or 1,
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
    value: str = "accuracy_at_1",
    ylim: tuple[float, float] = (-0.03, 1.03),
) -> None:
    """One task's ``value`` along each lineage (accuracy@1, or the judge's win rate)."""
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
            if (m, "on") in lookup and np.isfinite(number(lookup[(m, "on")][value]))
        ]
        off = [
            (x, lookup[(m, "off")])
            for x, m in enumerate(path)
            if x > 0 and (m, "off") in lookup and np.isfinite(number(lookup[(m, "off")][value]))
        ]
        for cot, points in (("on", on), ("off", off)):
            if not points or (cot == "on" and all(x == 0 for x, _r in points)):
                continue
            dx = offsets.get((label, cot), 0.0)
            xy = [(x + dx, number(r[value])) for x, r in points if x > 0]
            # Lines leave from the stage before their first point (for CoT off: its normal run).
            first = points[0][0] if cot == "on" else points[0][0] - 1
            anchor = dict(on).get(first) if cot == "off" else None
            if cot == "on" and points[0][0] == 0:
                xy.insert(0, (0.0, number(points[0][1][value])))
            elif anchor is not None:
                anchor_dx = offsets.get((label, "on"), 0.0) if first > 0 else 0.0
                xy.insert(0, (first + anchor_dx, number(anchor[value])))
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
            _intervals(ax, [(x + dx, r) for x, r in points if x > 0], colour, value)
    base = lookup.get((lineage.root, "on"))
    if base is not None and np.isfinite(number(base[value])):
        _intervals(ax, [(0.0, base)], "black", value)
        (point,) = ax.plot(
            [0],
            [number(base[value])],
            marker="o",
            color="black",
            linestyle="none",
            zorder=5,
        )
        handles.setdefault(BASE_LABEL, point)
    ax.set_ylim(*ylim)
    if not drawn and base is None:
        note(ax)


def _intervals(
    ax: Axes,
    points: list[tuple[float, dict[Any, Any]]],
    colour: str,
    column: str = "accuracy_at_1",
) -> None:
    keep = []
    for x, row in points:
        value = number(row[column])
        low = number(row.get(f"{column}_ci_low"))
        high = number(row.get(f"{column}_ci_high"))
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
