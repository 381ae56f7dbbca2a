"""Every figure from synthetic tables (a deep, branching lineage) and from degenerate ones."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import polars.selectors as cs
import pytest

from divtrace.analysis import build_tables
from divtrace.errors import AnalysisError
from divtrace.figures import FIGURE_NAMES, FIGURES, draw_figures
from divtrace.lineage import Lineage
from divtrace.names import FIGURE_TABLES

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
) -> tuple[pl.DataFrame, pl.DataFrame, Lineage]:
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
    return (
        pl.from_dicts(diversity, infer_schema_length=None),
        pl.from_dicts(quality, infer_schema_length=None),
        lineage,
    )


@pytest.fixture(autouse=True)
def low_resolution(monkeypatch):
    """PNGs at 40 dpi: the same drawing code, a fraction of the time."""
    from divtrace.figures import style

    monkeypatch.setattr(style, "DPI", 40)


def with_new_measures(diversity: pl.DataFrame) -> pl.DataFrame:
    """``diversity`` plus the rows of issue 17: Vendi at set sizes 2 and 4 (a ``k`` column,
    null on the whole-set rows) and ``distinct_answers`` for the verifiable tasks."""
    vendi = diversity.filter((pl.col("scope") == "per_input") & (pl.col("metric") == "vendi"))
    at_k = pl.concat(
        [
            vendi.with_columns(k=pl.lit(k), value=pl.col("value") * f)
            for k, f in ((2, 0.6), (4, 0.9))
        ]
    )
    classes = vendi.filter(pl.col("task").is_in(VERIFIABLE) & (pl.col("subset") == "all"))
    classes = classes.with_columns(metric=pl.lit("distinct_answers"), value=pl.col("value") + 1)
    whole = pl.concat([diversity, classes]).with_columns(k=pl.lit(None, dtype=pl.Int32))
    return pl.concat([whole, at_k.with_columns(pl.col("k").cast(pl.Int32))])


@pytest.fixture(scope="module")
def study_tables() -> tuple[dict[str, pl.DataFrame], Lineage]:
    diversity, quality, lineage = synthetic_study(n_prompts=6, k=4, tasks=("gsm8k", "writing"))
    diversity = with_new_measures(diversity)
    return build_tables(diversity, quality, lineage, n_boot=50, seed=0), lineage


def _draw_all(tables: dict[str, pl.DataFrame], lineage: Lineage, out: Path) -> dict[str, bytes]:
    """Every figure drawn from ``tables`` into ``out`` at the test resolution, checked: its files."""
    from divtrace.figures import style

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(style, "DPI", 40)
        written = draw_figures(tables, lineage, out)
    assert len(written) == 2 * len(FIGURE_NAMES)
    _check_written(out)
    return _files(out)


@pytest.fixture(scope="module")
def drawn(study_tables, tmp_path_factory) -> dict[str, bytes]:
    """Every figure drawn once from :func:`study_tables`."""
    tables, lineage = study_tables
    return _draw_all(tables, lineage, tmp_path_factory.mktemp("drawn"))


@pytest.fixture(scope="module")
def drawn_without_tables(study_tables, tmp_path_factory) -> dict[str, bytes]:
    """Every figure drawn once with no tables at all: the one-line "no data" figures."""
    _tables, lineage = study_tables
    return _draw_all({}, lineage, tmp_path_factory.mktemp("none"))


def _check_written(out: Path, names: tuple[str, ...] = FIGURE_NAMES) -> None:
    expected = sorted(f"{name}.{suffix}" for name in names for suffix in ("pdf", "png"))
    assert sorted(p.name for p in out.iterdir()) == expected
    for name in names:
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert (out / f"{name}.png").read_bytes().startswith(PNG)


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _with_nulls(table: pl.DataFrame, every: int = 2) -> pl.DataFrame:
    """Every ``every``-th row's numbers (but ``depth``) and booleans null, as the io stores them."""
    hit = pl.int_range(pl.len()) % every == 0
    columns = [
        name
        for name, dtype in table.schema.items()
        if (dtype.is_numeric() or dtype == pl.Boolean) and name != "depth"
    ]
    return table.with_columns(
        pl.when(hit).then(None).otherwise(pl.col(c)).alias(c) for c in columns
    )


