"""Helpers shared by the figures: run order and colours, empty panels, the no-data figure.

Colours follow the lineage (the order of :meth:`Lineage.lineages`, the same as the trajectory
figure); the base model is black; marker shapes follow the position along the lineage; CoT-off runs
are drawn hollow (and dashed where there is a line).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from divtrace.analysis.aggregate import lineage_label, lineage_rank
from divtrace.analysis.common import ALL_TASKS, order_metrics
from divtrace.figures import style
from divtrace.lineage import STAGE_ORDER, Lineage

if TYPE_CHECKING:
    from matplotlib.axes import Axes

METRIC_LABELS = {
    "ead": "EAD",
    "sbert": "SBERT",
    "vendi": "Vendi",
    "nli": "NLI",
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
    return model if cot == "on" else f"{model} (CoT off)"


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


def has_columns(table: pd.DataFrame | None, columns: Sequence[str]) -> bool:
    return table is not None and all(c in table.columns for c in columns)


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
