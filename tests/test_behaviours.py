"""Behavioural classes of code answers (divtrace.quality.behaviour) and the ``behaviours`` metric.

The sandbox runs are few (each program is one process, ~150 ms): the grouping tests run a
handful of programs on two real problems; the rest uses a recorded runner or no sandbox at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from divtrace.errors import ContractError
from divtrace.names import metric_applies
from divtrace.quality.behaviour import (
    behaviour_keys,
    canonical,
    derive,
    extra_inputs,
    literal_calls,
    outcome_text,
    problem_inputs,
    seed_of,
    signature,
)
from divtrace.quality.sandbox import CallOutcome, SandboxLimits

FAST = SandboxLimits(timeout_s=2.0)


def _record(shared_real: Path, name: str, task_id: Any) -> dict[str, Any]:
    with open(shared_real / name, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["task_id"] == task_id:
                return dict(record)
    pytest.skip(f"{task_id} not in {name}")


# --------------------------------------------------------------------------- inputs
def test_literal_calls_keep_only_literal_positional_calls():
    code = (
        "def check(candidate):\n"
        "    assert candidate([1, 2], 'a') == 3\n"
        "    assert candidate(x) == 1\n"  # a name: not a literal
        "    assert candidate(1, key=2) == 1\n"  # keywords: left out
        "    assert abs(candidate(-1.5, (2, 3)) - 1) < 1e-6\n"  # nested in another call
        "    assert other(4) == 4\n"
    )
    assert literal_calls(code, "candidate") == [([1, 2], "a"), (-1.5, (2, 3))]


def test_problem_inputs_from_the_real_tests(shared_real):
    he = _record(shared_real, "humaneval.jsonl", "HumanEval/15")
    problem = problem_inputs("humaneval", he, "HumanEval/15")
    assert problem.entry_point == "string_sequence"
    assert problem.inputs[: problem.n_tests] == ((0,), (3,), (10,))
    assert 0 < len(problem.inputs) - problem.n_tests <= 8
    mbpp = _record(shared_real, "mbpp_test_100.jsonl", 11)
    problem = problem_inputs("mbpp", mbpp, "mbpp/11")
    assert problem.entry_point == "remove_Occ"
    assert problem.inputs[0] == ("hello", "l") and problem.n_tests == 3
    # A problem whose tests call the function on computed values only has no inputs.
    no_literal = {
        "entry_point": "f",
        "test": "def check(candidate):\n    x = 3\n    candidate(x)\n",
    }
    assert problem_inputs("humaneval", no_literal, "p").inputs == ()
    # check's parameter may have any name; a literal the sandbox cannot pass (Ellipsis) is dropped
    other = {"entry_point": "f", "test": "def check(fn):\n    fn(...)\n    fn(1)\n    fn(1)\n"}
    problem = problem_inputs("humaneval", other, "p")
    assert problem.inputs[:1] == ((1,),) and problem.n_tests == 1
    assert {type(args[0]) for args in problem.inputs} == {int}


def test_extra_inputs_are_seeded_and_keep_types_and_arity():
    tests = [(3, 2.5, "abc", [1, 2, 3], (1, "x"), True, None, {"k": 4})]
    a = extra_inputs(tests, seed_of("HumanEval/1"))
    assert a == extra_inputs(tests, seed_of("HumanEval/1"))  # deterministic per seed
    assert a != extra_inputs(tests, seed_of("HumanEval/2"))  # and depends on it
    assert 0 < len(a) <= 8
    assert len({canonical(x) for x in a}) == len(a) and canonical(tests[0]) not in map(canonical, a)
    for args in a:
        assert len(args) == len(tests[0])
        assert [type(x) for x in args] == [type(x) for x in tests[0]]
        assert len(args[4]) == 2 and [type(x) for x in args[4]] == [int, str]
        assert set(args[7]) == {"k"}
    # derived, not random: an int moves by one or doubles, a list keeps its items
    import random

    rng = random.Random(0)
    for _ in range(50):
        assert derive(10, rng) in (9, 11, 20)
        assert set(derive([1, 2, 3], rng)) <= {1, 2, 3} | {0, 4, 6}
    assert extra_inputs([], 1) == []


# --------------------------------------------------------------------------- signatures
def test_canonical_rounds_floats_and_keeps_types_apart():
    assert canonical(0.1 + 0.2) == canonical(0.3)
    assert canonical(1.0) != canonical(1.0001)
    assert len({canonical(v) for v in (1, 1.0, True, "1", (1,), [1], {1})}) == 7
    assert canonical({2, 1}) == canonical({1, 2}) and canonical({"b": 1, "a": 2}) == canonical(
        {"a": 2, "b": 1}
    )
    assert canonical(-0.0) == canonical(0.0) and canonical(float("nan")) == canonical(float("nan"))


def test_signature_separates_values_exceptions_and_faults():
    value = CallOutcome(value=1)
    texts = [
        outcome_text(o)
        for o in (
            value,
            CallOutcome(raised="ValueError"),
            CallOutcome(raised="KeyError"),
            CallOutcome(fault="timeout"),
            CallOutcome(fault="not plain data"),
            CallOutcome(value="1"),
        )
    ]
    assert len(set(texts)) == len(texts)
    assert signature([value, CallOutcome(value=2.0)]) == signature(
        [CallOutcome(value=1), CallOutcome(value=2.0 + 1e-12)]
    )
    assert signature([value]) != signature([CallOutcome(value=True)])
    assert len(signature([value])) == 16


def test_behaviour_keys_run_each_program_once_and_null_without_inputs():
    calls: list[tuple[str, str, int]] = []

    def runner(program, entry, inputs, limits):
        calls.append((program, entry, len(inputs)))
        return [CallOutcome(value=len(program))] * len(inputs)

    refs = {
        "a": {"entry_point": "f", "prompt": "", "test": "def check(c):\n    assert c(1) == 1\n"},
        "b": {"entry_point": "f", "prompt": "", "test": "def check(c):\n    c(y)\n"},
    }
    keys = behaviour_keys(
        "humaneval",
        ["def f(x):\n    return x\n", "def f(x):\n    return x\n", "def f(x): return 1\n", "x"],
        ["a", "a", "a", "b"],
        refs,
        runner=runner,
    )
    assert keys[0] == keys[1] and keys[2] is not None and keys[2] != keys[0] and keys[3] is None
    assert len(calls) == 2 and all(entry == "f" for _, entry, _ in calls)
    with pytest.raises(ContractError, match="'c'"):
        behaviour_keys("humaneval", ["x"], ["c"], refs, runner=runner)


# --------------------------------------------------------------------------- in the sandbox
HE15 = {
    "completion": "    return ' '.join([str(x) for x in range(n + 1)])\n",
    "renamed": "```python\ndef string_sequence(m):\n    out = [str(i) for i in range(m + 1)]\n"
    "    return ' '.join(out)\n```",
    "loop": "def string_sequence(n):\n    s = '0'\n    for k in range(1, n + 1):\n"
    "        s += ' ' + str(k)\n    return s\n",
    "off_by_one": "def string_sequence(n):\n    return ' '.join(str(x) for x in range(n))\n",
    # passes the three tests, but not the inputs derived from them
    "memorised": "def string_sequence(n):\n    return {0: '0', 3: '0 1 2 3', 10: "
    "'0 1 2 3 4 5 6 7 8 9 10'}[n]\n",
    "raises": "def string_sequence(n):\n    raise ValueError(n)\n",
    "hangs": "def string_sequence(n):\n    while True:\n        pass\n",
    "always_equal": "class E:\n    def __eq__(self, other):\n        return True\n"
    "def string_sequence(n):\n    return E()\n",
    "not_plain": "def string_sequence(n):\n    return iter([n])\n",
}


def test_real_humaneval_programs_group_by_behaviour(shared_real, contained_sandbox):
    ref = _record(shared_real, "humaneval.jsonl", "HumanEval/15")
    names = list(HE15)
    keys = dict(
        zip(
            names,
            behaviour_keys(
                "humaneval",
                [HE15[n] for n in names],
                ["HumanEval/15"] * len(names),
                {"HumanEval/15": ref},
                limits=FAST,
                workers=2,
            ),
            strict=True,
        )
    )
    # renamed variables, another algorithm, a completion: one behaviour
    assert keys["completion"] == keys["renamed"] == keys["loop"]
    # an object that claims to equal anything, or any value that is not plain data, is the
    # fault "not plain data" on every call: one class, never a value's
    assert keys["always_equal"] == keys["not_plain"]
    assert keys["always_equal"] == signature([CallOutcome(fault="not plain data")] * 10)
    # every other program has a class of its own
    others = [keys[n] for n in names[3:-1]]
    assert len(set(others)) == len(others) and keys["completion"] not in others


def test_real_mbpp_programs_group_by_behaviour_in_the_papers_style(shared_real, contained_sandbox):
    ref = _record(shared_real, "mbpp_test_100.jsonl", 17)
    answers = [
        "def square_perimeter(a):\n  perimeter=4*a\n  return perimeter",
        # the paper's prompts never show the name: the judge renames the first function
        "```python\ndef perimeter_of_square(side):\n    return side + side + side + side\n```",
        "def square_perimeter(a):\n    return 4 * a + 1\n",
    ]
    keys = behaviour_keys(
        "mbpp", answers, ["mbpp/17"] * 3, {"mbpp/17": ref}, prompt_style="paper", limits=FAST
    )
    assert keys[0] == keys[1] != keys[2]


@pytest.fixture
def contained_sandbox():
    """Skips when this machine's sandbox cannot run programs (it raises SandboxError)."""
    from divtrace.errors import SandboxError
    from divtrace.quality.sandbox import run_program

    try:
        result = run_program("pass\n", FAST)
    except SandboxError as err:
        pytest.skip(f"the sandbox cannot run programs here: {err}")
    if not result.passed:
        pytest.skip(f"the sandbox cannot run programs here: {result.detail}")


