"""The paper's code extraction and renaming (divtrace.quality.align) against a transcription of
the paper's checker (PAPER.md §6.2), on answers where renaming, block choice and blind renaming of
a helper each change the program."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from divtrace.quality.align import (
    aligned_code,
    expected_name,
    paper_code,
    paper_humaneval_program,
    paper_mbpp_program,
    rename_first_function,
)

# ----------------------------------------------------------------- the paper's checker, transcribed
# PAPER.md §6.2: blocks by r"```(?:python)?\s*\n(.*?)```" (DOTALL); the block with
# "def <entry>" first, else the longest, stripped; no block: the raw text. The expected MBPP name
# from the first r"assert\s+(\w+)\s*\(". The first r"^def\s+(\w+)\s*\(" (MULTILINE) renamed when
# it differs: r"\bdef\s+OLD\b" -> "def NEW", then r"\bOLD\s*\(" -> "NEW(".


def reference_extract(text, entry=""):
    found = re.findall(r"```(?:python)?\s*\n(.*?)```", text, re.DOTALL)
    if len(found) == 0:
        return text
    if entry != "":
        for candidate in found:
            if ("def " + entry) in candidate:
                return candidate.strip()
    best = found[0]
    for candidate in found[1:]:
        if len(candidate) > len(best):
            best = candidate
    return best.strip()


def reference_align(text, entry=""):
    code = reference_extract(text, entry)
    if entry != "":
        first = re.search(r"^def\s+(\w+)\s*\(", code, re.MULTILINE)
        if first is not None and first.group(1) != entry:
            old = re.escape(first.group(1))
            code = re.sub(r"\bdef\s+" + old + r"\b", "def " + entry, code)
            code = re.sub(r"\b" + old + r"\s*\(", entry + "(", code)
    return code


def reference_mbpp(answer, tests):
    name = ""
    for test in tests:
        hit = re.search(r"assert\s+(\w+)\s*\(", test)
        if hit:
            name = hit.group(1)
            break
    return reference_align(answer, name) + "\n\n" + "\n".join(tests) + "\n"


def reference_humaneval(answer, prompt, test, entry):
    code = reference_align(answer, entry)
    tail = "\n\n" + test + "\n\ncheck(" + entry + ")\n"
    if ("def " + entry) in code:
        return code + tail
    return prompt + answer + tail


# ------------------------------------------------------------------------------------ answers
TESTS = ["assert add_two(1, 2) == 3", "assert add_two(0, 0) == 0"]
ANSWERS = {
    # a guessed name, called recursively and from a second function
    "renamed": "def plus(a, b):\n    return a + b if b >= 0 else plus(a, b + 1) - 1\n",
    # a helper first: the paper renames the helper (blindly), the real function keeps its name
    "helper_first": (
        "def helper(x):\n    return x\n\ndef add_two(a, b):\n    return helper(a) + helper(b)\n"
    ),
    # the expected name already: unchanged
    "right_name": "def add_two(a, b):\n    return a + b\n",
    # fenced: the block defining the expected name wins over a longer one
    "fenced_defining": (
        "Here:\n```python\ndef add_two(a, b):\n    return a + b\n```\nand a test:\n"
        "```python\nimport unittest\nclass T(unittest.TestCase):\n    def test(self):\n"
        "        self.assertEqual(add_two(1, 2), 3)\n```\n"
    ),
    # fenced, no block defines it: the longest block, then renamed
    "fenced_longest": (
        "```\nx = 1\n```\n```python\ndef total(a, b):\n    s = a\n    s += b\n    return s\n```"
    ),
    # an unclosed block counts as no block: the raw answer, first def renamed
    "unclosed": "```python\ndef total(a, b):\n    return a + b\n",
    # a nested function is not line-initial; an attribute call of the same name is renamed too
    "nested": (
        "def outer(a, b):\n    def inner(c):\n        return c\n    return inner(a) + b\n"
        "print(math.outer (1))\n"
    ),
    "no_def": "lambda a, b: a + b",
}


@pytest.mark.parametrize("case", sorted(ANSWERS))
def test_mbpp_program_equals_the_paper_checker(case):
    answer = ANSWERS[case]
    program, candidate = paper_mbpp_program(answer, TESTS)
    assert program == reference_mbpp(answer, TESTS)
    assert candidate == reference_align(answer, "add_two")


def test_the_cases_discriminate():
    """Each case changes something the paper's checker does: a no-op would fail the test above."""
    aligned = {case: reference_align(answer, "add_two") for case, answer in ANSWERS.items()}
    assert aligned["renamed"].count("add_two(") == 2 and "plus" not in aligned["renamed"]
    assert aligned["helper_first"].count("def add_two") == 2  # the helper took the name
    assert aligned["right_name"] == ANSWERS["right_name"]
    assert "unittest" not in aligned["fenced_defining"]
    assert aligned["fenced_longest"].startswith("def add_two(a, b):\n    s = a")
    assert aligned["unclosed"].startswith("```python\ndef add_two(")
    assert "math.add_two(1)" in aligned["nested"] and "def inner" in aligned["nested"]
    assert aligned["no_def"] == ANSWERS["no_def"]
    assert len(set(aligned.values())) == len(aligned)


def test_pieces():
    assert expected_name(["x = 1", "assert  foo (3) == 1", "assert bar(1)"]) == "foo"
    assert expected_name(["print(1)"]) is None
    assert rename_first_function("def a(x):\n    return a(x)\n", "b") == (
        "def b(x):\n    return b(x)\n"
    )
    assert rename_first_function("x = 1\n", "b") == "x = 1\n"
    assert paper_code("no code") == "no code"
    assert aligned_code("def f():\n    pass\n", "") == "def f():\n    pass\n"  # no name: no rename


