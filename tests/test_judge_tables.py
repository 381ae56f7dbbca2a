"""The judge table (divtrace.analysis.judge) on hand-made judgement tables in the issue #16 row
schema: the protocols' numbers against transcriptions of the paper's formulas (PAPER.md §6.5),
parse failures kept out, the bootstrap interval, the cost, and the cells that must not vanish."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from divtrace.analysis.judge import judge_table
from divtrace.analysis.tables import build_tables
from divtrace.errors import ContractError
from divtrace.names import JUDGEMENT_COLUMNS, TABLE_NAMES
from tests.test_analysis import make_diversity, make_lineage

LABELS = {"[[A>>B]]": 1.0, "[[A>B]]": 0.75, "[[A=B]]": 0.5, "[[B>A]]": 0.25, "[[B>>A]]": 0.0}
RANK = {"win": 1.0, "tie": 0.5, "loss": 0.0}


def row(model: str, task: str, prompt: int, protocol: str, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model": model,
        "task": task,
        "cot": "on",
        "prompt_id": f"{task}-{prompt:03d}",
        "sample": 0,
        "protocol": protocol,
        "opponent": "base" if protocol == "base_pairwise" else "reference",
        "swapped": False,
        "raw": "...",
        "parsed": True,
        "verdict": None,
        "score": None,
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "judge_model": "gpt-4.1-mini",
        "template_version": "1",
    }
    base.update(fields)
    return base


def frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    table = pl.DataFrame(rows, infer_schema_length=None)
    assert tuple(table.columns) == JUDGEMENT_COLUMNS
    return table


def ranking_rows(model: str, verdicts: list[str | None]) -> list[dict[str, object]]:
    """tldr rows: a verdict per prompt from the model's side, None for an unparsed answer."""
    return [
        row(
            model,
            "tldr",
            i,
            "reference_ranking",
            swapped=i % 2 == 1,
            parsed=verdict is not None,
            verdict=verdict,
            score=None if verdict is None else RANK[verdict],
        )
        for i, verdict in enumerate(verdicts)
    ]


def one(table: pl.DataFrame, **keys: str) -> dict[str, object]:
    rows = table.filter(*(pl.col(k) == v for k, v in keys.items()))
    assert len(rows) == 1, rows
    return rows.row(0, named=True)


def test_summary_win_rate_counts_ties_half_and_leaves_parse_failures_out():
    verdicts = ["win", "tie", "loss", None, "win", "win", None, "tie"]
    table = judge_table(frame(ranking_rows("think-sft", verdicts)), make_lineage(), n_boot=200)
    got = one(table, model="think-sft", task="tldr")
    parsed = [v for v in verdicts if v is not None]
    # The paper's formula: (wins + 0.5 ties) / n over the parsed answers.
    paper = (parsed.count("win") + 0.5 * parsed.count("tie")) / len(parsed)
    assert got["value"] == pytest.approx(paper) == pytest.approx(4 / 6)
    # A failure taken as a tie (0.625) or as a loss (0.5) would give another number.
    assert got["value"] != pytest.approx((4 + 1) / 8) and got["value"] != pytest.approx(4 / 8)
    assert (got["n_judged"], got["n_parsed"], got["n_failed"], got["n_prompts"]) == (8, 6, 2, 6)
    assert got["measure"] == "win_rate" and got["opponent"] == "reference"
    assert got["raw_mean"] is None and got["position_consistency"] is None
    assert got["lineage"] == "think" and got["stage"] == "sft"
    assert got["value_ci_low"] <= got["value"] <= got["value_ci_high"]
    assert got["value_ci_low"] < got["value_ci_high"]


def pairwise_rows(model: str, rounds: list[tuple[str | None, str | None]]) -> list[dict]:
    """writingprompts rows: per prompt the label of order 1 (model = A) and of order 2 (base =
    A), None where unparsed; each row's score from the model's side (order 2 flipped), as the
    judge library writes it."""
    rows = []
    for i, (first, second) in enumerate(rounds):
        for swapped, label in ((False, first), (True, second)):
            score = None if label is None else LABELS[label]
            if swapped and score is not None:
                score = 1.0 - score
            rows.append(
                row(
                    model,
                    "writingprompts",
                    i,
                    "base_pairwise",
                    swapped=swapped,
                    parsed=label is not None,
                    verdict=label,
                    score=score,
                )
            )
    return rows