# --------------------------------------------------------------------------- the metric
def test_behaviours_apply_to_code_per_input_only():
    assert metric_applies("behaviours", "humaneval") and metric_applies("behaviours", "mbpp")
    assert not metric_applies("behaviours", "humaneval", "across_input")
    assert not metric_applies("behaviours", "gsm8k") and not metric_applies("behaviours", "tldr")
    assert metric_applies("distinct_answers", "mbpp")


def _write_run(tmp_path: Path, ref: dict[str, Any], answers: list[str], correct: list[bool]):
    from divtrace import io
    from divtrace.provenance import DIGEST_KEY

    prompts = tmp_path / "prompts.parquet"
    io.write_table(
        pl.DataFrame(
            {
                "task": ["he"],
                "prompt_id": ["HumanEval/15"],
                "index": [0],
                "text": [ref["prompt"]],
                "messages": ["[]"],
                "reference": [json.dumps(ref)],
                "meta": ["{}"],
            }
        ),
        prompts,
        "prompts",
        metadata={DIGEST_KEY: "d1", "prompt_style": "native"},
    )
    n = len(answers)
    keys = {
        "model": ["m"] * n,
        "task": ["he"] * n,
        "cot": ["off"] * n,
        "prompt_id": ["HumanEval/15"] * n,
        "sample": list(range(n)),
    }
    gen = tmp_path / "gen.parquet"
    io.write_table(
        pl.DataFrame({**keys, "answer": answers}).with_columns(
            seed=pl.col("sample"),
            prompt_text=pl.lit(""),
            raw=pl.col("answer"),
            reasoning=pl.lit(None, pl.String),
            think_closed=pl.lit(None, pl.Boolean),
            n_tokens=pl.lit(1),
            finish_reason=pl.lit("stop"),
            backend=pl.lit("test"),
        ),
        gen,
        "generations",
    )
    quality = tmp_path / "quality.parquet"
    io.write_table(
        pl.DataFrame(
            {
                **keys,
                "correct": correct,
                "score": [float(c) for c in correct],
                "extracted": answers,
                "detail": ["" for _ in answers],
            }
        ),
        quality,
        "quality",
        metadata={DIGEST_KEY: "d1"},
    )
    return prompts, gen, quality