def test_figures_and_tables_are_named_once():
    assert tuple(FIGURE_TABLES) == FIGURE_NAMES
    assert {name: table for name, (table, _plot) in FIGURES.items()} == FIGURE_TABLES


def test_draw_every_figure(study_tables, drawn, drawn_without_tables):
    tables, _lineage = study_tables
    assert all(isinstance(table, pl.DataFrame) for table in tables.values())
    # Real figures, not the one-line "no data" ones.
    none = drawn_without_tables
    for name in FIGURE_NAMES:
        assert len(drawn[f"{name}.png"]) > 2 * len(none[f"{name}.png"]), name


@pytest.mark.slow  # draws every figure again
def test_figures_are_reproducible(study_tables, drawn, tmp_path: Path):
    """Drawing again gives byte-identical PDF and PNG files (no timestamps, no set order)."""
    tables, lineage = study_tables
    draw_figures(tables, lineage, tmp_path / "again")
    assert _files(tmp_path / "again") == drawn


def test_missing_and_empty_tables_give_no_data_figures(
    study_tables, drawn_without_tables, tmp_path: Path
):
    tables, lineage = study_tables
    empty = {name: table.clear() for name, table in tables.items()}
    draw_figures(empty, lineage, tmp_path / "empty")
    _check_written(tmp_path / "empty")
    # Tables with no columns at all (what the tables step writes for a table without data).
    draw_figures({name: pl.DataFrame() for name in tables}, lineage, tmp_path / "bare")
    assert _files(tmp_path / "bare") == drawn_without_tables


def test_degenerate_tables_with_nulls_and_few_rows(study_tables, tmp_path: Path):
    tables, lineage = study_tables
    # Half the numbers (and booleans) missing, and only a few rows left.
    degenerate = {name: _with_nulls(table).head(7) for name, table in tables.items()}
    draw_figures(degenerate, lineage, tmp_path / "figures")
    _check_written(tmp_path / "figures")


@pytest.mark.slow  # draws every figure again
def test_nan_and_null_draw_the_same(study_tables, drawn, tmp_path: Path):
    """A missing number drawn from a file (null) or from a table built in memory (NaN), with keys
    as strings or categoricals: the same figures, byte for byte."""
    tables, lineage = study_tables
    nulls = {name: _with_nulls(table, every=3) for name, table in tables.items()}
    nans = {
        name: table.with_columns(cs.float().fill_null(math.nan), cs.string().cast(pl.Categorical))
        for name, table in nulls.items()
    }
    assert any(table.select(cs.float().is_nan().any()).row(0)[0] for table in nans.values())
    draw_figures(nulls, lineage, tmp_path / "null")
    draw_figures(nans, lineage, tmp_path / "nan")
    assert _files(tmp_path / "null") == _files(tmp_path / "nan")
    # ... and the missing values changed the figures (they are not ignored).
    assert _files(tmp_path / "null") != drawn


@pytest.mark.slow  # draws every figure again
def test_tables_read_back_from_files_draw_the_same(study_tables, drawn, tmp_path: Path):
    from divtrace.analysis import read_tables, write_tables

    tables, lineage = study_tables
    write_tables(tables, tmp_path / "tables", metadata={"seed": 0})
    back = read_tables(tmp_path / "tables")
    assert set(back) == set(tables)
    assert all(isinstance(table, pl.DataFrame) for table in back.values())
    draw_figures(back, lineage, tmp_path / "back")
    # The files store NaN as null; the figures do not change.
    assert _files(tmp_path / "back") == drawn


