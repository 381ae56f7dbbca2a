"""Answer classes (divtrace.metrics.classes): distinct_answers, distinct_correct, mode_share."""

from __future__ import annotations

import itertools
import json

import numpy as np
import polars as pl
import pytest

from divtrace.errors import ContractError
from divtrace.metrics import compute_diversity
from divtrace.metrics.classes import CLASS, UNPARSED, class_keys, class_values, class_values_at_k
from divtrace.names import CLASS_FAMILIES


def test_class_families_are_the_voting_families_ifeval_and_code():
    from divtrace.names import CODE_FAMILIES
    from divtrace.tasks import FAMILIES

    voting = {name for name, family in FAMILIES.items() if family.votes}
    assert set(CLASS_FAMILIES) == voting | {"ifeval"} | set(CODE_FAMILIES)


def quality(task: str, extracted: list[str | None], correct: list[bool], **extra) -> pl.DataFrame:
    n = len(extracted)
    return pl.DataFrame(
        {
            "model": ["m"] * n,
            "task": [task] * n,
            "cot": ["on"] * n,
            "prompt_id": ["p"] * n,
            "sample": list(range(n)),
            "correct": correct,
            "score": [float(c) for c in correct],
            "extracted": extracted,
            "detail": [None] * n,
            **extra,
        },
        schema_overrides={"extracted": pl.String, "detail": pl.String},
    )


def test_math_classes_by_the_checkers_equivalence():
    # 1,000 and 1000 are one answer to the checker; "7" another; two unparsed samples one class
    q = quality("gsm8k", ["1,000", "1000", "7", None, None], [True, True, False, False, False])
    keys = class_keys(q, "gsm8k").to_list()
    assert keys[0] == keys[1] != keys[2]
    assert keys[3] == keys[4] == UNPARSED
    values = class_values(keys, q["correct"].to_list())
    assert values == {
        "distinct_answers": 3.0,
        "distinct_correct": 1.0,
        "mode_share": 0.4,
        "behaviours": 3.0,
    }
    # the vote column divtrace score wrote is used as it is
    voted = q.with_columns(vote=pl.Series(["a", "a", "b", None, "c"]))
    assert class_keys(voted, "gsm8k").to_list() == ["a", "a", "b", UNPARSED, "c"]


def test_ifeval_classes_by_the_verdict_vector():
    def detail(*verdicts: bool) -> str:
        return json.dumps(
            {"instructions": [{"id": "x", "strict": v, "loose": v} for v in verdicts]}
        )

    q = quality("ifeval", ["a", "b", "c"], [True, False, False]).with_columns(
        detail=pl.Series([detail(True, True), detail(True, False), detail(True, False)])
    )
    assert class_keys(q, "ifeval").to_list() == ["11", "10", "10"]
    with pytest.raises(ContractError, match="strict verdicts"):
        class_keys(q.with_columns(detail=pl.Series(["{}"] * 3)), "ifeval")
    # code's classes are behaviours (quality.behaviour, put in by divtrace diversity)
    assert class_keys(q, "humaneval") is None


def brute_mean(keys, correct, k, fn):
    return np.mean(
        [
            fn([keys[i] for i in c], [correct[i] for i in c])
            for c in itertools.combinations(range(len(keys)), k)
        ]
    )


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
def test_class_values_at_k_equal_brute_force(k):
    keys = ["a", "a", "b", "c", "c", "c", "d"]
    correct = [True, False, True, False, False, True, False]
    got = class_values_at_k(keys, correct, k, seed=0)
    for name in ("distinct_answers", "distinct_correct", "mode_share"):
        want = brute_mean(keys, correct, k, lambda ks, cs, name=name: class_values(ks, cs)[name])
        assert got[name][0] == pytest.approx(want, rel=1e-12)


def generations(task: str, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model": ["m"] * n,
            "task": [task] * n,
            "cot": ["on"] * n,
            "prompt_id": ["p"] * n,
            "sample": list(range(n)),
            "answer": [f"answer {i}" for i in range(n)],
        }
    )


def test_compute_diversity_reports_classes_per_input_for_class_families():
    q = quality("gsm8k", ["3", "3", "4", None], [True, True, False, False])
    q = q.with_columns(class_keys(q, "gsm8k"))
    names = ["distinct_answers", "distinct_correct", "mode_share", "ead"]
    table = compute_diversity(generations("gsm8k", 4), names, quality=q, k_grid=[2])
    per_input = table.filter((pl.col("scope") == "per_input") & pl.col("k").is_null())
    got = {(r["subset"], r["metric"]): r["value"] for r in per_input.iter_rows(named=True)}
    assert got[("all", "distinct_answers")] == 3
    assert got[("all", "distinct_correct")] == 1
    assert got[("all", "mode_share")] == 0.5
    assert got[("correct", "distinct_answers")] == 1
    # not across inputs
    across = table.filter(pl.col("scope") == "across_input")
    assert set(across["metric"]) == {"ead"}
    at2 = table.filter((pl.col("k") == 2) & (pl.col("subset") == "all"))
    got2 = dict(zip(at2["metric"], at2["value"], strict=True))
    assert got2["distinct_answers"] == pytest.approx((1 - 1 / 6) + 2 * (1 - 3 / 6))
    # a task without answer classes: no class rows at all
    other = compute_diversity(generations("tldr", 4), names)
    assert set(other["metric"]) == {"ead"}
    assert CLASS in q.columns