def test_behaviours_through_divtrace_diversity(shared_real, tmp_path, contained_sandbox, capsys):
    from divtrace import io
    from divtrace.cli import main

    ref = _record(shared_real, "humaneval.jsonl", "HumanEval/15")
    names = ["completion", "renamed", "loop", "off_by_one", "memorised", "raises"]
    correct = [True, True, True, False, True, False]
    prompts, gen, quality = _write_run(tmp_path, ref, [HE15[n] for n in names], correct)
    out = tmp_path / "div.parquet"
    args = [
        "diversity",
        "--generations",
        str(gen),
        "--quality",
        str(quality),
        "--out",
        str(out),
        "--metrics",
        "behaviours,distinct_answers,distinct_correct,mode_share,ead",
        "--family",
        "humaneval",
        "--k-grid",
        "2",
        "--workers",
        "2",
        "--behaviour-timeout",
        "3",
    ]
    assert main([*args, "--prompts", str(prompts), "--prompts-digest", "d1"]) == 0
    table = io.read_table(out)
    got = {
        (r["subset"], r["metric"], r["k"]): r["value"]
        for r in table.filter(pl.col("scope") == "per_input").iter_rows(named=True)
    }
    # classes: {completion, renamed, loop}, {off_by_one}, {memorised}, {raises}
    assert got[("all", "behaviours", None)] == 4
    assert got[("correct", "behaviours", None)] == 2  # the correct ones: the shared and memorised
    assert got[("all", "distinct_answers", None)] == 4
    assert got[("all", "distinct_correct", None)] == 2
    assert got[("all", "mode_share", None)] == pytest.approx(3 / 6)
    # at k = 2 by the rarefaction sum: classes of sizes 3, 1, 1, 1 among 6 outputs
    expected = sum(1 - (1 - s / 6) * (1 - s / 5) for s in (3, 1, 1, 1))
    assert got[("all", "behaviours", 2)] == pytest.approx(expected)
    # no across-input rows for the behaviours
    assert table.filter(
        (pl.col("metric") == "behaviours") & (pl.col("scope") != "per_input")
    ).is_empty()
    # the diversity table lists them like the other metrics (per input, both subsets)
    out_dir = tmp_path / "tables"
    summary = [
        "summarize",
        "--diversity",
        str(out),
        "--lineage",
        json.dumps({"m": {"stage": "base"}}),
        "--out-dir",
        str(out_dir),
        "--n-boot",
        "50",
        "--runs",
        json.dumps([["m", "he", "off", True]]),
    ]
    assert main(summary) == 0
    rows = io.read_table(out_dir / "diversity.parquet").filter(pl.col("metric") == "behaviours")
    assert dict(zip(rows["subset"], rows["value"], strict=True)) == {"all": 4.0, "correct": 2.0}
    assert set(rows["scope"]) == {"per_input"}
    # without the prompts (the tests) there are no behaviours: a clear error, nothing written
    out2 = tmp_path / "div2.parquet"
    capsys.readouterr()
    assert main([*args[:6], str(out2), *args[7:]]) != 0 and not out2.exists()
    assert "--prompts" in capsys.readouterr().err
    # prompts of another spec than the workflow's are refused
    assert main([*args, "--prompts", str(prompts), "--prompts-digest", "other"]) != 0
    assert "another spec" in capsys.readouterr().err
