"""The quality-by-stage figure's judge panels (the paper's Figure 4, bottom), drawn from a judge
table built from hand-made judgements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from divtrace.analysis.judge import judge_table
from divtrace.analysis.quality import quality_table
from divtrace.figures import draw_figures
from divtrace.figures.quality import plot_quality_by_stage
from tests.test_figures import STUDY, _check_written, capture, synthetic_study
from tests.test_judge_tables import frame, pairwise_rows, ranking_rows, wildbench_rows

#: Win probability of each checkpoint against the reference (tldr); CoT off a little lower.
WIN = {
    "base": 0.2,
    "instruct-sft": 0.5,
    "instruct-dpo": 0.6,
    "instruct-rl": 0.7,
    "think-sft": 0.4,
    "think-dpo": 0.45,
    "think-rl": 0.55,
    "rlzero": 0.3,
}


@pytest.fixture(autouse=True)
def low_resolution(monkeypatch):
    from divtrace.figures import style

    monkeypatch.setattr(style, "DPI", 40)


def judgements() -> pl.DataFrame:
    rng = np.random.default_rng(1)
    rows: list[dict] = []
    for model, spec in STUDY.items():
        for cot in ("on", "off") if spec.get("reasoning") else ("on",):
            p = WIN[model] - (0.1 if cot == "off" else 0.0)
            verdicts = ["win" if rng.random() < p else "loss" for _ in range(10)]
            tldr = ranking_rows(model, verdicts)
            wb = wildbench_rows(model, [float(rng.integers(3, 9)) for _ in range(10)])
            cells = tldr + wb
            if model != "base":  # the base is the opponent of the pairwise protocol
                labels = ["[[A>B]]" if rng.random() < p else "[[B>A]]" for _ in range(10)]
                flipped = ["[[B>A]]" if label == "[[A>B]]" else "[[A>B]]" for label in labels]
                cells += pairwise_rows(model, list(zip(labels, flipped, strict=True)))
            rows += [{**r, "cot": cot} for r in cells]
    return frame(rows)


@pytest.fixture(scope="module")
def tables():
    _diversity, quality, lineage = synthetic_study(n_prompts=6, k=4, tasks=("gsm8k",))
    return (
        quality_table(quality, lineage, n_boot=50),
        judge_table(judgements(), lineage, n_boot=50),
        lineage,
    )


def judge_panels(figure) -> dict[str, object]:
    return {ax.get_title(): ax for ax in figure.axes if ax.get_title().endswith("(judge)")}


def plotted(ax) -> set[float]:
    """Every y value drawn as a line point (error-bar caps left out)."""
    return {
        round(float(y), 9)
        for line in ax.get_lines()
        if line.get_marker() not in ("_", "None", None, "")
        for y in line.get_ydata()
    }


def test_the_figure_gains_a_judge_panel_per_judged_task(monkeypatch, tmp_path: Path, tables):
    quality, judge, lineage = tables
    saved = capture(monkeypatch)
    draw_figures({"quality": quality, "judge": judge}, lineage, tmp_path, ("quality_by_stage",))
    _check_written(tmp_path, ("quality_by_stage",))
    figure = saved[0]
    panels = judge_panels(figure)
    assert list(panels) == ["tldr (judge)", "wildbench (judge)", "writingprompts (judge)"]
    assert "gsm8k" in [ax.get_title() for ax in figure.axes]  # the top rows are still there
    for task, ax in zip(("tldr", "wildbench", "writingprompts"), panels.values(), strict=True):
        values = {round(v, 9) for v in judge.filter(task=task).get_column("value").to_list()}
        assert plotted(ax) == values, task  # each point a table value, each value a point
    assert panels["wildbench (judge)"].get_ylabel() == "WB-Score"
    assert panels["tldr (judge)"].get_ylabel() == "LLM-judge win rate"
    # CoT off as in the top row: dashed, hollow markers, leaving from the CoT-on parent.
    tldr = panels["tldr (judge)"]
    dashed = [line for line in tldr.get_lines() if line.get_linestyle() == "--"]
    assert dashed and all(line.get_markerfacecolor() == "white" for line in dashed)
    think_off = judge.filter(task="tldr", cot="off", model="think-sft")["value"][0]
    base_on = judge.filter(task="tldr", model="base")["value"][0]
    assert any(
        round(float(line.get_ydata()[0]), 9) == round(base_on, 9)
        and round(float(line.get_ydata()[1]), 9) == round(think_off, 9)
        for line in dashed
    )
    # Intervals are drawn (one error-bar segment per point with bounds).
    segments = sum(len(c.get_segments()) for c in tldr.collections)
    assert segments == len(judge.filter(task="tldr")) == 12


def test_judge_panels_alone_and_none_without_a_judge_table(monkeypatch, tmp_path: Path, tables):
    quality, judge, lineage = tables
    saved = capture(monkeypatch)
    plot_quality_by_stage(None, lineage, tmp_path / "a.pdf", tmp_path / "a.png", judge=judge)
    plot_quality_by_stage(quality, lineage, tmp_path / "b.pdf", tmp_path / "b.png")
    empty = judge.clear()
    plot_quality_by_stage(quality, lineage, tmp_path / "c.pdf", tmp_path / "c.png", judge=empty)
    alone, without, empty_judge = saved
    assert len(judge_panels(alone)) == 3
    assert not any(ax.get_title() == "gsm8k" for ax in alone.axes)
    assert judge_panels(without) == {} and judge_panels(empty_judge) == {}
    assert [ax.get_title() for ax in without.axes if ax.get_title()] == [
        ax.get_title() for ax in empty_judge.axes if ax.get_title()
    ]