def test_figures_import_no_pandas():
    source = Path(__file__).parents[1] / "src" / "divtrace" / "figures"
    for path in sorted(source.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "import pandas" not in text and "from pandas" not in text, path.name


def test_unknown_figure_name_is_named(study_tables, tmp_path: Path):
    tables, lineage = study_tables
    with pytest.raises(AnalysisError, match="nope"):
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


def test_decomposition_figure_orders_paper_tasks_first_and_marks_extras(monkeypatch, tmp_path):
    from divtrace.analysis import decomposition_table
    from divtrace.figures import decomposition as figure_module

    def rows(model: str, subset: str, task: str, values: list[float | None]) -> list[dict]:
        return [
            dict(
                model=model,
                task=task,
                cot="on",
                scope="per_input",
                subset=subset,
                prompt_id=str(i),
                metric="sbert",
                value=v,
                n_outputs=4,
            )
            for i, v in enumerate(values)
        ]

    table_rows: list[dict[str, object]] = []
    for task in ("truthfulqa", "mbpp"):
        table_rows += rows("base", "all", task, [0.8, 0.7, 0.6])
        table_rows += rows("base", "correct", task, [0.6, 0.5, 0.4])
        table_rows += rows("instruct-sft", "all", task, [0.5, 0.4, 0.2])
        table_rows += rows("instruct-sft", "correct", task, [0.45, 0.35, None])
    lineage = Lineage.from_models(STUDY)
    table = decomposition_table(pl.from_dicts(table_rows), lineage, n_boot=20)
    captured = {}
    monkeypatch.setattr(
        figure_module.style, "save_figure", lambda figure, *paths: captured.update(fig=figure)
    )
    figure_module.plot_decomposition(table, lineage, tmp_path / "d.pdf", tmp_path / "d.png")
    figure = captured["fig"]
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["mbpp", "truthfulqa\n(extra: not in the paper's six)"]
    texts = [t.get_text() for t in figure.texts]
    assert figure_module.SIZE_NOTE in texts
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert "total loss, all paired prompts" in legend
    # The open circle sits at total_all, which differs from the covered total here.
    row = table.filter(task="mbpp", model="instruct-sft", reference="base").row(0, named=True)
    rings = [
        line
        for line in figure.axes[0].get_lines()
        if line.get_marker() == "o" and line.get_markerfacecolor() == "none"
    ]
    assert [float(line.get_ydata()[0]) for line in rings] == pytest.approx([row["total_all"]])
    assert row["total_all"] != pytest.approx(row["total"])


def capture(monkeypatch) -> list:
    """The figures the plot functions save, kept for inspection (the files are written too)."""
    from divtrace.figures import style

    saved: list = []
    original = style.save_figure

    def save(figure, out_pdf, out_png):
        saved.append(figure)
        original(figure, out_pdf, out_png)

    monkeypatch.setattr(style, "save_figure", save)
    return saved


# ----------------------------------------------------------------------------- CoT verdicts
REASONING_CHAIN = {
    "base": {"stage": "base"},
    "think-sft": {"parent": "base", "stage": "sft", "lineage": "think", "reasoning": True},
    "think-dpo": {"parent": "think-sft", "stage": "dpo", "reasoning": True},
    "think-rl": {"parent": "think-dpo", "stage": "rl", "reasoning": True},
}


def cot_verdict_table() -> tuple[pl.DataFrame, Lineage]:
    """A CoT table in which think-sft is equivalent, think-dpo different, think-rl undecided."""
    from divtrace.analysis import cot_table

    rng = np.random.default_rng(0)
    n = 30
    on = rng.uniform(0.4, 0.6, size=n)
    spread = np.tile([0.3, -0.3], n // 2)
    off = {
        "think-sft": on - 0.002 + rng.normal(0.0, 0.0005, size=n),  # tiny and precise
        "think-dpo": on - 0.2 + rng.normal(0.0, 0.02, size=n),  # large
        "think-rl": on - spread,  # 0 on average, huge spread
    }
    rows = []
    for model, cot, values in [("base", "on", on)] + [
        run for m, v in off.items() for run in ((m, "on", on), (m, "off", v))
    ]:
        rows += [
            dict(model=model, task="gsm8k", cot=cot, scope="per_input", subset="all",
                 prompt_id=f"gsm8k/{i:02d}", metric="sbert", value=float(x), n_outputs=4)
            for i, x in enumerate(values)
        ]  # fmt: skip
    lineage = Lineage.from_models(REASONING_CHAIN)
    return cot_table(pl.from_dicts(rows), lineage, n_boot=200), lineage


def test_cot_figure_shows_equivalent_different_and_undecided(monkeypatch, tmp_path: Path):
    """(f) Every pair carries the glyph of its verdict, and the legend explains all three."""
    from divtrace.analysis.cot import VERDICTS
    from divtrace.figures import cot as cot_figure

    table, lineage = cot_verdict_table()
    verdicts = dict(table.filter(scope="per_input").select("model", "verdict").iter_rows())
    assert verdicts == {
        "think-sft": "equivalent",
        "think-dpo": "different",
        "think-rl": "undecided",
    }
    saved = capture(monkeypatch)
    cot_figure.plot_cot_on_off(table, lineage, tmp_path / "c.pdf", tmp_path / "c.png")
    _check_written(tmp_path, ("c",))
    figure = saved[0]
    legend = [text.get_text() for box in figure.legends for text in box.get_texts()]
    for verdict in VERDICTS:
        glyph, label = cot_figure.VERDICT_GLYPHS[verdict], cot_figure.VERDICT_LABELS[verdict]
        assert f"{glyph}  {label}" in legend
    glyphs = set(cot_figure.VERDICT_GLYPHS.values())
    drawn = {
        (text.get_text(), round(float(text.xy[0]), 9))
        for ax in figure.axes
        for text in ax.texts
        if text.get_text() in glyphs
    }
    expected = {
        (cot_figure.VERDICT_GLYPHS[r["verdict"]], round(max(r["value_on"], r["value_off"]), 9))
        for r in table.filter(scope="per_input").iter_rows(named=True)
    }
    assert drawn == expected and len(drawn) == 3
    # A table from before the equivalence test: no glyphs, no verdict legend.
    saved.clear()
    old = table.drop("margin", "equiv_ci_low", "equiv_ci_high", "equivalent", "verdict")
    cot_figure.plot_cot_on_off(old, lineage, tmp_path / "c.pdf", tmp_path / "c.png")
    assert len(saved[0].legends) == 1
    assert not [t for ax in saved[0].axes for t in ax.texts if t.get_text() in glyphs]


# ----------------------------------------------------------------------------- filtered Vendi
def vendi_summary_rows() -> list[dict[str, object]]:
    """Summary rows (scope per_input, subset correct, metric vendi) with distinct coverages, and
    rows the figure must ignore (other subsets and metrics)."""
    rows: list[dict[str, object]] = []

    def add(model, cot, task, value, n_prompts, n_missing, subset="correct", metric="vendi"):
        spec = STUDY[model]
        rows.append(
            dict(
                model=model,
                lineage=spec.get("lineage", "base" if model == "base" else None),
                stage=spec["stage"],
                task=task,
                cot=cot,
                scope="per_input",
                subset=subset,
                metric=metric,
                value=value,
                ci_low=None if value is None else value - 0.1,
                ci_high=None if value is None else value + 0.2,
                n_prompts=n_prompts,
                n_missing=n_missing,
            )
        )

    add("base", "on", "gsm8k", 3.0, 4, 4)  # 50%
    add("instruct-sft", "on", "gsm8k", 2.5, 6, 2)  # 75%
    add("think-sft", "on", "gsm8k", 2.0, 7, 1)  # 88%
    add("think-sft", "off", "gsm8k", 2.2, 8, 0)  # 100%
    add("think-dpo", "on", "gsm8k", 1.8, 1, 7)  # 12%
    add("think-dpo", "off", "gsm8k", None, 0, 8)  # no prompt with two correct outputs
    add("base", "on", "ifeval", 2.8, 3, 7)  # 30%
    add("think-sft", "on", "ifeval", 2.1, 9, 1)  # 90%
    add("base", "on", "truthfulqa", None, 0, 5)  # an extra task without any value
    add("base", "on", "gsm8k", 9.0, 8, 0, subset="all")
    add("think-sft", "on", "gsm8k", 0.4, 7, 1, metric="sbert")
    return rows


def test_quality_filtered_vendi_draws_the_table(monkeypatch, tmp_path: Path):
    from divtrace.figures import quality_filtered as figure_module

    table = pl.from_dicts(vendi_summary_rows(), infer_schema_length=None)
    lineage = Lineage.from_models(STUDY)
    saved = capture(monkeypatch)
    draw_figures({"diversity": table}, lineage, tmp_path, names=("quality_filtered_vendi",))
    _check_written(tmp_path, ("quality_filtered_vendi",))
    figure = saved[0]
    panels = [ax for ax in figure.axes if ax.get_title()]
    titles = [ax.get_title() for ax in panels]
    assert titles == ["gsm8k", "ifeval", f"truthfulqa\n{figure_module.EXTRA}"]
    selected = table.filter(subset="correct", metric="vendi")
    for ax, task in zip(panels, ("gsm8k", "ifeval", "truthfulqa"), strict=True):
        rows = selected.filter(pl.col("value").is_not_null(), task=task).to_dicts()
        values = sorted(r["value"] for r in rows)
        # Each plotted point is a table value, and each value is plotted (lines pass through
        # their anchor, the run before the first CoT-off point, which is a value too); the
        # error bars' caps ("_" markers) are lines as well, left out here.
        plotted = sorted(
            {
                round(float(y), 12)
                for line in ax.get_lines()
                if line.get_marker() != "_"
                for y in line.get_ydata()
            }
        )
        assert plotted == sorted({round(v, 12) for v in values})
        # Error bars: one segment from ci_low to ci_high per point.
        segments = sorted(
            (round(float(seg[0][1]), 12), round(float(seg[1][1]), 12))
            for collection in ax.collections
            for seg in collection.get_segments()
        )
        assert segments == sorted((round(v - 0.1, 12), round(v + 0.2, 12)) for v in values)
        # Coverage under each point: n_prompts / (n_prompts + n_missing), at the point's height.
        shares = sorted(
            (text.get_text(), round(float(text.xy[1]), 12))
            for text in ax.texts
            if text.get_text().endswith("%")
        )
        expected = sorted(
            (
                figure_module.coverage_label(r["n_prompts"] / (r["n_prompts"] + r["n_missing"])),
                round(r["value"], 12),
            )
            for r in rows
        )
        assert shares == expected
    # truthfulqa has rows but no value: a panel that says why.
    assert [t.get_text() for t in panels[2].texts] == ["no prompt with two correct outputs"]
    labels = sorted(t.get_text() for t in panels[0].texts if t.get_text().endswith("%"))
    assert labels == ["100%", "12%", "50%", "75%", "88%"]
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend == ["base", "instruct", "think", "think (CoT off)"]


def test_quality_filtered_vendi_without_correct_outputs_says_so(monkeypatch, tmp_path: Path):
    from divtrace.figures import quality_filtered as figure_module

    lineage = Lineage.from_models(STUDY)
    rows = [r for r in vendi_summary_rows() if r["subset"] != "correct"]
    saved = capture(monkeypatch)
    for name, table in [
        ("none", None),
        ("bare", pl.DataFrame()),
        ("all-only", pl.from_dicts(rows, infer_schema_length=None)),
    ]:
        figure_module.plot_quality_filtered_vendi(
            table, lineage, tmp_path / f"{name}.pdf", tmp_path / f"{name}.png"
        )
    _check_written(tmp_path, ("all-only", "bare", "none"))
    notes = [[t.get_text() for ax in f.axes for t in ax.texts] for f in saved]
    assert notes[0] == notes[1] == ["no diversity table"]
    assert notes[2] == ["no vendi rows over correct outputs (no verifiable task in the study)"]
    assert all(f.axes[0].get_title() == figure_module.TITLE for f in saved)
