"""Summary table of diversity scores and the lineage-trajectory figure (synthetic data, fast)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from divtrace import io
from divtrace.analysis import BASE_LABEL, summarize_diversity, write_summary
from divtrace.analysis.aggregate import summary_columns
from divtrace.figures import plot_lineage_trajectories
from divtrace.lineage import Lineage

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


def make_diversity(n_dropped: bool = False) -> pd.DataFrame:
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
    frame = pd.DataFrame(rows)
    return frame if n_dropped else frame.drop(columns="n_dropped")


def row(
    table: pd.DataFrame,
    model: str,
    cot: str = "on",
    task: str = "gsm8k",
    scope: str = "per_input",
    subset: str = "all",
    metric: str = "ead",
) -> pd.Series:
    hit = table[
        (table["model"] == model)
        & (table["cot"] == cot)
        & (table["task"] == task)
        & (table["scope"] == scope)
        & (table["subset"] == subset)
        & (table["metric"] == metric)
    ]
    assert len(hit) == 1, hit
    return hit.iloc[0]


def test_summary_shape_columns_and_order():
    table = summarize_diversity(make_diversity(), make_lineage())
    assert list(table.columns) == summary_columns()
    assert len(table) == len(MEANS) * len(TASKS) * len(METRICS) * 2 * 2
    assert not table.duplicated(["model", "task", "cot", "scope", "subset", "metric"]).any()
    models_in_order = list(dict.fromkeys(table["model"]))
    assert models_in_order == ["base", "instruct-sft", "think-sft", "think-dpo"]
    first = table[table["model"] == "think-sft"]
    assert list(dict.fromkeys(first["cot"])) == ["on", "off"]
    # Deterministic: shuffled input gives the same table.
    shuffled = make_diversity().sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(summarize_diversity(shuffled, make_lineage()), table)


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
    assert pd.isna(base["parent"]) and base["depth"] == 0 and base["stage"] == "base"


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


def test_ratio_to_base_and_parent():
    table = summarize_diversity(make_diversity(), make_lineage())
    base = row(table, "base")
    assert base["value_base"] == pytest.approx(0.8)
    assert base["ratio_to_base"] == pytest.approx(1.0)
    assert math.isnan(base["value_parent"]) and math.isnan(base["ratio_to_parent"])

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
    diversity = make_diversity()
    zero = (diversity["model"] == "base") & (diversity["metric"] == "ead")
    diversity.loc[zero, "value"] = 0.0
    table = summarize_diversity(diversity, make_lineage())
    ead = table[table["metric"] == "ead"]
    assert ead["ratio_to_base"].isna().all()  # includes the base itself: 0 / 0
    assert not np.isinf(table[["ratio_to_base", "ratio_to_parent"]].to_numpy()).any()
    child = row(table, "instruct-sft")
    assert math.isnan(child["ratio_to_parent"])
    assert row(table, "think-dpo")["ratio_to_parent"] == pytest.approx(0.5)
    assert row(table, "think-dpo", metric="sbert")["ratio_to_base"] == pytest.approx(0.3 / 0.8)


def test_missing_base_rows_give_nan():
    diversity = make_diversity()
    diversity = diversity[diversity["model"] != "base"]
    table = summarize_diversity(diversity, make_lineage())
    assert table["value_base"].isna().all()
    assert row(table, "think-dpo")["ratio_to_parent"] == pytest.approx(0.5)


def test_unknown_model_is_named():
    diversity = make_diversity()
    diversity.loc[0, "model"] = "mystery-7b"
    with pytest.raises(ValueError, match="mystery-7b"):
        summarize_diversity(diversity, make_lineage())


@pytest.mark.parametrize("column", ["metric", "value", "prompt_id", "n_outputs"])
def test_missing_column_is_named(column):
    with pytest.raises(ValueError, match=column):
        summarize_diversity(make_diversity().drop(columns=column), make_lineage())


def test_bad_values_are_named():
    diversity = make_diversity()
    diversity.loc[0, "scope"] = "global"
    with pytest.raises(ValueError, match=r"scope.*global"):
        summarize_diversity(diversity, make_lineage())
    duplicated = pd.concat([make_diversity(), make_diversity().iloc[:1]])
    with pytest.raises(ValueError, match="duplicate"):
        summarize_diversity(duplicated, make_lineage())


def test_unlabelled_branch_takes_leaf_name():
    lineage = Lineage.from_models({"b": {}, "x": {"parent": "b", "stage": "sft"}})
    frame = make_diversity()
    frame = frame[frame["model"].isin(["base", "instruct-sft"])].copy()
    frame["model"] = frame["model"].map({"base": "b", "instruct-sft": "x"})
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
    assert list(back.columns) == list(table.columns)
    assert len(back) == len(table)
    np.testing.assert_allclose(back["ratio_to_parent"], table["ratio_to_parent"])
    assert io.read_metadata(parquet) == {"table": "diversity_summary", "seed": 1}
    from_csv = pd.read_csv(csv)
    assert list(from_csv.columns) == list(table.columns) and len(from_csv) == len(table)
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == [
        "diversity.csv",
        "diversity.parquet",
    ]


def test_trajectory_figure_writes_pdf_and_png(tmp_path: Path):
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
    lineage = make_lineage()
    table = summarize_diversity(make_diversity(), lineage)
    with pytest.raises(ValueError, match="scope='nope'"):
        plot_lineage_trajectories(
            table, lineage, tmp_path / "a.pdf", tmp_path / "a.png", scope="nope"
        )
    with pytest.raises(ValueError, match="value"):
        plot_lineage_trajectories(
            table.drop(columns="value"), lineage, tmp_path / "a.pdf", tmp_path / "a.png"
        )
    assert list(tmp_path.iterdir()) == []


def test_per_input_rows_have_bootstrap_intervals():
    table = summarize_diversity(make_diversity(), make_lineage(), n_boot=300, seed=0)
    per_input = table[table["scope"] == "per_input"]
    assert per_input[["ci_low", "ci_high"]].notna().all().all()
    assert (per_input["ci_low"] <= per_input["value"] + 1e-12).all()
    assert (per_input["value"] <= per_input["ci_high"] + 1e-12).all()
    # Three prompts at mean - 0.1, mean, mean + 0.1: no resample leaves that range.
    r = row(table, "think-dpo")
    assert r["value"] - 0.1 - 1e-12 <= r["ci_low"] < r["value"] < r["ci_high"]
    assert r["ci_high"] <= r["value"] + 0.1 + 1e-12
    # across_input rows have one value per set: no interval.
    assert table.loc[table["scope"] == "across_input", ["ci_low", "ci_high"]].isna().all().all()


def test_intervals_are_seeded_and_can_be_switched_off():
    diversity = make_diversity()
    first = summarize_diversity(diversity, make_lineage(), n_boot=200, seed=5)
    again = summarize_diversity(diversity, make_lineage(), n_boot=200, seed=5)
    pd.testing.assert_frame_equal(first, again)
    other = summarize_diversity(diversity, make_lineage(), n_boot=200, seed=6)
    per_input = first["scope"] == "per_input"
    assert not np.allclose(first.loc[per_input, "ci_low"], other.loc[per_input, "ci_low"])
    off = summarize_diversity(diversity, make_lineage(), n_boot=0)
    assert off[["ci_low", "ci_high"]].isna().all().all()
    pd.testing.assert_series_equal(off["value"], first["value"])


def test_constant_prompts_give_zero_width_interval():
    diversity = make_diversity()
    diversity["value"] = 0.3
    table = summarize_diversity(diversity, make_lineage(), n_boot=100)
    per_input = table[table["scope"] == "per_input"]
    assert (per_input["ci_low"] == 0.3).all() and (per_input["ci_high"] == 0.3).all()


def test_trajectory_figure_without_interval_columns(tmp_path: Path):
    lineage = make_lineage()
    table = summarize_diversity(make_diversity(), lineage).drop(columns=["ci_low", "ci_high"])
    plot_lineage_trajectories(table, lineage, tmp_path / "t.pdf", tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes().startswith(b"\x89PNG")
