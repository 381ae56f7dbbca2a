"""Helpers shared by the figures: run order and colours, empty panels, the no-data figure, and
reading polars tables into plain Python values.

Colours follow the lineage (the order of :meth:`Lineage.lineages`, the same as the trajectory
figure); the base model is black; marker shapes follow the position along the lineage; CoT-off runs
are drawn hollow (and dashed where there is a line).

Tables are polars frames as :func:`divtrace.io.read_table` reads them back: a missing number is
null (or NaN, in a table built in memory), a boolean may be null. :func:`number` and
:func:`floats` turn both into NaN, which is what the drawing code tests for.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from divtrace.analysis.common import lineage_label, lineage_rank, model_cot_label, order_metrics
from divtrace.figures import style
from divtrace.lineage import Lineage
from divtrace.names import ALL_TASKS, STAGE_ORDER

if TYPE_CHECKING:
    from matplotlib.axes import Axes

METRIC_LABELS = {
    "ead": "EAD",
    "sbert": "SBERT",
    "vendi": "Vendi",
    "nli": "NLI",
    "vendi_q0.5": "Vendi (q = 0.5)",
    "vendi_q2": "Vendi (q = 2)",
    "vendi_qinf": "Vendi (q = ∞)",
    "ast_distinct": "AST distinct",
    "ast_pairwise": "AST pairwise",
    "ast_struct_pairwise": "AST structure pairwise",
    "ast_parseable": "parseable code",
    "distinct_answers": "distinct answers",
    "distinct_correct": "distinct correct answers",
    "mode_share": "mode share",
    "behaviours": "distinct behaviours",
    "accuracy_at_1": "accuracy@1",
    "pass_at_1": "pass@1 (mean correctness)",
    "majority_at_k": "majority@K",
}
BASE_COLOUR = "#000000"
NO_DATA = "no data"


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def task_order(tasks: Iterable[str], all_tasks_last: bool = True) -> list[str]:
    """Tasks alphabetically, the all-tasks row last."""
    present = {str(t) for t in tasks}
    ordered = sorted(present - {ALL_TASKS})
    return [*ordered, ALL_TASKS] if all_tasks_last and ALL_TASKS in present else ordered


def metric_order(metrics: Iterable[str]) -> list[str]:
    return order_metrics(str(m) for m in metrics)


def lineage_colours(lineage: Lineage) -> dict[str, str]:
    """Lineage label → colour (index in :meth:`Lineage.lineages`, as the trajectory figure)."""
    colours = {label: style.color(i) for i, label in enumerate(lineage.lineages())}
    return colours


def run_colour(lineage: Lineage, model: str) -> str:
    if model == lineage.root:
        return BASE_COLOUR
    colours = lineage_colours(lineage)
    label = lineage_label(lineage, model)
    return colours.get(label, style.color(len(colours) + sorted(lineage.checkpoints).index(model)))


def run_marker(lineage: Lineage, model: str) -> str:
    return "o" if model == lineage.root else style.marker(lineage.depth(model) - 1)


def run_label(model: str, cot: str) -> str:
    """How figures name a run: the checkpoint, with " (CoT off)" for CoT-off runs."""
    return model_cot_label(model, cot)


def order_runs(lineage: Lineage, runs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(model, cot) pairs: base first, then by lineage, depth, model, CoT on before off."""
    ranks = lineage_rank(lineage)
    unique = {(str(m), str(c)) for m, c in runs}

    def key(run: tuple[str, str]) -> tuple[int, str, int, str, int]:
        model, cot = run
        label = lineage_label(lineage, model) if model in lineage.checkpoints else model
        depth = lineage.depth(model) if model in lineage.checkpoints else 99
        return (ranks.get(label, len(ranks)), label, depth, model, 0 if cot == "on" else 1)

    return sorted(unique, key=key)


def stage_ticks(paths: dict[str, list[str]], lineage: Lineage) -> list[str]:
    """x tick labels of lineage plots: at each position along the paths (base = 0), the distinct
    stage labels of the checkpoints there, one per line (e.g. ``"sft\nrlzero"``)."""
    width = max((len(path) for path in paths.values()), default=0)
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


def stage_colours(stages: Sequence[str]) -> dict[str, str]:
    """Stage label → colour: conventional stages (SFT, DPO, RL, RL-Zero) first, in that order."""
    known = [s for s in STAGE_ORDER if s != "base"]
    ordered = [s for s in known if s in stages] + sorted(set(stages) - set(known))
    # Skip black (reserved for the base model) and yellow (too light for thin segments).
    palette = [c for c in style.OKABE_ITO if c not in ("#000000", "#F0E442")]
    return {s: palette[i % len(palette)] for i, s in enumerate(ordered)}


def note(ax: Axes, text: str = NO_DATA) -> None:
    """A grey note in the middle of an (empty) panel."""
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="0.45",
        fontsize=7,
        wrap=True,
    )


def has_columns(table: pl.DataFrame | None, columns: Sequence[str]) -> bool:
    return table is not None and all(c in table.columns for c in columns)


# --------------------------------------------------------------------------- reading tables
def number(value: Any) -> float:
    """A table cell as a float; null (``None``) is NaN."""
    return math.nan if value is None else float(value)


def flag(value: Any) -> bool:
    """A boolean table cell; null (``None``) or NaN is False."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)


def floats(table: pl.DataFrame, column: str) -> np.ndarray:
    """A column as a float array, nulls as NaN (for the drawing code, which tests for NaN)."""
    series = table.get_column(column).cast(pl.Float64).fill_null(math.nan)
    return np.asarray(series.to_numpy(), dtype=float)


def strings(table: pl.DataFrame, column: str) -> list[str]:
    """A column's values as strings, in row order."""
    return [str(value) for value in table.get_column(column).to_list()]


def records(table: pl.DataFrame) -> list[dict[str, Any]]:
    """The rows as dicts, in row order (read numbers with :func:`number`: nulls are ``None``)."""
    return table.to_dicts()


def runs_of(table: pl.DataFrame) -> list[tuple[str, str]]:
    """The ``(model, cot)`` pair of every row."""
    return list(zip(strings(table, "model"), strings(table, "cot"), strict=True))


def empty_figure(
    title: str, message: str, out_pdf: str | os.PathLike[str], out_png: str | os.PathLike[str]
) -> None:
    """A one-panel figure saying why there is nothing to draw (never fails on empty tables)."""
    with style.style_context():
        figure = style.new_figure(style.PANEL_WIDTH_IN * 1.6, style.PANEL_HEIGHT_IN)
        ax = figure.subplots()
        ax.set_axis_off()
        ax.set_title(title, fontweight="bold")
        note(ax, message)
        style.save_figure(figure, out_pdf, out_png)
