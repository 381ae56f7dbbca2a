"""CoT on vs off: paired points per task for each reasoning checkpoint, diversity and accuracy.

Reads only the CoT table (:func:`divtrace.analysis.cot.cot_table`). Each pair carries the
table's ``verdict``: a glyph right of the pair says whether the runs are equivalent (TOST: the
90 % interval of on − off inside ±δ), different (the 95 % interval excludes 0, equivalence not
shown) or undecided (neither); pairs without a verdict (no interval) get no glyph.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from divtrace.figures import style
from divtrace.figures.common import (
    empty_figure,
    flag,
    has_columns,
    metric_label,
    metric_order,
    note,
    number,
    order_runs,
    records,
    run_colour,
    run_marker,
    strings,
    task_order,
)
from divtrace.lineage import Lineage

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REQUIRED = ("model", "task", "kind", "scope", "subset", "metric", "value_on", "value_off")
TITLE = "CoT on vs off"
QUALITY_METRIC = "pass_at_1"
FALLBACK_QUALITY_METRIC = "accuracy_at_1"
#: The glyph drawn right of a pair for each ``verdict`` and its legend text.
VERDICT_GLYPHS = {"equivalent": "=", "different": "≠", "undecided": "?"}
VERDICT_LABELS = {
    "equivalent": "equivalent (90% CI of on − off within ±δ)",
    "different": "different (95% CI excludes 0)",
    "undecided": "undecided (neither shown)",
}
VERDICT_COLOUR = "0.2"


def plot_cot_on_off(
    cot: pl.DataFrame | None,
    lineage: Lineage,
    out_pdf: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    scope: str = "per_input",
    subset: str = "all",
) -> None:
    """One panel per diversity metric and one for accuracy (pass@1, the mean correctness).

    Tasks are rows; each reasoning checkpoint is a pair of points, filled = CoT on, hollow = CoT
    off, joined by a solid line where the paired 95 % interval of the difference excludes 0 and a
    dotted line where it does not. The glyph right of each pair is its verdict
    (:data:`VERDICT_GLYPHS`: ``=`` equivalent, ``≠`` different, ``?`` undecided), explained in the
    legend; tables without a ``verdict`` column draw no glyphs.
    """
    if not has_columns(cot, REQUIRED):
        empty_figure(TITLE, "no CoT table", out_pdf, out_png)
        return
    assert cot is not None
    diversity = cot.filter(
        (pl.col("kind") == "diversity") & (pl.col("scope") == scope) & (pl.col("subset") == subset)
    )
    quality = cot.filter(pl.col("kind") == "quality")
    quality_metric = (
        QUALITY_METRIC if QUALITY_METRIC in strings(quality, "metric") else FALLBACK_QUALITY_METRIC
    )
    quality = quality.filter(pl.col("metric") == quality_metric)
    if diversity.is_empty() and quality.is_empty():
        empty_figure(TITLE, "no reasoning checkpoint with runs in both CoT modes", out_pdf, out_png)
        return
    panels = [("diversity", m) for m in metric_order(strings(diversity, "metric"))]
    panels.append(("quality", quality_metric))
    both = pl.concat([diversity, quality])
    tasks = task_order(strings(both, "task"))
    models = [m for m, _c in order_runs(lineage, ((m, "on") for m in strings(both, "model")))]
    step = 0.7 / max(len(models), 1)
    offsets = {m: (i - (len(models) - 1) / 2) * step for i, m in enumerate(models)}
    with style.style_context():
        figure = style.new_figure(
            style.PANEL_WIDTH_IN * len(panels) + 0.8, max(1.6, 0.42 * len(tasks) + 1.0)
        )
        axes = figure.subplots(1, len(panels), squeeze=False, sharey=True)[0]
        handles: dict[str, Artist] = {}
        verdicts: set[str] = set()
        for ax, (kind, metric) in zip(axes, panels, strict=True):
            rows = diversity if kind == "diversity" else quality
            rows = rows.filter(pl.col("metric") == metric)
            verdicts |= _panel(ax, rows, tasks, offsets, lineage, handles)
            title = metric_label(metric)
            ax.set_title(title if kind == "diversity" else "accuracy", fontweight="bold")
            if kind == "quality":
                ax.set_xlabel(title)
        axes[0].set_yticks(range(len(tasks)), tasks)
        axes[0].set_ylim(len(tasks) - 0.5, -0.5)
        xlabel = (
            f"diversity ({scope.replace('_', ' ')}, {subset} outputs) or accuracy; "
            "solid line: 95% CI of on − off excludes 0" + _margin_note(both)
        )
        _legend(figure, handles, [v for v in VERDICT_GLYPHS if v in verdicts], xlabel)
        style.save_figure(figure, out_pdf, out_png)


def _panel(
    ax: Axes,
    rows: pl.DataFrame,
    tasks: list[str],
    offsets: dict[str, float],
    lineage: Lineage,
    handles: dict[str, Artist],
) -> set[str]:
    """Draw one panel; return the verdicts it shows."""
    ax.grid(axis="y", visible=False)
    drawn = False
    verdicts: set[str] = set()
    for record in records(rows):
        model, task = str(record["model"]), str(record["task"])
        if task not in tasks or model not in offsets:
            continue
        on, off = number(record["value_on"]), number(record["value_off"])
        y = tasks.index(task) + offsets[model]
        colour, marker = run_colour(lineage, model), run_marker(lineage, model)
        solid = flag(record.get("significant"))
        if np.isfinite(on) and np.isfinite(off):
            ax.plot(
                [off, on],
                [y, y],
                color=colour,
                linewidth=1.2 if solid else 0.8,
                linestyle="-" if solid else ":",
                zorder=2,
            )
        # The hollow CoT-off marker is larger and underneath, so equal values show as a ringed dot.
        if np.isfinite(off):
            ax.plot(
                off,
                y,
                marker=marker,
                color=colour,
                markerfacecolor="white",
                markersize=6.5,
                linestyle="none",
                zorder=3,
            )
            drawn = True
        if np.isfinite(on):
            (point,) = ax.plot(on, y, marker=marker, color=colour, linestyle="none", zorder=4)
            handles.setdefault(model, point)
            drawn = True
        verdict = record.get("verdict")
        ends = [v for v in (on, off) if np.isfinite(v)]
        if verdict in VERDICT_GLYPHS and ends:
            ax.annotate(
                VERDICT_GLYPHS[str(verdict)],
                (max(ends), y),
                xytext=(5, 0),
                textcoords="offset points",
                ha="left",
                va="center",
                fontsize=7,
                fontweight="bold",
                color=VERDICT_COLOUR,
                zorder=5,
            )
            verdicts.add(str(verdict))
    if not drawn:
        note(ax)
    return verdicts


def _margin_note(table: pl.DataFrame) -> str:
    """The axis note on the margin, ``"; equivalence margin δ = 5% of CoT on"``, when every row
    with a margin has the same fraction ``margin / |value_on|`` (as one ``cot_table`` call gives);
    empty otherwise."""
    if "margin" not in table.columns:
        return ""
    fractions = set()
    for record in records(table):
        margin, on = number(record.get("margin")), abs(number(record["value_on"]))
        if np.isfinite(margin) and np.isfinite(on) and on > 0:
            fractions.add(round(margin / on, 6))
    if len(fractions) != 1:
        return ""
    return f"; equivalence margin δ = {100 * fractions.pop():g}% of CoT on"


def _legend(figure: Figure, handles: dict[str, Artist], verdicts: list[str], xlabel: str) -> None:
    """Runs and CoT modes above the panels; below them ``xlabel`` and, where the panels show
    verdicts, their glyphs (a legend titled ``xlabel``: a supxlabel would collide with it)."""
    from matplotlib.lines import Line2D

    entries = list(handles.items())
    entries.append(("CoT on", Line2D([], [], marker="o", color="0.3", linestyle="none")))
    entries.append(
        (
            "CoT off",
            Line2D([], [], marker="o", color="0.3", markerfacecolor="white", linestyle="none"),
        )
    )
    figure.legend(
        [h for _l, h in entries],
        [label for label, _h in entries],
        loc="outside upper center",
        ncols=min(len(entries), 6),
        frameon=False,
    )
    if not verdicts:
        figure.supxlabel(xlabel)
    else:
        # The glyphs are the keys: text entries without a handle, in a legend of their own.
        figure.legend(
            [Line2D([], [], linestyle="none") for _v in verdicts],
            [f"{VERDICT_GLYPHS[v]}  {VERDICT_LABELS[v]}" for v in verdicts],
            loc="outside lower center",
            ncols=len(verdicts),
            frameon=False,
            handlelength=0,
            handletextpad=0,
            columnspacing=2.0,
            title=xlabel,
            title_fontsize="medium",
        )
