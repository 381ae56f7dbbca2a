"""Summary table of diversity scores and the lineage-trajectory figure (synthetic data, fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

from divtrace import io
from divtrace.analysis import summarize_diversity, write_summary
from divtrace.analysis.aggregate import summary_columns
from divtrace.errors import AnalysisError, ContractError
from divtrace.lineage import Lineage
from divtrace.names import BASE_LABEL

MODELS = {
    "base": {"stage": "base"},
    "think-sft": {"parent": "base", "stage": "sft", "lineage": "think", "reasoning": True},
    "think-dpo": {"parent": "think-sft", "stage": "dpo", "reasoning": True},
    "instruct-sft": {"parent": "base", "stage": "sft", "lineage": "instruct"},
}
# Mean per-input value of each (model, cot) for metric "ead" on task "gsm8k"; other tasks and
# metrics scale it (see `expected_mean`).
MEANS = {
    ("base", "on"): 0.8,
    ("think-sft", "on"): 0.6,
    ("think-sft", "off"): 0.5,
    ("think-dpo", "on"): 0.3,
    ("think-dpo", "off"): 0.4,
    ("instruct-sft", "on"): 0.7,
}
TASKS = {"gsm8k": 1.0, "alpaca": 0.9}
METRICS = {"ead": 1.0, "sbert": 0.5}
OFFSETS = (-0.1, 0.0, 0.1)  # three prompts, symmetric around the mean


def expected_mean(model: str, cot: str, task: str = "gsm8k", metric: str = "ead") -> float:
    return MEANS[(model, cot)] * TASKS[task] * METRICS[metric]


def make_lineage() -> Lineage:
    return Lineage.from_models(MODELS)


def make_diversity(n_dropped: bool = False) -> pl.DataFrame:
    rows = []
    for model, cot in MEANS:
        for task in TASKS:
            for metric in METRICS:
                mean = expected_mean(model, cot, task, metric)
                for subset in ("all", "correct"):
                    for i, offset in enumerate(OFFSETS):
                        rows.append(
                            dict(
                                model=model,
                                task=task,
                                cot=cot,
                                scope="per_input",
                                subset=subset,
                                prompt_id=f"{task}-{i}",
                                metric=metric,
                                value=mean + offset * METRICS[metric],
                                n_outputs=4 if subset == "all" else 2,
                                n_dropped=1,
                            )
                        )
                    rows.append(
                        dict(
                            model=model,
                            task=task,
                            cot=cot,
                            scope="across_input",
                            subset=subset,
                            prompt_id=None,
                            metric=metric,
                            value=mean + 0.05,
                            n_outputs=3,
                            n_dropped=0,
                        )
                    )
    frame = pl.from_dicts(rows, infer_schema_length=None)
    return frame if n_dropped else frame.drop("n_dropped")


def set_cell(frame: pl.DataFrame, index: int, column: str, value: object) -> pl.DataFrame:
    """``frame`` with row ``index`` of ``column`` set to ``value``."""
    at = pl.int_range(pl.len()) == index
    return frame.with_columns(
        pl.when(at).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )


def has_nan(table: pl.DataFrame) -> bool:
    """Whether a float column of ``table`` holds NaN (a table holds missing values as null)."""
    return any(table.select(pl.selectors.float().is_nan().any()).row(0))


def row(
    table: pl.DataFrame,
    model: str,
    cot: str = "on",
    task: str = "gsm8k",
    scope: str = "per_input",
    subset: str = "all",
    metric: str = "ead",
) -> dict[str, Any]:
    hit = table.filter(model=model, cot=cot, task=task, scope=scope, subset=subset, metric=metric)
    assert len(hit) == 1, hit
    return hit.row(0, named=True)


def test_summary_shape_columns_and_order():
    table = summarize_diversity(make_diversity(), make_lineage())
    assert table.columns == summary_columns()
    assert len(table) == len(MEANS) * len(TASKS) * len(METRICS) * 2 * 2
    key = ["model", "task", "cot", "scope", "subset", "metric"]
    assert not table.select(key).is_duplicated().any()
    models_in_order = list(dict.fromkeys(table["model"]))
    assert models_in_order == ["base", "instruct-sft", "think-sft", "think-dpo"]
    first = table.filter(model="think-sft")
    assert list(dict.fromkeys(first["cot"])) == ["on", "off"]
    # Deterministic: shuffled input gives the same table.
    shuffled = make_diversity().sample(fraction=1.0, shuffle=True, seed=3)
    assert not shuffled.equals(make_diversity())
    assert_frame_equal(summarize_diversity(shuffled, make_lineage()), table)


def test_summary_dtypes_and_missing_values_are_null():
    table = summarize_diversity(make_diversity(n_dropped=True), make_lineage(), n_boot=20)
    counts = {"depth", "n_prompts", "n_missing", "n_outputs", "n_dropped"}
    strings = {"model", "lineage", "stage", "parent", "task", "cot", "scope", "subset", "metric"}
    for name, dtype in table.schema.items():
        expected = pl.Int64 if name in counts else pl.String if name in strings else pl.Float64
        assert dtype == expected, name
    assert not has_nan(table)  # missing is null, never NaN
    assert table["ci_low"].null_count() == len(table.filter(scope="across_input")) > 0
    empty = summarize_diversity(make_diversity().clear(), make_lineage())
    assert empty.is_empty() and empty.columns == summary_columns()
    assert empty.schema["n_prompts"] == pl.Int64 and empty.schema["value"] == pl.Float64


def test_lineage_labels_and_tree_columns():
    table = summarize_diversity(make_diversity(), make_lineage())
    labels = dict(zip(table["model"], table["lineage"], strict=False))
    assert labels == {
        "base": BASE_LABEL,
        "think-sft": "think",
        "think-dpo": "think",
        "instruct-sft": "instruct",
    }
    dpo = row(table, "think-dpo")
    assert (dpo["stage"], dpo["parent"], dpo["depth"]) == ("dpo", "think-sft", 2)
    base = row(table, "base")
    assert base["parent"] is None and base["depth"] == 0 and base["stage"] == "base"


def test_means_counts_and_across_input():
    table = summarize_diversity(make_diversity(n_dropped=True), make_lineage())
    assert "n_dropped" in table.columns
    r = row(table, "think-sft", cot="off", task="alpaca", metric="sbert")
    assert r["value"] == pytest.approx(expected_mean("think-sft", "off", "alpaca", "sbert"))
    assert (r["n_prompts"], r["n_outputs"], r["n_dropped"]) == (3, 12, 3)
    a = row(table, "instruct-sft", scope="across_input")
    assert a["value"] == pytest.approx(expected_mean("instruct-sft", "on") + 0.05)
    assert (a["n_prompts"], a["n_outputs"], a["n_dropped"]) == (3, 3, 0)
    c = row(table, "base", subset="correct")
    assert c["n_outputs"] == 6


def test_prompts_without_a_value_are_left_out_and_counted():
    """A prompt with fewer than two outputs has a null value: the mean, the interval and the
    paired ratio run over the prompts that have a value, and the summary counts the rest."""
    frame = make_diversity(n_dropped=True)
    # think-sft, CoT on, gsm8k, ead: prompt 2 (offset +0.1) kept one output only.
    lonely = (
        (pl.col("model") == "think-sft")
        & (pl.col("cot") == "on")
        & (pl.col("task") == "gsm8k")
        & (pl.col("metric") == "ead")
        & (pl.col("subset") == "all")
        & (pl.col("prompt_id") == "gsm8k-2")
    )
    frame = frame.with_columns(
        value=pl.when(lonely).then(None).otherwise("value"),
        n_outputs=pl.when(lonely).then(1).otherwise("n_outputs"),
    )
    # across inputs for the same run: two of the three samples 0 survive, no value either way
    across = (
        (pl.col("model") == "think-sft")
        & (pl.col("cot") == "on")
        & (pl.col("task") == "gsm8k")
        & (pl.col("scope") == "across_input")
        & (pl.col("subset") == "all")
    )
    frame = frame.with_columns(n_outputs=pl.when(across).then(2).otherwise("n_outputs"))
    table = summarize_diversity(frame, make_lineage(), n_boot=200)
    r = row(table, "think-sft", task="gsm8k", metric="ead")
    mean = expected_mean("think-sft", "on")
    assert r["value"] == pytest.approx(mean - 0.05)  # the mean of prompts 0 and 1 only
    assert (r["n_prompts"], r["n_missing"], r["n_outputs"]) == (2, 1, 8)
    assert r["ci_high"] <= mean + 1e-12  # prompt 2 never enters a resample
    # The ratio to the base is a mean over the run's own prompts divided by the base's mean.
    assert r["ratio_to_base"] == pytest.approx((mean - 0.05) / 0.8)
    a = row(table, "think-sft", task="gsm8k", metric="ead", scope="across_input")
    assert (a["n_prompts"], a["n_missing"], a["n_outputs"]) == (2, 1, 2)
    other = row(table, "think-sft", task="gsm8k", metric="sbert")
    assert (other["n_prompts"], other["n_missing"]) == (3, 0)


def test_a_subset_without_any_value_summarizes_to_null():
    """In the demo, a model may have fewer than two correct outputs on every prompt: its
    correct-subset rows all hold null, and the summary says so instead of failing."""
    frame = make_diversity(n_dropped=True)
    empty = (pl.col("model") == "think-dpo") & (pl.col("subset") == "correct")
    frame = frame.with_columns(value=pl.when(empty).then(None).otherwise("value"))
    table = summarize_diversity(frame, make_lineage(), n_boot=50)
    r = row(table, "think-dpo", subset="correct", metric="sbert")
    assert r["value"] is None and r["ci_low"] is None and r["n_prompts"] == 0
    assert r["n_missing"] == 3


def test_ratio_to_base_and_parent():
    table = summarize_diversity(make_diversity(), make_lineage())
    base = row(table, "base")
    assert base["value_base"] == pytest.approx(0.8)
    assert base["ratio_to_base"] == pytest.approx(1.0)
    assert base["value_parent"] is None and base["ratio_to_parent"] is None

    dpo = row(table, "think-dpo")
    assert dpo["ratio_to_base"] == pytest.approx(0.3 / 0.8)
    assert dpo["value_parent"] == pytest.approx(0.6)
    assert dpo["ratio_to_parent"] == pytest.approx(0.3 / 0.6)

    across = row(table, "instruct-sft", scope="across_input", metric="sbert")
    assert across["ratio_to_base"] == pytest.approx((0.35 + 0.05) / (0.4 + 0.05))


def test_cot_off_compares_to_base_on_and_parent_same_cot_or_on():
    table = summarize_diversity(make_diversity(), make_lineage())
    sft_off = row(table, "think-sft", cot="off")
    # The base model has no CoT-off run: both references fall back to its normal run.
    assert sft_off["value_base"] == pytest.approx(0.8)
    assert sft_off["value_parent"] == pytest.approx(0.8)
    assert sft_off["ratio_to_parent"] == pytest.approx(0.5 / 0.8)
    dpo_off = row(table, "think-dpo", cot="off")
    # The parent has a CoT-off run: compare like with like.
    assert dpo_off["value_parent"] == pytest.approx(0.5)
    assert dpo_off["ratio_to_parent"] == pytest.approx(0.4 / 0.5)
    assert dpo_off["ratio_to_base"] == pytest.approx(0.4 / 0.8)


def test_zero_reference_gives_nan_not_inf():
    zero = (pl.col("model") == "base") & (pl.col("metric") == "ead")
    diversity = make_diversity().with_columns(
        value=pl.when(zero).then(0.0).otherwise(pl.col("value"))
    )
    table = summarize_diversity(diversity, make_lineage())
    ead = table.filter(metric="ead")
    assert ead["ratio_to_base"].is_null().all()  # includes the base itself: 0 / 0
    ratios = table.select("ratio_to_base", "ratio_to_parent").to_numpy()
    assert not np.isinf(ratios).any() and not np.isnan(ratios).all()
    child = row(table, "instruct-sft")
    assert child["ratio_to_parent"] is None
    assert row(table, "think-dpo")["ratio_to_parent"] == pytest.approx(0.5)
    assert row(table, "think-dpo", metric="sbert")["ratio_to_base"] == pytest.approx(0.3 / 0.8)


def test_missing_base_rows_give_nan():
    diversity = make_diversity().filter(pl.col("model") != "base")
    table = summarize_diversity(diversity, make_lineage())
    assert len(table) and table["value_base"].is_null().all()
    assert row(table, "think-dpo")["ratio_to_parent"] == pytest.approx(0.5)


def test_unknown_model_is_named():
    diversity = set_cell(make_diversity(), 0, "model", "mystery-7b")
    with pytest.raises(AnalysisError, match="mystery-7b"):
        summarize_diversity(diversity, make_lineage())


@pytest.mark.parametrize("column", ["metric", "value", "prompt_id", "n_outputs"])
def test_missing_column_is_named(column):
    with pytest.raises(ContractError, match=column):
        summarize_diversity(make_diversity().drop(column), make_lineage())


def test_bad_values_are_named():
    diversity = set_cell(make_diversity(), 0, "scope", "global")
    with pytest.raises(ContractError, match=r"scope.*global"):
        summarize_diversity(diversity, make_lineage())
    duplicated = pl.concat([make_diversity(), make_diversity().head(1)])
    with pytest.raises(ContractError, match="duplicate"):
        summarize_diversity(duplicated, make_lineage())


def test_unlabelled_branch_takes_leaf_name():
    lineage = Lineage.from_models({"b": {}, "x": {"parent": "b", "stage": "sft"}})
    frame = make_diversity().filter(pl.col("model").is_in(["base", "instruct-sft"]))
    frame = frame.with_columns(pl.col("model").replace_strict({"base": "b", "instruct-sft": "x"}))
    table = summarize_diversity(frame, lineage)
    assert set(zip(table["model"], table["lineage"], strict=False)) == {("b", "base"), ("x", "x")}


def test_write_summary_roundtrip(tmp_path: Path):
    table = summarize_diversity(make_diversity(n_dropped=True), make_lineage())
    parquet, csv = write_summary(
        table,
        tmp_path / "t" / "diversity.parquet",
        tmp_path / "t" / "diversity.csv",
        metadata={"seed": 1},
    )
    back = io.read_table(parquet)
    assert back.columns == table.columns
    assert len(back) == len(table)
    assert_frame_equal(back, table)
    np.testing.assert_allclose(
        back["ratio_to_parent"].to_numpy(), table["ratio_to_parent"].to_numpy()
    )
    assert io.read_metadata(parquet) == {"table": "diversity_summary", "seed": 1}
    from_csv = pl.read_csv(csv)
    assert from_csv.columns == table.columns and len(from_csv) == len(table)
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == [
        "diversity.csv",
        "diversity.parquet",
    ]


def test_trajectory_figure_writes_pdf_and_png(tmp_path: Path):
    from divtrace.figures import plot_lineage_trajectories

    lineage = make_lineage()
    table = summarize_diversity(make_diversity(), lineage)
    out = tmp_path / "figures"
    plot_lineage_trajectories(table, lineage, out / "traj.pdf", out / "traj.png")
    pdf, png = (out / "traj.pdf").read_bytes(), (out / "traj.png").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert sorted(p.name for p in out.iterdir()) == ["traj.pdf", "traj.png"]
    # Reruns give identical files (no timestamps), and other scopes/subsets work too.
    plot_lineage_trajectories(table, lineage, out / "traj.pdf", out / "traj.png")
    assert (out / "traj.pdf").read_bytes() == pdf
    plot_lineage_trajectories(
        table, lineage, out / "c.pdf", out / "c.png", scope="across_input", subset="correct"
    )
    assert (out / "c.png").stat().st_size > 0


def test_trajectory_figure_rejects_empty_selection(tmp_path: Path):
    from divtrace.figures import plot_lineage_trajectories

    lineage = make_lineage()
    table = summarize_diversity(make_diversity(), lineage)
    with pytest.raises(AnalysisError, match="scope='nope'"):
        plot_lineage_trajectories(
            table, lineage, tmp_path / "a.pdf", tmp_path / "a.png", scope="nope"
        )
    with pytest.raises(ContractError, match="value"):
        plot_lineage_trajectories(
            table.drop("value"), lineage, tmp_path / "a.pdf", tmp_path / "a.png"
        )
    assert list(tmp_path.iterdir()) == []


def test_per_input_rows_have_bootstrap_intervals():
    table = summarize_diversity(make_diversity(), make_lineage(), n_boot=300, seed=0)
    per_input = table.filter(scope="per_input")
    assert per_input.select("ci_low", "ci_high").null_count().row(0) == (0, 0)
    assert (per_input["ci_low"] <= per_input["value"] + 1e-12).all()
    assert (per_input["value"] <= per_input["ci_high"] + 1e-12).all()
    # Three prompts at mean - 0.1, mean, mean + 0.1: no resample leaves that range.
    r = row(table, "think-dpo")
    assert r["value"] - 0.1 - 1e-12 <= r["ci_low"] < r["value"] < r["ci_high"]
    assert r["ci_high"] <= r["value"] + 0.1 + 1e-12
    # across_input rows have one value per set: no interval.
    across = table.filter(scope="across_input")
    assert len(across) and across.select(pl.col("ci_low", "ci_high").is_null().all()).row(0) == (
        True,
        True,
    )


def test_intervals_are_seeded_and_can_be_switched_off():
    diversity = make_diversity()
    first = summarize_diversity(diversity, make_lineage(), n_boot=200, seed=5)
    again = summarize_diversity(diversity, make_lineage(), n_boot=200, seed=5)
    assert_frame_equal(first, again)
    other = summarize_diversity(diversity, make_lineage(), n_boot=200, seed=6)
    per_input = pl.col("scope") == "per_input"
    assert not np.allclose(
        first.filter(per_input)["ci_low"].to_numpy(), other.filter(per_input)["ci_low"].to_numpy()
    )
    off = summarize_diversity(diversity, make_lineage(), n_boot=0)
    assert off.select(pl.col("ci_low", "ci_high").is_null().all()).row(0) == (True, True)
    assert_series_equal(off["value"], first["value"])


def test_constant_prompts_give_zero_width_interval():
    diversity = make_diversity().with_columns(value=pl.lit(0.3))
    table = summarize_diversity(diversity, make_lineage(), n_boot=100)
    per_input = table.filter(scope="per_input")
    assert (per_input["ci_low"] == 0.3).all() and (per_input["ci_high"] == 0.3).all()


def test_trajectory_figure_without_interval_columns(tmp_path: Path):
    from divtrace.figures import plot_lineage_trajectories

    lineage = make_lineage()
    table = summarize_diversity(make_diversity(), lineage).drop("ci_low", "ci_high")
    plot_lineage_trajectories(table, lineage, tmp_path / "t.pdf", tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")
