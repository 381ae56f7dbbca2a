"""Every figure from synthetic tables (a deep, branching lineage) and from degenerate ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from divtrace.analysis import build_tables
from divtrace.figures import FIGURE_NAMES, draw_figures
from divtrace.lineage import Lineage

PNG = b"\x89PNG\r\n\x1a\n"

STUDY = {
    "base": {"stage": "base"},
    "instruct-sft": {"parent": "base", "stage": "sft", "lineage": "instruct"},
    "instruct-dpo": {"parent": "instruct-sft", "stage": "dpo"},
    "instruct-rl": {"parent": "instruct-dpo", "stage": "rl"},
    "think-sft": {"parent": "base", "stage": "sft", "lineage": "think", "reasoning": True},
    "think-dpo": {"parent": "think-sft", "stage": "dpo", "reasoning": True},
    "think-rl": {"parent": "think-dpo", "stage": "rl", "reasoning": True},
    "rlzero": {"parent": "base", "stage": "rlzero", "lineage": "rlzero", "reasoning": True},
}
# Mean diversity (as a fraction of a metric's base level) and accuracy of each checkpoint.
LEVEL = {
    "base": (1.0, 0.3),
    "instruct-sft": (0.8, 0.5),
    "instruct-dpo": (0.65, 0.55),
    "instruct-rl": (0.6, 0.7),
    "think-sft": (0.7, 0.6),
    "think-dpo": (0.72, 0.62),
    "think-rl": (0.5, 0.8),
    "rlzero": (0.55, 0.65),
}
METRIC_BASE = {"ead": 0.8, "sbert": 0.5, "vendi": 3.0}
TASKS = ("gsm8k", "math", "writing")
VERIFIABLE = ("gsm8k", "math")


def synthetic_study(
    n_prompts: int = 12, k: int = 8, seed: int = 0, tasks: tuple[str, ...] = TASKS
) -> tuple[pd.DataFrame, pd.DataFrame, Lineage]:
    """Diversity and quality contracts for :data:`STUDY` (CoT off runs for reasoning models)."""
    rng = np.random.default_rng(seed)
    lineage = Lineage.from_models(STUDY)
    diversity, quality = [], []
    for model, spec in STUDY.items():
        level, accuracy = LEVEL[model]
        for cot in ("on", "off") if spec.get("reasoning") else ("on",):
            shift = 0.15 if cot == "off" else 0.0
            for task in tasks:
                for i in range(n_prompts):
                    prompt = f"{task}/{i}"
                    correct = rng.random(k) < (accuracy - shift / 2)
                    if task in VERIFIABLE:
                        for j in range(k):
                            quality.append(
                                dict(
                                    model=model,
                                    task=task,
                                    cot=cot,
                                    prompt_id=prompt,
                                    sample=j,
                                    correct=bool(correct[j]),
                                    score=float(correct[j]),
                                    extracted="a" if correct[j] else f"b{rng.integers(3)}",
                                    detail=None,
                                )
                            )
                    for metric, base in METRIC_BASE.items():
                        value = base * (level + shift) * (1 + 0.1 * rng.standard_normal())
                        diversity.append(
                            dict(
                                model=model,
                                task=task,
                                cot=cot,
                                scope="per_input",
                                subset="all",
                                prompt_id=prompt,
                                metric=metric,
                                value=value,
                                n_outputs=k,
                            )
                        )
                        if task in VERIFIABLE and correct.sum() >= 2:
                            diversity.append(
                                dict(
                                    model=model,
                                    task=task,
                                    cot=cot,
                                    scope="per_input",
                                    subset="correct",
                                    prompt_id=prompt,
                                    metric=metric,
                                    value=value * 0.85,
                                    n_outputs=int(correct.sum()),
                                )
                            )
                for metric, base in METRIC_BASE.items():
                    diversity.append(
                        dict(
                            model=model,
                            task=task,
                            cot=cot,
                            scope="across_input",
                            subset="all",
                            prompt_id=None,
                            metric=metric,
                            value=base * (level + 0.2),
                            n_outputs=n_prompts,
                        )
                    )
    return pd.DataFrame(diversity), pd.DataFrame(quality), lineage


@pytest.fixture(autouse=True)
def low_resolution(monkeypatch):
    """PNGs at 40 dpi: the same drawing code, a fraction of the time."""
    from divtrace.figures import style

    monkeypatch.setattr(style, "DPI", 40)


@pytest.fixture(scope="module")
def study_tables() -> tuple[dict[str, pd.DataFrame], Lineage]:
    diversity, quality, lineage = synthetic_study(n_prompts=6, k=4, tasks=("gsm8k", "writing"))
    return build_tables(diversity, quality, lineage, n_boot=50, seed=0), lineage


def _check_written(out: Path, names: tuple[str, ...] = FIGURE_NAMES) -> None:
    expected = sorted(f"{name}.{suffix}" for name in names for suffix in ("pdf", "png"))
    assert sorted(p.name for p in out.iterdir()) == expected
    for name in names:
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert (out / f"{name}.png").read_bytes().startswith(PNG)


def test_draw_every_figure(study_tables, tmp_path: Path):
    tables, lineage = study_tables
    written = draw_figures(tables, lineage, tmp_path / "figures")
    assert len(written) == 2 * len(FIGURE_NAMES)
    _check_written(tmp_path / "figures")


def test_figures_are_reproducible(study_tables, tmp_path: Path):
    tables, lineage = study_tables
    names = ("retention_heatmap",)
    draw_figures(tables, lineage, tmp_path / "a", names=names)
    draw_figures(tables, lineage, tmp_path / "b", names=names)
    for name in names:
        assert (tmp_path / "a" / f"{name}.pdf").read_bytes() == (
            tmp_path / "b" / f"{name}.pdf"
        ).read_bytes()


def test_missing_and_empty_tables_give_no_data_figures(study_tables, tmp_path: Path):
    tables, lineage = study_tables
    draw_figures({}, lineage, tmp_path / "none")
    _check_written(tmp_path / "none")
    empty = {name: table.iloc[:0] for name, table in tables.items()}
    draw_figures(empty, lineage, tmp_path / "empty")
    _check_written(tmp_path / "empty")


def test_degenerate_tables_with_nan_and_few_rows(study_tables, tmp_path: Path):
    tables, lineage = study_tables
    degenerate = {}
    for name, table in tables.items():
        table = table.copy()
        numeric = table.select_dtypes("number").columns
        # Half the numbers missing, and only a few rows left.
        table.loc[table.index[::2], [c for c in numeric if c != "depth"]] = np.nan
        degenerate[name] = table.head(7)
    draw_figures(degenerate, lineage, tmp_path / "figures")
    _check_written(tmp_path / "figures")


def test_tables_read_back_from_files_draw_too(study_tables, tmp_path: Path):
    from divtrace.analysis import read_tables, write_tables

    tables, lineage = study_tables
    write_tables(tables, tmp_path / "tables", metadata={"seed": 0})
    back = read_tables(tmp_path / "tables")
    assert set(back) == set(tables)
    draw_figures(back, lineage, tmp_path / "figures", names=("cot_on_off", "decomposition"))
    _check_written(tmp_path / "figures", ("cot_on_off", "decomposition"))


def test_unknown_figure_name_is_named(study_tables, tmp_path: Path):
    tables, lineage = study_tables
    with pytest.raises(ValueError, match="nope"):
        draw_figures(tables, lineage, tmp_path, names=("nope",))


def test_stage_segments_stack_losses_right_and_gains_left():
    from divtrace.figures.stages import stage_segments

    segments, net = stage_segments(np.array([0.2, -0.1, 0.05, np.nan, -0.05]), 0.5)
    assert segments == [
        (0, 0.0, pytest.approx(0.4)),
        (1, 0.0, pytest.approx(-0.2)),
        (2, pytest.approx(0.4), pytest.approx(0.1)),
        (4, pytest.approx(-0.2), pytest.approx(-0.1)),
    ]
    assert net == pytest.approx(0.2)
    # A near-zero net change keeps every segment on the base scale (shares would explode).
    segments, net = stage_segments(np.array([0.16, -0.159]), 1.0)
    assert [w for _, _, w in segments] == [pytest.approx(0.16), pytest.approx(-0.159)]
    assert net == pytest.approx(0.001)
    assert stage_segments(np.array([0.1]), 0.0) == ([], pytest.approx(float("nan"), nan_ok=True))
    assert stage_segments(np.array([np.nan]), 1.0)[0] == []
