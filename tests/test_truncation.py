"""The truncation table: what the token budgets and the context cut, counted from generations."""

from __future__ import annotations

import polars as pl
import pytest

from divtrace.analysis.truncation import COLUMNS, truncation_table
from divtrace.errors import AnalysisError, ContractError
from divtrace.lineage import Lineage

LINEAGE = Lineage.from_models(
    {
        "base": {"stage": "base"},
        "think": {"parent": "base", "stage": "sft", "lineage": "think", "reasoning": True},
    }
)


def rows(model: str, cot: str, prompt: str, samples: list[tuple[str, bool | None]]) -> list[dict]:
    return [
        {
            "model": model,
            "task": "gsm8k",
            "cot": cot,
            "prompt_id": prompt,
            "sample": j,
            "finish_reason": finish,
            "think_closed": closed,
            "answer": "a long text",  # never read
        }
        for j, (finish, closed) in enumerate(samples)
    ]


def generations() -> pl.DataFrame:
    return pl.DataFrame(
        # think, CoT on: p0 two closed (one cut at the budget), p1 one closed and one unclosed
        # (left with 1 usable output), p2 too long for the context.
        rows("think", "on", "p0", [("stop", True), ("length", True)])
        + rows("think", "on", "p1", [("stop", True), ("length", False)])
        + rows("think", "on", "p2", [("prompt_too_long", None), ("prompt_too_long", None)])
        # base: no think blocks at all.
        + rows("base", "on", "p0", [("stop", None), ("stop", None)])
        + rows("base", "on", "p1", [("length", None), ("stop", None)])
    )


def test_counts_and_shares_by_hand():
    table = truncation_table(generations(), LINEAGE)
    assert table.columns == list(COLUMNS)
    assert table["model"].to_list() == ["base", "think"]
    assert table.schema["n_prompts"] == pl.Int64 and table.schema["length_share"] == pl.Float64
    think = table.row(1, named=True)
    assert (think["n_prompts"], think["n_samples"], think["n_prompt_too_long"]) == (3, 6, 1)
    assert think["length_share"] == pytest.approx(2 / 4)  # of the 4 generated samples
    assert think["unclosed_share"] == pytest.approx(1 / 4)
    # p1 has one usable output, p2 none.
    assert think["n_short_prompts"] == 2 and think["short_prompt_share"] == pytest.approx(2 / 3)
    assert (think["lineage"], think["stage"], think["parent"]) == ("think", "sft", "base")
    base = table.row(0, named=True)
    assert (base["length_share"], base["unclosed_share"], base["n_short_prompts"]) == (
        0.25,
        0.0,
        0,
    )


def test_prompts_whose_sample_zero_is_unusable_are_counted():
    # p0: sample 0 unclosed, sample 1 fine (it does not stand in across inputs); p1: fine.
    frame = pl.DataFrame(
        rows("think", "on", "p0", [("length", False), ("stop", True)])
        + rows("think", "on", "p1", [("stop", True), ("length", False)])
    )
    shuffled = frame.reverse()  # the table reads sample numbers, not row order
    for generations_ in (frame, shuffled):
        row = truncation_table(generations_, LINEAGE).row(0, named=True)
        assert row["n_sample0_unusable"] == 1 and row["n_short_prompts"] == 2
    assert truncation_table(generations(), LINEAGE)["n_sample0_unusable"].to_list() == [0, 1]


def test_a_run_with_nothing_generated_has_no_shares():
    only = pl.DataFrame(
        rows("think", "off", "p0", [("prompt_too_long", None), ("prompt_too_long", None)])
    )
    row = truncation_table(only, LINEAGE).row(0, named=True)
    assert row["length_share"] is None and row["unclosed_share"] is None
    assert row["n_short_prompts"] == 1 and row["n_prompt_too_long"] == 1


def test_bad_input_is_named():
    with pytest.raises(ContractError, match=r"lacks column\(s\) \['finish_reason'\]"):
        truncation_table(generations().drop("finish_reason"), LINEAGE)
    other = generations().with_columns(model=pl.lit("ghost"))
    with pytest.raises(AnalysisError, match=r"model\(s\) \['ghost'\] not in the lineage"):
        truncation_table(other, LINEAGE)


def test_empty_generations_give_an_empty_typed_table():
    table = truncation_table(generations().clear(), LINEAGE)
    assert table.is_empty() and table.columns == list(COLUMNS)
    assert table.schema["n_samples"] == pl.Int64 and table.schema["unclosed_share"] == pl.Float64