def test_two_orders_are_averaged_over_samples_with_both_and_their_agreement_reported():
    rounds: list[tuple[str | None, str | None]] = [
        ("[[A>>B]]", "[[B>A]]"),  # both orders favour the model: 1 and 1 - 0.25
        ("[[A>B]]", "[[A>B]]"),  # order 1 the model, order 2 the base: 0.75 and 0.25
        ("[[A=B]]", "[[A=B]]"),  # a tie both ways
        ("[[B>>A]]", None),  # one order only: left out of both means
        ("[[B>A]]", "[[A>>B]]"),  # the base both ways: 0.25 and 0
    ]
    table = judge_table(frame(pairwise_rows("think-sft", rounds)), make_lineage(), n_boot=100)
    got = one(table, model="think-sft", task="writingprompts")
    # The paper's procedure: r2 flipped (1 - s), win rate = mean(r1 mean, r2 mean) over the
    # samples that have both rounds.
    both = [(a, b) for a, b in rounds if a is not None and b is not None]
    r1 = np.mean([LABELS[a] for a, _ in both])
    r2 = np.mean([1 - LABELS[b] for _, b in both])
    assert got["value"] == pytest.approx((r1 + r2) / 2) == pytest.approx(0.5)
    assert got["position_consistency"] == pytest.approx(3 / 4)  # all but the second prompt
    assert (got["n_judged"], got["n_parsed"], got["n_failed"], got["n_prompts"]) == (10, 9, 1, 4)
    assert got["opponent"] == "base" and got["measure"] == "win_rate"


def wildbench_rows(model: str, scores: list[float | None]) -> list[dict[str, object]]:
    return [
        row(
            model,
            "wildbench",
            i,
            "wb_score",
            opponent="checklist",
            parsed=s is not None,
            verdict=None if s is None else str(s),
            score=s,
        )
        for i, s in enumerate(scores)
    ]


def test_wb_score_is_twice_the_raw_mean_less_five_and_keeps_the_raw_mean():
    scores: list[float | None] = [7, 8, None, 6, 9, 3]
    table = judge_table(frame(wildbench_rows("think-sft", scores)), make_lineage(), n_boot=200)
    got = one(table, model="think-sft", task="wildbench")
    raw = np.mean([s for s in scores if s is not None])
    assert got["raw_mean"] == pytest.approx(raw) == pytest.approx(6.6)
    assert got["value"] == pytest.approx((raw - 5) * 2) == pytest.approx(3.2)
    assert got["measure"] == "wb_score" and got["n_failed"] == 1
    assert got["value_ci_low"] <= got["value"] <= got["value_ci_high"]


def test_cells_of_a_task_share_their_resampled_prompts():
    """The interval resamples the prompts of a task jointly for every cell: a checkpoint rated
    one point higher on every prompt has its interval exactly two WB points higher."""
    rng = np.random.default_rng(0)
    scores = [float(s) for s in rng.integers(2, 9, size=20)]
    rows = wildbench_rows("think-sft", scores) + wildbench_rows(
        "think-dpo", [s + 1 for s in scores]
    )  # type: ignore[operator]
    table = judge_table(frame(rows), make_lineage(), n_boot=300, seed=3)
    low = one(table, model="think-sft")
    high = one(table, model="think-dpo")
    for column in ("value", "value_ci_low", "value_ci_high"):
        assert high[column] == pytest.approx(low[column] + 2)
    assert low["value_ci_high"] - low["value_ci_low"] > 0.5


def test_several_samples_per_prompt_are_averaged_per_prompt_first():
    rows = [
        *ranking_rows("think-sft", ["win", "loss"]),
        row("think-sft", "tldr", 0, "reference_ranking", sample=1, score=1.0),
        row("think-sft", "tldr", 0, "reference_ranking", sample=2, score=1.0),
    ]
    got = one(judge_table(frame(rows), make_lineage(), n_boot=10), model="think-sft")
    assert got["value"] == pytest.approx((1.0 + 0.0) / 2)  # prompt means 1 and 0, not 3/4
    assert got["n_judged"] == 4 and got["n_prompts"] == 2


def test_cost_prices_every_request_with_the_batch_discount_only_for_the_batch_api():
    rows = frame(ranking_rows("think-sft", ["win", None, "loss"]))  # 300 in, 30 out tokens
    prices = {
        "gpt-4.1-mini": {"input_per_mtok": 0.4, "output_per_mtok": 1.6, "batch_discount": 0.5}
    }
    lineage = make_lineage()
    online = one(judge_table(rows, lineage, prices=prices, backend="openai", n_boot=5))
    batch = one(judge_table(rows, lineage, prices=prices, backend="openai-batch", n_boot=5))
    unpriced = one(judge_table(rows, lineage, prices={}, backend="openai", n_boot=5))
    expected = (300 * 0.4 + 30 * 1.6) / 1e6
    assert (online["prompt_tokens"], online["completion_tokens"]) == (300, 30)
    assert online["cost_usd"] == pytest.approx(expected)
    assert batch["cost_usd"] == pytest.approx(expected / 2)
    assert unpriced["cost_usd"] is None


