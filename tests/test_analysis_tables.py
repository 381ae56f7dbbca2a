"""Retention, stage attribution, CoT on/off, decomposition and quality tables (known answers)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from divtrace import io
from divtrace.analysis import (
    ALL_TASKS,
    TABLE_NAMES,
    build_tables,
    cot_table,
    decomposition_table,
    quality_table,
    read_tables,
    retention_table,
    stage_table,
    write_tables,
)
from divtrace.analysis import cot as cot_module
from divtrace.analysis import decomposition as decomposition_module
from divtrace.analysis import retention as retention_module
from divtrace.analysis import stages as stages_module
from divtrace.lineage import Lineage
from divtrace.quality.metrics import quality_summary
from tests.test_analysis import expected_mean, make_diversity, make_lineage

N_BOOT = 200

CHAIN = {
    "base": {"stage": "base"},
    "sft": {"parent": "base", "stage": "sft", "lineage": "main", "reasoning": True},
    "dpo": {"parent": "sft", "stage": "dpo", "reasoning": True},
    "rl": {"parent": "dpo", "stage": "rl", "reasoning": True},
}


def per_prompt_rows(
    model: str,
    values: list[float],
    *,
    task: str = "gsm8k",
    cot: str = "on",
    subset: str = "all",
    metric: str = "sbert",
    prompts: list[int] | None = None,
) -> list[dict[str, object]]:
    ids = prompts if prompts is not None else list(range(len(values)))
    return [
        dict(
            model=model,
            task=task,
            cot=cot,
            scope="per_input",
            subset=subset,
            prompt_id=f"{task}/{i}",
            metric=metric,
            value=v,
            n_outputs=4,
        )
        for i, v in zip(ids, values, strict=True)
    ]


def pick(table: pd.DataFrame, **where: object) -> pd.Series:
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= (table[column] == value).to_numpy()
    hit = table[mask]
    assert len(hit) == 1, hit
    return hit.iloc[0]


# ----------------------------------------------------------------------------- retention
def test_retention_ratios_match_summary_and_intervals_cover_them():
    lineage = make_lineage()
    table = retention_table(make_diversity(), lineage, n_boot=N_BOOT)
    assert list(table.columns) == retention_module.COLUMNS
    dpo = pick(
        table,
        model="think-dpo",
        task="gsm8k",
        cot="on",
        scope="per_input",
        subset="all",
        metric="ead",
    )
    assert dpo["ratio_to_base"] == pytest.approx(0.3 / 0.8)
    assert dpo["ratio_to_parent"] == pytest.approx(0.3 / 0.6)
    assert dpo["value"] == pytest.approx(0.3)
    assert dpo["n_prompts_base"] == 3 and dpo["n_prompts_parent"] == 3
    assert dpo["ratio_to_base_ci_low"] <= dpo["ratio_to_base"] <= dpo["ratio_to_base_ci_high"]
    off = pick(
        table,
        model="think-dpo",
        task="gsm8k",
        cot="off",
        scope="per_input",
        subset="all",
        metric="ead",
    )
    assert off["ratio_to_parent"] == pytest.approx(0.4 / 0.5)  # parent's CoT-off run
    assert off["ratio_to_base"] == pytest.approx(0.4 / 0.8)  # base with CoT on
    across = pick(
        table, model="instruct-sft", task="gsm8k", scope="across_input", subset="all", metric="ead"
    )
    assert across["ratio_to_base"] == pytest.approx(0.75 / 0.85)
    assert math.isnan(across["ratio_to_base_ci_low"])


def test_root_has_ratio_exactly_one_and_no_parent():
    table = retention_table(make_diversity(), make_lineage(), n_boot=N_BOOT)
    base = table[(table["model"] == "base") & (table["scope"] == "per_input")]
    assert (base["ratio_to_base"] == 1.0).all()
    assert (base["ratio_to_base_ci_low"] == 1.0).all() and (
        base["ratio_to_base_ci_high"] == 1.0
    ).all()
    assert base["ratio_to_parent"].isna().all() and (base["n_prompts_parent"] == 0).all()


def test_proportional_model_gives_exact_ratio_with_zero_width_interval():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.9, size=20)
    rows = per_prompt_rows("base", list(base)) + per_prompt_rows("sft", list(0.5 * base))
    table = retention_table(pd.DataFrame(rows), Lineage.from_models(CHAIN), n_boot=N_BOOT)
    sft = pick(table, model="sft", task="gsm8k")
    assert sft["ratio_to_base"] == pytest.approx(0.5, rel=1e-12)
    assert sft["ratio_to_base_ci_low"] == pytest.approx(0.5, rel=1e-12)
    assert sft["ratio_to_base_ci_high"] == pytest.approx(0.5, rel=1e-12)


def test_retention_pairs_on_common_prompts():
    rows = per_prompt_rows("base", [1.0, 2.0, 3.0], prompts=[0, 1, 2], subset="correct")
    rows += per_prompt_rows("sft", [10.0, 1.0, 1.5], prompts=[3, 1, 2], subset="correct")
    table = retention_table(pd.DataFrame(rows), Lineage.from_models(CHAIN), n_boot=N_BOOT)
    sft = pick(table, model="sft", subset="correct")
    assert sft["n_prompts_base"] == 2
    assert sft["ratio_to_base"] == pytest.approx((1.0 + 1.5) / (2.0 + 3.0))
    assert sft["value"] == pytest.approx((10.0 + 1.0 + 1.5) / 3)  # its own prompts
    assert sft["value_base"] == pytest.approx(2.5)


def test_retention_all_tasks_row_is_mean_of_task_ratios():
    table = retention_table(make_diversity(), make_lineage(), n_boot=N_BOOT)
    allrow = pick(
        table,
        model="think-dpo",
        task=ALL_TASKS,
        cot="on",
        scope="per_input",
        subset="all",
        metric="sbert",
    )
    tasks = table[
        (table["model"] == "think-dpo")
        & (table["task"] != ALL_TASKS)
        & (table["cot"] == "on")
        & (table["scope"] == "per_input")
        & (table["subset"] == "all")
        & (table["metric"] == "sbert")
    ]
    assert len(tasks) == 2
    assert allrow["ratio_to_base"] == pytest.approx(tasks["ratio_to_base"].mean())
    assert allrow["n_prompts_base"] == 6
    assert (
        allrow["ratio_to_base_ci_low"] <= allrow["ratio_to_base"] <= allrow["ratio_to_base_ci_high"]
    )
    assert (table.groupby("model")["task"].last() == ALL_TASKS).all()
    # No all-tasks row without all tasks.
    lean = make_diversity()
    lean = lean[~((lean["model"] == "think-dpo") & (lean["task"] == "alpaca"))]
    lean_table = retention_table(lean, make_lineage(), n_boot=N_BOOT)
    assert not ((lean_table["model"] == "think-dpo") & (lean_table["task"] == ALL_TASKS)).any()


def test_retention_is_deterministic_and_order_free():
    lineage = make_lineage()
    first = retention_table(make_diversity(), lineage, n_boot=N_BOOT, seed=3)
    shuffled = make_diversity().sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(first, retention_table(shuffled, lineage, n_boot=N_BOOT, seed=3))
    other = retention_table(make_diversity(), lineage, n_boot=N_BOOT, seed=4)
    assert not np.allclose(
        first["ratio_to_base_ci_low"].fillna(0).to_numpy(),
        other["ratio_to_base_ci_low"].fillna(0).to_numpy(),
    )


# ----------------------------------------------------------------------------- stages
def chain_rows(levels: dict[str, float], n: int = 6, cot: str = "on") -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for model, level in levels.items():
        rows += per_prompt_rows(model, [level] * n, cot=cot)
    return rows


def test_stage_shares_known_answer():
    rows = chain_rows({"base": 1.0, "sft": 0.6, "dpo": 0.5, "rl": 0.2})
    table = stage_table(pd.DataFrame(rows), Lineage.from_models(CHAIN), n_boot=N_BOOT)
    assert list(table.columns) == stages_module.COLUMNS
    per_task = table[table["task"] == "gsm8k"]
    assert list(per_task["model"]) == ["sft", "dpo", "rl"]
    np.testing.assert_allclose(per_task["loss"], [0.4, 0.1, 0.3])
    np.testing.assert_allclose(per_task["share"], [0.5, 0.125, 0.375])
    np.testing.assert_allclose(per_task["share_ci_low"], per_task["share"])
    np.testing.assert_allclose(per_task["share_ci_high"], per_task["share"])
    np.testing.assert_allclose(per_task["total_loss"], 0.8)
    assert (per_task["final"] == "rl").all()
    assert per_task["share"].sum() == pytest.approx(1.0)


def test_negative_losses_and_flat_totals():
    rows = chain_rows({"base": 1.0, "sft": 1.1, "dpo": 0.5})
    table = stage_table(pd.DataFrame(rows), Lineage.from_models(CHAIN), n_boot=N_BOOT)
    np.testing.assert_allclose(table["share"], [-0.2, 1.2])
    assert (table["final"] == "dpo").all()  # rl has no data: the path stops at dpo
    flat = stage_table(
        pd.DataFrame(chain_rows({"base": 1.0, "sft": 0.8, "dpo": 1.0})),
        Lineage.from_models(CHAIN),
        n_boot=N_BOOT,
    )
    assert flat["share"].isna().all()
    np.testing.assert_allclose(flat["loss"], [0.2, -0.2])


def test_missing_intermediate_stage_gives_nan_for_its_losses():
    rows = chain_rows({"base": 1.0, "sft": 0.6, "rl": 0.2})
    table = stage_table(pd.DataFrame(rows), Lineage.from_models(CHAIN), n_boot=N_BOOT)
    assert list(table["model"]) == ["sft", "dpo", "rl"]
    assert table["share"].iloc[0] == pytest.approx(0.5)
    assert table[["loss", "share"]].iloc[1:].isna().all().all()
    np.testing.assert_allclose(table["total_loss"], 0.8)


def test_stage_cot_off_series_uses_normal_run_where_no_off_run():
    rows = chain_rows({"base": 1.0, "sft": 0.6, "dpo": 0.5, "rl": 0.2})
    rows += chain_rows({"sft": 0.9, "dpo": 0.8, "rl": 0.7}, cot="off")
    table = stage_table(pd.DataFrame(rows), Lineage.from_models(CHAIN), n_boot=N_BOOT)
    off = table[table["cot"] == "off"]
    np.testing.assert_allclose(off["value_parent"], [1.0, 0.9, 0.8])
    np.testing.assert_allclose(off["share"], [1 / 3, 1 / 3, 1 / 3])


def test_stage_all_tasks_and_intervals():
    table = stage_table(make_diversity(), make_lineage(), n_boot=N_BOOT)
    think = table[
        (table["lineage"] == "think")
        & (table["cot"] == "on")
        & (table["scope"] == "per_input")
        & (table["subset"] == "all")
        & (table["metric"] == "ead")
    ]
    assert set(think["task"]) == {"gsm8k", "alpaca", ALL_TASKS}
    gsm = think[think["task"] == "gsm8k"]
    np.testing.assert_allclose(gsm["share"], [0.2 / 0.5, 0.3 / 0.5])
    allrows = think[think["task"] == ALL_TASKS]
    # Same proportions on both tasks (one is the other scaled), so the mean has them too.
    np.testing.assert_allclose(allrows["share"], [0.4, 0.6])
    assert (
        (allrows["share_ci_low"] <= allrows["share"] + 1e-12)
        & (allrows["share"] <= allrows["share_ci_high"] + 1e-12)
    ).all()


# ----------------------------------------------------------------------------- CoT
def quality_rows(model: str, cot: str, correct: list[list[bool]], task: str = "gsm8k"):
    return [
        dict(
            model=model,
            task=task,
            cot=cot,
            prompt_id=f"{task}/{i}",
            sample=j,
            correct=ok,
            score=float(ok),
            extracted="1" if ok else "0",
            detail=None,
        )
        for i, samples in enumerate(correct)
        for j, ok in enumerate(samples)
    ]


def test_cot_differences_with_significance():
    lineage = make_lineage()
    quality = pd.DataFrame(
        quality_rows("think-sft", "on", [[True, True], [True, False], [True, True]])
        + quality_rows("think-sft", "off", [[False, False], [False, True], [False, False]])
        + quality_rows("base", "on", [[True, True]] * 3)
    )
    table = cot_table(make_diversity(), lineage, quality, n_boot=N_BOOT)
    assert list(table.columns) == cot_module.COLUMNS
    assert set(table["model"]) == {"think-sft", "think-dpo"}
    row = pick(
        table,
        model="think-sft",
        task="gsm8k",
        kind="diversity",
        scope="per_input",
        subset="all",
        metric="ead",
    )
    assert row["difference"] == pytest.approx(
        expected_mean("think-sft", "on") - expected_mean("think-sft", "off")
    )
    # Every prompt differs by the same amount: a zero-width interval away from 0.
    assert row["ci_low"] == pytest.approx(row["difference"]) and bool(row["significant"])
    dpo = pick(
        table,
        model="think-dpo",
        task="gsm8k",
        kind="diversity",
        scope="per_input",
        subset="all",
        metric="ead",
    )
    assert dpo["difference"] == pytest.approx(-0.1) and bool(dpo["significant"])
    acc = pick(table, model="think-sft", kind="quality", metric="accuracy_at_1")
    assert (acc["value_on"], acc["value_off"], acc["difference"]) == (1.0, 0.0, 1.0)
    pass1 = pick(table, model="think-sft", kind="quality", metric="pass_at_1")
    assert pass1["difference"] == pytest.approx(5 / 6 - 1 / 6)
    across = pick(
        table,
        model="think-sft",
        task="gsm8k",
        kind="diversity",
        scope="across_input",
        subset="all",
        metric="ead",
    )
    assert pd.isna(across["significant"]) and math.isnan(across["ci_low"])


def test_cot_identical_runs_are_not_significant():
    rng = np.random.default_rng(3)
    values = list(rng.uniform(0.2, 0.8, size=10))
    rows = per_prompt_rows("base", values) + per_prompt_rows("sft", values)
    rows += per_prompt_rows("sft", values, cot="off")
    table = cot_table(pd.DataFrame(rows), Lineage.from_models(CHAIN), n_boot=N_BOOT)
    row = table.iloc[0]
    assert (row["difference"], row["ci_low"], row["ci_high"]) == (0.0, 0.0, 0.0)
    assert not bool(row["significant"])


# ----------------------------------------------------------------------------- decomposition
def decomposition_input() -> pd.DataFrame:
    rows = per_prompt_rows("base", [0.8] * 6)
    rows += per_prompt_rows("base", [0.7] * 4, subset="correct", prompts=[0, 1, 2, 3])
    rows += per_prompt_rows("sft", [0.5] * 6)
    rows += per_prompt_rows("sft", [0.45] * 3, subset="correct", prompts=[1, 2, 5])
    rows += per_prompt_rows("dpo", [0.4] * 6)
    rows += per_prompt_rows("dpo", [0.4] * 6, subset="correct")
    # A second verifiable task where the base never has two correct outputs.
    rows += per_prompt_rows("base", [0.8] * 4, task="math")
    rows += per_prompt_rows("sft", [0.5] * 4, task="math")
    rows += per_prompt_rows("sft", [0.45] * 4, task="math", subset="correct")
    return pd.DataFrame(rows)


def test_decomposition_known_answer_and_coverage():
    table = decomposition_table(
        decomposition_input(), Lineage.from_models(CHAIN), n_boot=N_BOOT, metrics=("sbert",)
    )
    assert list(table.columns) == decomposition_module.COLUMNS
    sft = pick(table, model="sft", task="gsm8k", reference="base")
    assert (sft["n_prompts"], sft["n_prompts_paired"]) == (2, 6)
    assert sft["coverage"] == pytest.approx(2 / 6)
    assert sft["total"] == pytest.approx(0.3)
    assert sft["residual"] == pytest.approx(0.25)
    assert sft["quality"] == pytest.approx(0.05)
    assert sft["quality_share"] == pytest.approx(0.05 / 0.3)
    assert sft["total_ci_low"] == pytest.approx(0.3) and sft["quality_ci_high"] == pytest.approx(
        0.05
    )
    dpo_parent = pick(table, model="dpo", task="gsm8k", reference="parent")
    assert dpo_parent["reference_model"] == "sft" and dpo_parent["n_prompts"] == 3
    assert dpo_parent["total"] == pytest.approx(0.1)
    assert dpo_parent["residual"] == pytest.approx(0.05)
    dpo_base = pick(table, model="dpo", task="gsm8k", reference="base")
    assert dpo_base["n_prompts"] == 4 and dpo_base["residual"] == pytest.approx(0.3)
    math_row = pick(table, model="sft", task="math", reference="base")
    assert math_row["n_prompts"] == 0 and math_row["coverage"] == 0.0
    assert math.isnan(math_row["total"]) and math.isnan(math_row["quality"])
    assert not (table["model"] == "base").any()


def test_decomposition_skips_tasks_without_correct_subsets():
    table = decomposition_table(
        make_diversity()[lambda d: d["subset"] == "all"], make_lineage(), n_boot=N_BOOT
    )
    assert table.empty and list(table.columns) == decomposition_module.COLUMNS


# ----------------------------------------------------------------------------- quality
def test_quality_table_matches_quality_summary_and_adds_intervals():
    rng = np.random.default_rng(0)
    quality = pd.DataFrame(
        quality_rows("base", "on", (rng.random((10, 4)) < 0.3).tolist())
        + quality_rows("think-sft", "on", (rng.random((10, 4)) < 0.7).tolist())
        + quality_rows("think-sft", "off", (rng.random((10, 4)) < 0.5).tolist())
    )
    table = quality_table(quality, make_lineage(), n_boot=N_BOOT)
    summary = quality_summary(quality)
    merged = summary.merge(table, on=["model", "task", "cot"], suffixes=("", "_t"))
    assert len(merged) == len(summary) == len(table)
    for column in [
        "n_prompts",
        "accuracy_at_1",
        "majority_at_k",
        "pass_at_1",
        "pass_at_4",
        "mean_score",
        "extraction_rate",
    ]:
        np.testing.assert_allclose(
            merged[column].astype(float), merged[f"{column}_t"].astype(float)
        )
    assert {"pass_at_2", "pass_at_4_ci_low", "accuracy_at_1_ci_high", "lineage"} <= set(
        table.columns
    )
    assert table["pass_at_16"].isna().all()
    ok = table["accuracy_at_1_ci_low"] <= table["accuracy_at_1"] + 1e-12
    assert ok.all() and (table["accuracy_at_1"] <= table["accuracy_at_1_ci_high"] + 1e-12).all()
    assert list(table["model"]) == ["base", "think-sft", "think-sft"]
    with pytest.raises(ValueError, match="mystery"):
        quality_table(quality.assign(model="mystery"), make_lineage())


# ----------------------------------------------------------------------------- entry points
def test_build_write_and_read_tables(tmp_path: Path):
    quality = pd.DataFrame(
        quality_rows("think-sft", "on", [[True, False]] * 3)
        + quality_rows("think-sft", "off", [[False, False]] * 3)
    )
    generations = quality[["model", "task", "cot", "prompt_id", "sample"]].assign(
        finish_reason="stop", think_closed=True
    )
    tables = build_tables(
        make_diversity(), quality, make_lineage(), generations=generations, n_boot=50, seed=1
    )
    assert tuple(tables) == TABLE_NAMES
    assert len(tables["truncation"]) == 2  # think-sft CoT on and off
    assert "ci_low" in tables["diversity"].columns
    written = write_tables(tables, tmp_path / "tables", metadata={"n_boot": 50})
    assert len(written) == 2 * len(TABLE_NAMES)
    assert io.read_metadata(tmp_path / "tables" / "cot.parquet") == {"table": "cot", "n_boot": 50}
    back = read_tables(tmp_path / "tables")
    for name, table in tables.items():
        assert list(back[name].columns) == list(table.columns)
        assert len(back[name]) == len(table)
        assert list(pd.read_csv(tmp_path / "tables" / f"{name}.csv").columns) == list(table.columns)
    without = build_tables(make_diversity(), None, make_lineage(), n_boot=0)
    assert "quality" not in without and "truncation" not in without
    assert without["retention"]["ratio_to_base_ci_low"].isna().all()


def test_build_tables_on_empty_input():
    empty = make_diversity().iloc[:0]
    tables = build_tables(empty, None, make_lineage(), n_boot=10)
    assert set(tables) == {"diversity", "retention", "stages", "cot", "decomposition"}
    assert all(table.empty for table in tables.values())


def test_bad_input_is_named():
    diversity = make_diversity()
    diversity.loc[0, "model"] = "mystery-7b"
    for build in (retention_table, stage_table, cot_table, decomposition_table):
        with pytest.raises(ValueError, match="mystery-7b"):
            build(diversity, make_lineage())
