"""score_generations (quality rows from generations) and the quality metrics."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from divtrace.errors import ContractError, JudgeError
from divtrace.io import QUALITY, conform, empty_frame
from divtrace.quality import score as score_module
from divtrace.quality.base import Judgement
from divtrace.quality.metrics import (
    IFEVAL_COLUMNS,
    IFEVAL_PROMPT_COLUMNS,
    PASS_KS,
    PER_PROMPT_COLUMNS,
    SUMMARY_COLUMNS,
    answer_classes,
    majority_vote,
    pass_at_k,
    per_prompt,
    quality_summary,
)
from divtrace.quality.score import JUDGES, UNCLOSED, get_judge, score_generations
from divtrace.tasks.gsm8k import FAMILY as GSM8K
from divtrace.tasks.prompts import build_prompts, read_jsonl


def _prompts(golds: Mapping[str, str], task: str = "gsm8k") -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "task": task,
                "prompt_id": pid,
                "index": i,
                "text": f"Question {i}\n\nAnswer:",
                "messages": None,
                "reference": json.dumps({"answer": gold}),
                "meta": "{}",
            }
            for i, (pid, gold) in enumerate(golds.items())
        ],
        schema=empty_frame("prompts").schema,
    )


def _generations(rows: Sequence[tuple[str, int, str, bool | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "model": "m",
                "task": "gsm8k",
                "cot": "on",
                "prompt_id": pid,
                "sample": sample,
                "seed": 1,
                "prompt_text": "",
                "raw": answer,
                "reasoning": None,
                "answer": answer,
                "think_closed": closed,
                "n_tokens": 3,
                "finish_reason": "stop",
                "backend": "test",
            }
            for pid, sample, answer, closed in rows
        ],
        schema=empty_frame("generations").schema,
    )


# ---------------------------------------------------------------------------------------------
# score_generations
# ---------------------------------------------------------------------------------------------


def test_score_generations_gsm8k_rows_follow_quality_contract() -> None:
    prompts = _prompts({"gsm8k/0": "18", "gsm8k/1": "3"})
    generations = _generations(
        [
            ("gsm8k/1", 1, "The answer is 4.", None),
            ("gsm8k/0", 0, "She makes $18.\n#### 18", None),
            ("gsm8k/1", 0, "2 + 1 = \\boxed{3}", None),
            ("gsm8k/0", 1, "I am not sure.", None),
        ]
    )
    quality = score_generations("gsm8k", prompts, generations)
    assert quality.columns == [*QUALITY.names, "vote"]
    assert quality.drop("vote").schema == empty_frame("quality").schema
    conform(quality, "quality")  # raises if the contract is broken
    # prompt-table order, then sample
    assert list(zip(quality["prompt_id"], quality["sample"], strict=True)) == [
        ("gsm8k/0", 0),
        ("gsm8k/0", 1),
        ("gsm8k/1", 0),
        ("gsm8k/1", 1),
    ]
    assert quality["correct"].to_list() == [True, False, True, False]
    assert quality["score"].to_list() == [1.0, 0.0, 1.0, 0.0]
    assert quality["extracted"].to_list() == ["18", None, "3", "4"]
    assert quality["detail"][1] == "no answer found"
    assert quality.select("model", "task", "cot").unique().rows() == [("m", "gsm8k", "on")]


def test_unclosed_reasoning_is_incorrect_and_not_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def spy(
        answers: Sequence[str],
        references: Sequence[Mapping[str, Any]],
        prompts: Sequence[Mapping[str, Any]],
    ) -> list[Judgement]:
        seen.extend(answers)
        assert all(p["prompt_id"] == "gsm8k/0" for p in prompts)
        assert all(r == {"answer": "18"} for r in references)
        return [Judgement(True, 1.0, a, "spy") for a in answers]

    monkeypatch.setattr(score_module, "get_judge", lambda family: spy)
    prompts = _prompts({"gsm8k/0": "18"})
    generations = _generations(
        [
            ("gsm8k/0", 0, "closed 18", True),
            ("gsm8k/0", 1, "still thinking ... 18", False),
            ("gsm8k/0", 2, "no think block 18", None),
        ]
    )
    quality = score_generations("gsm8k", prompts, generations)
    assert seen == ["closed 18", "no think block 18"]
    row = quality.row(1, named=True)
    assert (row["correct"], row["score"], row["extracted"], row["detail"]) == (
        False,
        0.0,
        None,
        UNCLOSED,
    )
    assert quality["correct"].to_list() == [True, False, True]
    assert quality["detail"].to_list() == ["spy", UNCLOSED, "spy"]
    # An all-null think_closed (no reasoning model), even untyped, judges every sample.
    seen.clear()
    untyped = generations.with_columns(think_closed=pl.lit(None))
    assert score_generations("gsm8k", prompts, untyped)["correct"].to_list() == [True] * 3
    assert len(seen) == 3


def test_samples_whose_prompt_did_not_fit_get_no_quality_row() -> None:
    prompts = _prompts({"gsm8k/0": "18", "gsm8k/1": "3"})
    generations = _generations(
        [
            ("gsm8k/0", 0, "#### 18", None),
            ("gsm8k/0", 1, "#### 17", None),
            ("gsm8k/1", 0, "", None),
            ("gsm8k/1", 1, "", None),
        ]
    )
    generations = generations.with_columns(
        finish_reason=pl.when(pl.col("prompt_id") == "gsm8k/1")
        .then(pl.lit("prompt_too_long"))
        .otherwise("finish_reason")
    )
    quality = score_generations("gsm8k", prompts, generations)
    assert list(zip(quality["prompt_id"], quality["correct"], strict=True)) == [
        ("gsm8k/0", True),
        ("gsm8k/0", False),
    ]


def test_all_unclosed_needs_no_judge() -> None:
    prompts = _prompts({"p/0": "1"})
    generations = _generations([("p/0", 0, "...", False)])
    quality = score_generations("no-such-family", prompts, generations)
    assert quality["detail"].to_list() == [UNCLOSED]


def test_unknown_prompt_id_is_named() -> None:
    prompts = _prompts({"gsm8k/0": "18"})
    generations = _generations([("gsm8k/0", 0, "18", None), ("gsm8k/77", 0, "18", None)])
    with pytest.raises(ContractError, match="gsm8k/77"):
        score_generations("gsm8k", prompts, generations)


def test_bad_inputs_are_reported() -> None:
    prompts = _prompts({"gsm8k/0": "18"})
    with pytest.raises(ContractError, match="answer"):
        score_generations("gsm8k", prompts, _generations([]).drop("answer"))
    twice = _generations([("gsm8k/0", 0, "18", None), ("gsm8k/0", 0, "18", None)])
    with pytest.raises(ContractError, match="repeat"):
        score_generations("gsm8k", prompts, twice)
    with pytest.raises(ContractError, match="repeats prompt_id"):
        score_generations("gsm8k", pl.concat([prompts, prompts]), _generations([]))
    broken = prompts.with_columns(reference=pl.lit("{not json"))
    with pytest.raises(ContractError, match="gsm8k/0"):
        score_generations("gsm8k", broken, _generations([("gsm8k/0", 0, "18", None)]))
    with pytest.raises(JudgeError, match="no correctness judge"):
        score_generations("writingprompts", prompts, _generations([("gsm8k/0", 0, "18", None)]))


def test_empty_generations_give_empty_quality() -> None:
    quality = score_generations("gsm8k", _prompts({"gsm8k/0": "1"}), _generations([]))
    assert quality.is_empty() and quality.schema == empty_frame("quality").schema


def test_registry_is_lazy_and_complete() -> None:
    assert set(JUDGES) == {
        "gsm8k",
        "math_algebra",
        "math_geometry",
        "cruxeval",
        "truthfulqa",
        "humaneval",
        "mbpp",
        "ifeval",
    }
    assert all(":" in target for target in JUDGES.values())
    # One definition: the scored families are the verifiable ones, and the workflow's.
    from divtrace.config import Study
    from divtrace.tasks import FAMILIES

    assert set(JUDGES) == {name for name, family in FAMILIES.items() if family.verifiable}
    study = Study({"tasks": {name: {} for name in FAMILIES}})
    assert {t for t in FAMILIES if study.is_verifiable(t)} == set(JUDGES)
    for target in set(JUDGES.values()):  # every judge the families name exists
        module, _, function = target.partition(":")
        assert callable(getattr(__import__(module, fromlist=[function]), function)), target
    for family in ("gsm8k", "math_algebra", "math_geometry", "cruxeval", "truthfulqa"):
        assert callable(get_judge(family))
    with pytest.raises(JudgeError, match="writingprompts"):
        get_judge("writingprompts")


def test_score_real_gsm8k_prompts_with_k_1(shared_real) -> None:
    records = read_jsonl(shared_real / "gsm8k_test_100.jsonl")
    prompts = build_prompts(
        "gsm8k", GSM8K, records, n=20, seed=0, source=str(shared_real / "gsm8k_test_100.jsonl")
    )
    rows = []
    for prompt in prompts.iter_rows(named=True):
        solution = records[json.loads(prompt["meta"])["row"]]["answer"]
        rows.append((prompt["prompt_id"], 0, solution, None))
    quality = score_generations("gsm8k", prompts, _generations(rows))
    assert len(quality) == 20 and quality["correct"].all()
    summary = quality_summary(quality)
    assert summary["accuracy_at_1"][0] == 1.0
    assert summary["samples_per_prompt"][0] == 1
    assert summary["pass_at_4"][0] is None  # missing: k > n


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 4, 5, 8])
def test_pass_at_k_matches_brute_force(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_edges() -> None:
    assert pass_at_k(16, 0, 16) == 0.0
    assert pass_at_k(16, 1, 16) == 1.0
    assert pass_at_k(16, 4, 1) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_majority_vote_ties_and_missing() -> None:
    # "2" and "3" both twice: a tie for the top counts as incorrect (the paper's rule), even when
    # the answer that appears first is the right one.
    assert majority_vote([0, 1, 2, 3], ["3", "2", "2", "3"], [True, False, False, True]) == (
        None,
        False,
    )
    # the order of the input rows does not matter, sample indices do
    assert majority_vote([2, 0, 3, 1], ["2", "3", "3", "2"], [True, True, True, True]) == (
        None,
        False,
    )
    assert majority_vote([3, 0, 1, 2], ["5", "5", "4", "5"], [True, True, False, True]) == (
        "5",
        True,
    )
    # whitespace is ignored
    assert majority_vote([0, 1, 2], [None, " 5", "5 "], [False, True, True]) == ("5", True)
    # unparsed answers vote as one class: it wins (3 against 2), or ties (2 against 2)
    assert majority_vote(
        [0, 1, 2, 3, 4], [None, None, None, "5", "5"], [False, False, False, True, True]
    ) == (None, False)
    assert majority_vote([0, 1, 2, 3], [None, "5", None, "5"], [False, True, False, True]) == (
        None,
        False,
    )
    assert majority_vote([0, 1], [None, None], [False, False]) == (None, False)
    assert majority_vote([], [], []) == (None, False)


@pytest.mark.parametrize(
    ("extracted", "correct"),
    [
        # thousands separators and trailing zeros
        (["1,000", "1000", "1000.0", "999", "999"], [True, True, True, False, False]),
        (["18.00", "18", "18.0", "17", "17"], [True, True, True, False, False]),
        # a fraction, its decimal and its slash form
        (["\\frac{1}{2}", "0.5", "1/2", "2", "2"], [True, True, True, False, False]),
    ],
)
def test_majority_vote_groups_equivalent_math_answers(
    extracted: list[str], correct: list[bool]
) -> None:
    from divtrace.quality.math import answers_match

    samples = list(range(len(extracted)))
    # As strings, the wrong answer has the most votes (2 against 1 + 1 + 1) ...
    assert majority_vote(samples, extracted, correct) == (extracted[-1], False)
    # ... as math, the right one (3 against 2); its first answer names the class.
    assert majority_vote(samples, extracted, correct, answers_match) == (extracted[0], True)


def test_majority_vote_classes_are_greedy_and_the_first_sample_decides() -> None:
    def same(a: str, b: str) -> bool:  # a non-transitive "equivalence": the first letter
        return a[0] == b[0] or {a, b} == {"ab", "xy"}

    assert answer_classes(["ab", "ac", "xy", "xz", "b"], same) == [0, 0, 0, 1, 2]
    # "xz" matches "xy" but not "ab", the first answer of xy's class: it starts its own class.
    assert answer_classes(["xz", "ab", "xy"], same) == [0, 1, 0]
    # A class whose samples disagree on correctness: the class's first sample decides.
    assert majority_vote(
        [0, 1, 2, 3], ["ac", "ab", "ab", "b"], [False, True, True, False], same
    ) == (
        "ac",
        False,
    )
    cache: dict[tuple[str, str], bool] = {}
    assert answer_classes(["ab", "b", "ac"], same, cache) == [0, 1, 0]
    assert cache == {("ab", "b"): False, ("ab", "ac"): True}


def _quality(
    rows: Sequence[tuple[str, int, bool, str | None]], model: str = "m", task: str = "gsm8k"
) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "model": model,
                "task": task,
                "cot": "on",
                "prompt_id": pid,
                "sample": s,
                "correct": ok,
                "score": float(ok),
                "extracted": ex,
                "detail": UNCLOSED if ex is None else "x",
            }
            for pid, s, ok, ex in rows
        ],
        schema=empty_frame("quality").schema,
    )


def test_quality_summary_by_hand() -> None:
    rows: list[tuple[str, int, bool, str | None]] = []
    # prompt a: 4 samples, 1 correct (sample 1), majority "7" wrong
    rows += [("a", 0, False, "7"), ("a", 1, True, "5"), ("a", 2, False, "7"), ("a", 3, False, None)]
    # prompt b: 4 samples, 3 correct, sample 0 correct
    rows += [("b", 0, True, "1"), ("b", 1, True, "1"), ("b", 2, False, "2"), ("b", 3, True, "1")]
    quality = _quality(rows)
    prompts = per_prompt(quality)
    assert list(prompts.columns) == PER_PROMPT_COLUMNS
    assert prompts["n"].to_list() == [4, 4] and prompts["c"].to_list() == [1, 3]
    summary = quality_summary(quality)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert len(summary) == 1
    row = summary.row(0, named=True)
    assert (row["n_prompts"], row["n_samples"], row["samples_per_prompt"]) == (2, 8, 4)
    assert row["accuracy_at_1"] == pytest.approx(0.5)
    assert row["majority_at_k"] == pytest.approx(0.5)
    assert row["pass_at_1"] == pytest.approx((0.25 + 0.75) / 2)
    assert row["pass_at_4"] == pytest.approx(1.0)
    assert row["pass_at_16"] is None
    assert row["extraction_rate"] == pytest.approx(7 / 8)
    assert row["mean_score"] == pytest.approx(0.5)
    assert row["unclosed_rate"] == pytest.approx(1 / 8)


def test_quality_summary_groups_and_k1() -> None:
    quality = pl.concat(
        [
            _quality([("a", 0, True, "1"), ("b", 0, False, "2")], model="m1"),
            _quality([("a", 0, False, "3"), ("b", 0, False, None)], model="m2"),
        ]
    )
    summary = quality_summary(quality)
    assert summary["model"].to_list() == ["m1", "m2"]
    assert summary["accuracy_at_1"].to_list() == [0.5, 0.0]
    assert summary["pass_at_1"].to_list() == [0.5, 0.0]
    assert summary["majority_at_k"].to_list() == [0.5, 0.0]
    assert summary["pass_at_4"].to_list() == [None, None]


def test_pass_at_k_at_the_papers_k_and_the_powers_of_two() -> None:
    # One prompt with 16 samples, 3 correct: every k of PASS_KS, the unbiased estimator.
    assert PASS_KS == (1, 2, 4, 5, 8, 10, 16)
    rows = [("a", s, s in (2, 7, 11), str(s)) for s in range(16)]
    prompts = per_prompt(_quality(rows))
    summary = quality_summary(_quality(rows))
    for k in PASS_KS:
        expected = 1 - math.comb(13, k) / math.comb(16, k)
        assert prompts[f"pass_at_{k}"][0] == pytest.approx(expected, abs=1e-12)
        assert summary[f"pass_at_{k}"][0] == pytest.approx(expected, abs=1e-12)
    assert prompts["pass_at_16"][0] == 1.0 and prompts["pass_at_1"][0] == pytest.approx(3 / 16)
    # Five samples: k = 8, 10, 16 are missing (k > n), k = 5 is "any of the five".
    five = per_prompt(_quality([("a", s, s == 4, "1") for s in range(5)]))
    assert five["pass_at_5"][0] == 1.0 and five["pass_at_4"][0] == pytest.approx(0.8)
    assert [five[f"pass_at_{k}"][0] for k in (8, 10, 16)] == [None, None, None]


def test_majority_at_k_per_task_family() -> None:
    # One prompt per task: three equivalent right answers (no two the same string) against two
    # equal wrong ones and one more wrong one.
    votes = [("1,000", True), ("1000", True), ("1000.00", True), ("999", False), ("999", False)]
    votes.append(("7", False))
    crux = [("[1, 2]", True), ("[1,2]", True), ("[1,  2]", True), ("(1, 2)", False)]
    crux += [("(1, 2)", False), ("3", False)]
    frames = [
        _quality([("p", s, ok, ex) for s, (ex, ok) in enumerate(votes)], task=task)
        for task in ("gsm8k", "math_algebra", "math_geometry")
    ]
    frames.append(_quality([("p", s, ok, ex) for s, (ex, ok) in enumerate(crux)], task="cruxeval"))
    frames += [
        _quality([("p", s, ok, ex) for s, (ex, ok) in enumerate(votes)], task=task)
        for task in ("humaneval", "mbpp", "truthfulqa", "writingprompts", "mystery")
    ]
    quality = pl.concat(frames)
    prompts = per_prompt(quality)
    majority = dict(zip(prompts["task"], prompts["majority_at_k"], strict=True))
    assert majority == {
        "gsm8k": 1.0,  # as strings, "999" would win
        "math_algebra": 1.0,
        "math_geometry": 1.0,
        "cruxeval": 1.0,  # by literal value; as strings, "(1, 2)" would win
        "humaneval": None,
        "mbpp": None,
        "truthfulqa": None,
        "writingprompts": None,
        "mystery": None,  # not a known family
    }
    summary = quality_summary(quality)
    assert dict(zip(summary["task"], summary["majority_at_k"], strict=True)) == majority
    # Other metrics are unaffected by the family.
    assert summary["pass_at_1"].to_list() == [0.5] * 9
    # A task named otherwise than its family: the quality files' metadata says which it is.
    renamed = frames[0].with_columns(task=pl.lit("gsm8k_small"))
    assert per_prompt(renamed)["majority_at_k"].to_list() == [None]
    assert per_prompt(renamed, {"gsm8k_small": "gsm8k"})["majority_at_k"].to_list() == [1.0]
    assert quality_summary(renamed, {"gsm8k_small": "gsm8k"})["majority_at_k"].to_list() == [1.0]


def _ifeval_quality(task: str = "ifeval") -> pl.DataFrame:
    """Three IFEval prompts judged by the IFEval judge, two samples each (see the test below)."""
    instructions = {
        "ifeval/0": ["punctuation:no_comma", "detectable_format:title"],
        "ifeval/1": ["punctuation:no_comma", "startend:quotation"],
        "ifeval/2": ["punctuation:no_comma"],
        "ifeval/3": ["punctuation:no_comma"],
    }
    prompts = pl.DataFrame(
        [
            {
                "task": "ifeval",
                "prompt_id": pid,
                "index": i,
                "text": "Instruction: ...\n\nResponse:",
                "messages": None,
                "reference": json.dumps({"instruction_id_list": ids, "kwargs": [{}] * len(ids)}),
                "meta": "{}",
            }
            for i, (pid, ids) in enumerate(instructions.items())
        ],
        schema=empty_frame("prompts").schema,
    )
    generations = _generations(
        [
            ("ifeval/0", 0, "<<Dawn>>\nLight rises.", True),  # both followed
            ("ifeval/0", 1, "a, b", True),
            ("ifeval/1", 0, 'Okay here:\n"Done."', True),  # quotation: only loosely
            ("ifeval/1", 1, '"Done."', True),
            ("ifeval/2", 0, "thinking...", False),  # unclosed: judged incorrect, follows nothing
            ("ifeval/2", 1, "ok", True),
            ("ifeval/3", 0, "hmm", False),  # no sample judged: the count is unknown
            ("ifeval/3", 1, "hmm", False),
        ]
    ).with_columns(task=pl.lit("ifeval"))
    return score_generations("ifeval", prompts, generations).with_columns(task=pl.lit(task))


def test_ifeval_strict_and_loose_at_prompt_and_instruction_level() -> None:
    quality = _ifeval_quality()
    # The judge's "correct" is strict prompt-level following; its detail has both verdicts.
    detail = [json.loads(d) if d.startswith("{") else None for d in quality["detail"]]
    for ok, verdicts in zip(quality["correct"], detail, strict=True):
        assert ok == (verdicts is not None and verdicts["follow_all_strict"])
    prompts = per_prompt(quality)
    assert prompts["n_instructions"].to_list() == [2, 2, 1, None]
    assert prompts["n_followed_strict"].to_list() == [2, 1, 0, None]
    assert prompts["n_followed_loose"].to_list() == [2, 2, 0, None]
    assert prompts["ifeval_prompt_strict"].to_list() == [1.0, 0.0, 0.0, 0.0]
    assert prompts["ifeval_prompt_loose"].to_list() == [1.0, 1.0, 0.0, 0.0]
    assert prompts["majority_at_k"].to_list() == [None] * 4  # no vote on free text
    row = quality_summary(quality).row(0, named=True)
    assert row["ifeval_prompt_strict"] == pytest.approx(1 / 4)
    assert row["ifeval_prompt_strict"] == row["accuracy_at_1"]  # the same thing, on sample 0
    assert row["ifeval_prompt_loose"] == pytest.approx(2 / 4)
    # Micro-averaged over the instructions of the prompts whose count is known (2 + 2 + 1): not
    # the mean of the per-prompt fractions (1 + 1/2 + 0) / 3.
    assert row["ifeval_instruction_strict"] == pytest.approx(3 / 5)
    assert row["ifeval_instruction_loose"] == pytest.approx(4 / 5)
    assert row["majority_at_k"] is None
    # Other tasks have none of them; a task named otherwise is IFEval by its family.
    mixed = quality_summary(
        pl.concat([quality, _quality([("a", 0, True, "1")])], how="diagonal_relaxed")
    )
    assert mixed.filter(task="gsm8k").select(IFEVAL_COLUMNS).null_count().row(0) == (1,) * 4
    renamed = _ifeval_quality("ifeval_small")
    assert quality_summary(renamed).select(IFEVAL_COLUMNS).null_count().row(0) == (1,) * 4
    named = quality_summary(renamed, {"ifeval_small": "ifeval"})
    assert named.select(IFEVAL_COLUMNS).row(0) == quality_summary(quality).select(
        IFEVAL_COLUMNS
    ).row(0)


def test_ifeval_columns_refuse_a_correct_that_is_not_strict_following() -> None:
    quality = _ifeval_quality()
    flipped = quality.with_columns(
        correct=pl.when(pl.col("prompt_id") == "ifeval/1")
        .then(~pl.col("correct"))
        .otherwise(pl.col("correct"))
    )
    with pytest.raises(ContractError, match="ifeval/1"):
        per_prompt(flipped)
    # An unclosed sample was not judged: it cannot have followed every instruction.
    unjudged = quality.with_columns(correct=pl.col("correct") | (pl.col("detail") == UNCLOSED))
    with pytest.raises(ContractError, match="ifeval/2"):
        per_prompt(unjudged)
    # A table without the judge's details (hand-made, or synthetic) has nothing to check.
    bare = quality.with_columns(detail=pl.lit(None, dtype=pl.String), correct=pl.lit(True))
    assert per_prompt(bare).height == 4
    # ... and nothing to report: the IFEval columns are null, not 0 (no instruction is known)
    assert per_prompt(bare).select(IFEVAL_PROMPT_COLUMNS).null_count().row(0) == (4,) * len(
        IFEVAL_PROMPT_COLUMNS
    )
    assert quality_summary(bare).select(IFEVAL_COLUMNS).null_count().row(0) == (1,) * 4


def test_quality_summary_empty() -> None:
    summary = quality_summary(_quality([]))
    assert len(summary) == 0 and list(summary.columns) == SUMMARY_COLUMNS


def test_batch_judges_refuse_answers_without_their_prompts():
    from divtrace.quality.exact import judge_cruxeval
    from divtrace.quality.ifeval import judge_ifeval
    from divtrace.quality.math import judge_math

    for judge in (judge_math, judge_cruxeval, judge_ifeval):
        with pytest.raises(ValueError, match="2 answers, 1 references and 1 prompts"):
            judge(["a", "b"], [{}], [{}])


def test_score_writes_each_samples_answer_class_and_per_prompt_counts_it() -> None:
    """The answer classes are computed once, by the scoring job; per_prompt then votes by them
    without calling the equivalence, and gets what it would have computed itself."""
    prompts = _prompts({"gsm8k/0": "1000", "gsm8k/1": "3"})
    generations = _generations(
        [
            ("gsm8k/0", 0, "#### 1,000", None),
            ("gsm8k/0", 1, "#### 999", None),
            ("gsm8k/0", 2, "#### 1000", None),
            ("gsm8k/0", 3, "#### 999.0", None),
            ("gsm8k/0", 4, "#### 1000.00", None),
            ("gsm8k/1", 0, "no idea", None),
            ("gsm8k/1", 1, "#### 3", None),
        ]
    )
    quality = score_generations("gsm8k", prompts, generations)
    votes = dict(zip(quality["sample"].to_list()[:5], quality["vote"].to_list()[:5], strict=True))
    assert votes == {0: "1,000", 1: "999", 2: "1,000", 3: "999", 4: "1,000"}
    assert quality.filter(prompt_id="gsm8k/1", sample=0)["vote"].item() is None
    computed = per_prompt(quality.drop("vote"))
    assert computed["majority_at_k"].to_list() == [1.0, 0.0]  # 3 votes for 1000; a 1-1 tie
    import divtrace.quality.math as math_judge

    def no_call(gold: str, pred: str) -> bool:
        raise AssertionError("per_prompt called the equivalence although the classes are known")

    original = math_judge.answers_match
    math_judge.answers_match = no_call
    try:
        assert_frame_equal(per_prompt(quality), computed)
        with pytest.raises(AssertionError, match="called the equivalence"):
            per_prompt(quality.drop("vote"))
    finally:
        math_judge.answers_match = original
    # A family whose vote has no meaning writes no classes.
    from divtrace.quality.votes import vote_column

    assert vote_column(quality, "truthfulqa").is_null().all()
    assert vote_column(quality, "gsm8k").to_list() == quality["vote"].to_list()
