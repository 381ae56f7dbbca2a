"""Decomposition: stacked bars of quality control vs residual narrowing per task and checkpoint.

Reads only the decomposition table (:func:`divtrace.analysis.decomposition.decomposition_table`).
"""

from __future__ import annotations

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
from divtrace.names import PAPER_DECOMPOSITION_TASKS

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

REQUIRED = ("model", "task", "cot", "metric", "reference", "total", "residual", "quality")
TITLE = "Decomposition of the diversity loss"
COMPONENT_COLOURS = {"quality": "#E69F00", "residual": "#0072B2"}  # Okabe-Ito orange, blue
SIZE_NOTE = (
    "Vendi and EAD grow with the number of outputs, so they are never split on whole sets; "
    "Vendi, where shown, is size-matched: all four values of a prompt at one set size k."
)
COMPONENT_LABELS = {
    "quality": "quality control (removal of incorrect outputs)",
    "residual": "residual (narrowing among correct outputs)",
}


def plot_decomposition(
    decomposition: pl.DataFrame | None,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    reference: str = "base",
) -> None:
    """One panel per metric (rows) and verifiable task (columns); one bar per checkpoint run.

    Each bar stacks the quality-control component and the residual (positive parts upwards,
    negative parts downwards from 0); the black diamond is the total loss on the covered prompts
    with its paired 95 % interval, the open circle the total loss on every paired prompt (the
    difference is the part the split cannot attribute). Under each bar, the coverage: prompts
    where both runs have ≥ 2 correct outputs, out of the prompts they share. Bars with no such
    prompt are empty. A negative loss is a gain. The paper's six tasks come first; the others
    are titled as divtrace's extras. Size-dependent metrics (Vendi, EAD) are never split on whole
    sets (see :mod:`divtrace.analysis.decomposition`); the Vendi row, present where the diversity
    step wrote rows at fixed k, is the size-matched split, as a note under the figure says.
    """
    if not has_columns(decomposition, REQUIRED):
        empty_figure(TITLE, "no decomposition table", out_pdf, out_png)
        return
    assert decomposition is not None
    table = decomposition.filter(pl.col("reference") == reference)
    if table.is_empty():
        empty_figure(
            TITLE,
            f"no decomposition rows against the {reference} (no verifiable task with correct "
            "subsets)",
            out_pdf,
            out_png,
        )
        return
    metrics = metric_order(strings(table, "metric"))
    present = task_order(strings(table, "task"))
    tasks = [t for t in PAPER_DECOMPOSITION_TASKS if t in present]
    tasks += [t for t in present if t not in tasks]
    runs = order_runs(lineage, runs_of(table))
    panel_w = max(style.PANEL_WIDTH_IN, 0.42 * len(runs) + 0.8)
    with style.style_context():
        figure = style.new_figure(panel_w * len(tasks) + 0.6, 2.3 * len(metrics) + 0.9)
        axes = figure.subplots(len(metrics), len(tasks), squeeze=False, sharex=True)
        handles: dict[str, Artist] = {}
        for r, metric in enumerate(metrics):
            for c, task in enumerate(tasks):
                ax = axes[r][c]
                panel = table.filter((pl.col("metric") == metric) & (pl.col("task") == task))
                _panel(ax, panel, runs, handles)
                if r == 0:
                    extra = task not in PAPER_DECOMPOSITION_TASKS
                    ax.set_title(
                        f"{task}\n(extra: not in the paper's six)" if extra else task,
                        fontweight="bold",
                    )
                if c == 0:
                    ax.set_ylabel(
                        f"{metric_label(metric)}{' (size-matched)' if metric == 'vendi' else ''}"
                        f" loss vs {reference}\n(D_{reference} − D_checkpoint)"
                    )
        for ax in axes[-1]:
            ax.set_xticks(
                range(len(runs)), [run_label(m, cot) for m, cot in runs], rotation=35, ha="right"
            )
        figure.legend(
            list(handles.values()),
            list(handles),
            loc="outside upper center",
            ncols=min(len(handles), 2) or 1,
            frameon=False,
        )
        figure.text(
            0.01,
            0.005,
            SIZE_NOTE,
            fontsize=6,
            color="0.35",
            ha="left",
            va="bottom",
        )
        style.save_figure(figure, out_pdf, out_png)


def _panel(
    ax: Axes, panel: pl.DataFrame, runs: list[tuple[str, str]], handles: dict[str, Artist]
) -> None:
    ax.axhline(0, color="0.3", linewidth=0.6, zorder=1)
    ax.grid(axis="x", visible=False)
    rows = {(str(r["model"]), str(r["cot"])): r for r in records(panel)}
    drawn = False
    coverage: list[tuple[int, str]] = []
    for x, run in enumerate(runs):
        row = rows.get(run)
        if row is None:
            continue
        n, n_paired = _count(row.get("n_prompts")), _count(row.get("n_prompts_paired"))
        coverage.append((x, f"n={n}/{n_paired}"))
        total = number(row["total"])
        if not np.isfinite(total):
            continue
        drawn = True
        up, down = 0.0, 0.0
        for name in ("quality", "residual"):
            value = number(row[name])
            if not np.isfinite(value):
                continue
            bottom = up if value >= 0 else down
            bars = ax.bar(
                x,
                value,
                bottom=bottom,
                width=0.62,
                color=COMPONENT_COLOURS[name],
                edgecolor="white",
                linewidth=0.5,
                zorder=2,
            )
            handles.setdefault(COMPONENT_LABELS[name], bars.patches[0])
            if value >= 0:
                up += value
            else:
                down += value
        low = number(row.get("total_ci_low"))
        high = number(row.get("total_ci_high"))
        if np.isfinite(low) and np.isfinite(high):
            ax.errorbar(
                x,
                total,
                yerr=[[max(total - low, 0.0)], [max(high - total, 0.0)]],
                fmt="none",
                ecolor="black",
                elinewidth=0.7,
                capsize=2,
                zorder=3,
            )
        (marker,) = ax.plot(x, total, marker="D", color="black", markersize=3.5, zorder=4)
        handles.setdefault("total loss, covered prompts (95% CI)", marker)
        total_all = number(row.get("total_all"))
        if np.isfinite(total_all):
            (ring,) = ax.plot(
                x,
                total_all,
                marker="o",
                markerfacecolor="none",
                markeredgecolor="black",
                markersize=4.5,
                linestyle="none",
                zorder=4,
            )
            handles.setdefault("total loss, all paired prompts", ring)
    ax.set_xlim(-0.6, len(runs) - 0.4)
    if drawn:
        # A strip below the lowest bar or interval for the coverage labels.
        low, high = ax.get_ylim()
        ax.set_ylim(low - 0.14 * (high - low), high)
    else:
        ax.set_yticks([])
        note(ax, "no prompt where both runs\nhave ≥ 2 correct outputs")
    for x, text in coverage:
        ax.annotate(
            text,
            (x, 0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=5.5,
            color="0.35",
        )


def _count(value: object) -> int:
    """A prompt count cell as an int; null, NaN or not a number is 0."""
    try:
        count = number(value)
    except (TypeError, ValueError):
        return 0
    return int(count) if np.isfinite(count) else 0