def test_humaneval_program_equals_the_paper_checker():
    prompt = 'def add_two(a, b):\n    """Add."""\n'
    test = "def check(candidate):\n    assert candidate(1, 2) == 3\n"
    answers = [
        "    return a + b\n",  # a completion: prompt + raw answer
        "```python\ndef plus(a, b):\n    return a + b\n```",  # renamed, standalone
        "def add_two(a, b):\n    return a + b\n",  # standalone as it is
    ]
    programs = [paper_humaneval_program(a, prompt, test, "add_two")[0] for a in answers]
    assert programs == [reference_humaneval(a, prompt, test, "add_two") for a in answers]
    assert programs[0].startswith(prompt + "    return a + b")
    assert programs[1].startswith("def add_two(a, b):\n    return a + b\n\ndef check")


def test_real_mbpp_solutions_under_a_guessed_name(shared_real: Path):
    """The canonical MBPP solutions with their function renamed (as a model not shown the name
    would write them): the paper's program calls the tests' name again, as the transcription."""
    rows = [json.loads(line) for line in (shared_real / "mbpp_test_100.jsonl").open()]
    renamed_any = 0
    for row in rows:
        name = expected_name(row["test_list"])
        assert name is not None, row["task_id"]
        guessed = re.sub(rf"\b{re.escape(name)}\b", "guessed_name_", row["code"])
        answer = f"Sure:\n```python\n{guessed}\n```\n"
        program, candidate = paper_mbpp_program(answer, row["test_list"])
        assert program == reference_mbpp(answer, row["test_list"]), row["task_id"]
        first = re.search(r"^def\s+(\w+)", guessed, re.MULTILINE)
        if first is not None and first.group(1) == "guessed_name_":
            renamed_any += 1
            assert f"def {name}" in candidate, row["task_id"]
            assert "def guessed_name_" not in candidate, row["task_id"]
    assert renamed_any >= 80  # most solutions define the tested function first


def test_paper_style_mbpp_answers_are_scored_as_the_paper_scores_them(shared_real: Path):
    """Canonical MBPP solutions under a guessed name (the paper's prompts never show the name):
    scored with the paper's alignment they pass, as in the paper; divtrace's own assembly (for
    its instructed prompts, which name the function) does not rename, so they fail. A helper
    defined first is renamed blindly, as the paper does, and fails there."""
    import polars as pl

    from divtrace.quality.code import judge_mbpp
    from divtrace.quality.score import score_generations

    rows = [json.loads(line) for line in (shared_real / "mbpp_test_100.jsonl").open()][:8]
    answers, references = [], []
    for row in rows:
        name = expected_name(row["test_list"])
        assert name is not None
        answers.append(re.sub(rf"\bdef {re.escape(name)}\b", "def guessed_name_", row["code"]))
        answers[-1] = re.sub(rf"\b{re.escape(name)}\s*\(", "guessed_name_(", answers[-1])
        references.append(row)
    helper_first = (  # MBPP 11 (remove_Occ) through a helper defined first
        "def strip_once(s, ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n\n"
        "def remove_Occ(s, ch):\n    return strip_once(s, ch)\n"
    )
    answers.append(helper_first)
    references.append(rows[0])
    prompts = [{"prompt_id": f"mbpp/{i}"} for i in range(len(answers))]
    paper = judge_mbpp(answers, references, prompts, prompt_style="paper")
    own = judge_mbpp(answers, references, prompts)
    # passes where the tested function comes first; where a helper comes first (MBPP 18 among
    # these, and the added case) the blind rename breaks it, as in the paper
    first_is_it = [
        re.search(r"^def\s+(\w+)", a, re.MULTILINE).group(1) == "guessed_name_"  # type: ignore[union-attr]
        for a in answers
    ]
    assert [j.correct for j in paper] == first_is_it
    assert first_is_it.count(False) == 2
    assert [j.correct for j in own] == [False] * len(rows) + [True]
    # score_generations hands the prompts file's style to the code judges
    table = pl.DataFrame(
        {
            "prompt_id": [p["prompt_id"] for p in prompts],
            "reference": [json.dumps(r) for r in references],
        }
    )
    generations = pl.DataFrame(
        {
            "model": "m",
            "task": "mbpp",
            "cot": "on",
            "prompt_id": table["prompt_id"],
            "sample": 0,
            "answer": answers,
        }
    )
    scored = score_generations("mbpp", table, generations, prompt_style="paper")
    assert scored["correct"].to_list() == [j.correct for j in paper]
    assert score_generations("mbpp", table, generations)["correct"].to_list() == [
        j.correct for j in own
    ]


def test_paper_style_humaneval_renames_a_standalone_function(shared_real: Path):
    from divtrace.quality.code import judge_humaneval

    rows = [json.loads(line) for line in (shared_real / "humaneval.jsonl").open()][:4]
    answers = [
        "```python\n"
        + r["prompt"].replace(f"def {r['entry_point']}(", "def guessed_name_(")
        + r["canonical_solution"]
        + "```\n"
        for r in rows
    ]
    prompts = [{"prompt_id": r["task_id"]} for r in rows]
    paper = judge_humaneval(answers, rows, prompts, prompt_style="paper")
    own = judge_humaneval(answers, rows, prompts)
    assert all(j.correct for j in paper)
    assert not any(j.correct for j in own)  # the stub of the prompt is never completed