def test_an_expected_cell_without_judgements_stays_as_a_null_row_and_is_listed_missing():
    judgements = frame(
        ranking_rows("think-sft", ["win", "loss"]) + ranking_rows("think-dpo", [None, None])
    )
    runs = [
        ("think-sft", "tldr", "on"),
        ("think-dpo", "tldr", "on"),
        ("instruct-sft", "tldr", "on"),
    ]
    tables = build_tables(
        make_diversity(),
        None,
        make_lineage(),
        n_boot=20,
        runs=[(m, "gsm8k", c, False) for m, c in [("think-sft", "on")]],
        judgements=judgements,
        judge_runs=runs,
        judge_protocols={"tldr": "reference_ranking"},
    )
    # in the order of TABLE_NAMES (no quality or truncation table without their inputs)
    assert tuple(tables) == tuple(n for n in TABLE_NAMES if n not in ("quality", "truncation"))
    judge = tables["judge"]
    assert len(judge) == 3
    absent = one(judge, model="instruct-sft")
    assert absent["value"] is None and absent["n_judged"] == 0
    assert absent["protocol"] == "reference_ranking" and absent["measure"] == "win_rate"
    failed = one(judge, model="think-dpo")
    assert failed["value"] is None and failed["n_failed"] == 2  # never a tie or a loss
    missing = tables["missing"].filter(pl.col("table") == "judge")
    reasons = dict(zip(missing["model"], missing["reason"], strict=True))
    assert reasons == {"instruct-sft": "no samples", "think-dpo": "no samples"}


def test_missing_judge_cells_say_why_when_the_run_has_samples():
    from divtrace.analysis.missing import missing_table

    judge = judge_table(
        frame(ranking_rows("think-dpo", [None, None])),
        make_lineage(),
        runs=[("think-dpo", "tldr", "on"), ("instruct-sft", "tldr", "on")],
        protocols={"tldr": "reference_ranking"},
        n_boot=5,
    )
    counts = {("think-dpo", "tldr", "on"): (2, 0), ("instruct-sft", "tldr", "on"): (2, 0)}
    empty = pl.DataFrame(schema={"value": pl.Float64})
    missing = missing_table(empty, None, make_lineage(), counts, judge=judge)
    got = {r["model"]: (r["reason"], r["metric"], r["n_missing"]) for r in missing.to_dicts()}
    assert got == {
        "think-dpo": ("no parsed verdict", "win_rate", 2),
        "instruct-sft": ("no judgements", "win_rate", 2),
    }


def test_no_judgements_give_an_empty_table_with_its_columns():
    tables = build_tables(make_diversity(), None, make_lineage(), n_boot=5)
    assert tables["judge"].is_empty() and "value_ci_low" in tables["judge"].columns


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.drop("parsed"), "parsed"),
        (lambda t: t.with_columns(protocol=pl.lit("elo")), "elo"),
        (lambda t: t.with_columns(score=pl.lit(None, dtype=pl.Float64)), "parsed without a score"),
        (lambda t: t.with_columns(model=pl.lit("nobody")), "nobody"),
    ],
)
def test_bad_judgements_are_refused_naming_the_culprit(edit, message):
    with pytest.raises(ContractError if message != "nobody" else Exception, match=message):
        judge_table(edit(frame(ranking_rows("think-sft", ["win"]))), make_lineage(), n_boot=5)


def test_summarize_writes_the_judge_table_from_judgement_files(tmp_path):
    """`divtrace summarize` with the flags the workflow passes: the judgement files, the expected
    cells, the backend and the prices."""
    import json

    from divtrace import io
    from divtrace.cli import main

    diversity = tmp_path / "diversity.parquet"
    io.write_table(make_diversity(n_dropped=True), diversity, "diversity")
    paths = []
    for model, verdicts in (("think-sft", ["win", "tie"]), ("think-dpo", [None, "loss"])):
        path = tmp_path / f"{model}.parquet"
        io.write_frame(frame(ranking_rows(model, verdicts)), path)
        paths.append(str(path))
    runs = [
        ["think-sft", "tldr", "on"],
        ["think-dpo", "tldr", "on"],
        ["instruct-sft", "tldr", "on"],
    ]
    prices = {
        "gpt-4.1-mini": {"input_per_mtok": 0.4, "output_per_mtok": 1.6, "batch_discount": 0.5}
    }
    lineage = json.dumps(make_lineage().to_dict())
    code = main(
        [
            "summarize",
            "--diversity",
            str(diversity),
            "--lineage",
            lineage,
            "--n-boot",
            "20",
            "--judgements",
            *paths,
            "--judge-runs",
            json.dumps(runs),
            "--judge-backend",
            "openai-batch",
            "--judge-prices",
            json.dumps(prices),
            "--out-dir",
            str(tmp_path / "tables"),
        ]
    )
    assert code == 0
    judge = io.read_table(tmp_path / "tables" / "judge.parquet")
    got = {r["model"]: r for r in judge.to_dicts()}
    assert set(got) == {"think-sft", "think-dpo", "instruct-sft"}
    assert got["think-sft"]["value"] == pytest.approx(0.75)
    assert got["think-dpo"]["value"] == pytest.approx(0.0) and got["think-dpo"]["n_failed"] == 1
    assert (
        got["instruct-sft"]["value"] is None
        and got["instruct-sft"]["protocol"] == "reference_ranking"
    )
    assert got["think-sft"]["cost_usd"] == pytest.approx((200 * 0.4 + 20 * 1.6) / 1e6 / 2)
    assert (tmp_path / "tables" / "judge.csv").is_file()
