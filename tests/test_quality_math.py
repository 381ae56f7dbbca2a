"""Math answer extraction and equivalence (GSM8K, MATH), on hand cases and real benchmark data."""

from __future__ import annotations

import difflib
import re
import threading
import time

import pytest

from divtrace.errors import JudgeError
from divtrace.quality import math as qmath
from divtrace.quality.math import answers_match, extract_answer, judge_math, judge_text, last_boxed
from divtrace.tasks.gsm8k import gold_answer
from divtrace.tasks.math import FAMILY_ALGEBRA, FAMILY_GEOMETRY
from divtrace.tasks.prompts import read_jsonl

# ---------------------------------------------------------------------------------------------
# Equivalence
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("\\dfrac{1}{2}", "0.5"),
        ("\\dfrac{1}{2}", "1/2"),
        ("0.5", "\\frac{1}{2}"),
        ("\\frac12", "\\tfrac{1}{2}"),
        ("10^\\circ", "10"),
        ("10", "10^{\\circ}"),
        ("\\text{(A)}", "A"),
        ("\\text{(A)}", "(A)"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{2})"),
        ("(3,\\frac{\\pi}{2})", "\\left(3, \\pi/2\\right)"),
        ("1000", "1,000"),
        ("1,000", "1000"),
        ("1000000", "1,000,000"),
        ("5", "$5"),
        ("5", "\\$5"),
        ("18", "18.00"),
        ("2\\sqrt{3}", "\\sqrt{12}"),
        ("x^2+1", "1+x^2"),
        ("\\{1,2\\}", "\\{2,1\\}"),
        ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}"),
        ("5.4 \\text{ cents}", "5.4"),
        ("\\text{Evelyn}", "Evelyn"),
        ("10,\\!000", "10000"),
        ("5", "5 \\text{ cm}"),
    ],
)
def test_equivalent_answers_are_accepted(gold: str, pred: str) -> None:
    assert answers_match(gold, pred), (gold, pred)


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("\\dfrac{1}{2}", "0.6"),
        ("\\frac{1}{2}", "\\frac{1}{3}"),
        ("10^\\circ", "11"),
        ("\\text{(A)}", "B"),
        ("\\text{(A)}", "(C)"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{3})"),
        ("(1,2)", "(2,1)"),
        ("1000", "1,001"),
        ("5", "$6"),
        ("18", "19"),
        ("0.5", "0.49"),
        ("\\text{Evelyn}", "Navin"),
        ("2\\sqrt{3}", "3\\sqrt{2}"),
        ("5", "6 \\text{ cm}"),
    ],
)
def test_different_answers_are_rejected(gold: str, pred: str) -> None:
    assert not answers_match(gold, pred), (gold, pred)


# ---------------------------------------------------------------------------------------------
# Plain-text mathematics (issue 14): answers written without LaTeX, MATH500-style golds
# ---------------------------------------------------------------------------------------------

# (gold, prediction): the same answer, the prediction in plain text (or Unicode) inside \boxed{}
PLAIN_EQUIVALENT = [
    # pi, with coefficients and fractions
    ("12\\pi", "12pi"),
    ("\\pi", "pi"),
    ("288 \\pi", "288 pi"),
    ("7\\pi", "7 π"),
    ("8 \\pi", "8π"),
    ("18+2\\pi", "18+2pi"),
    ("\\frac{\\pi}{2}", "pi/2"),
    ("\\frac{3\\pi}{4}", "3pi/4"),
    ("-\\frac{\\pi}{6}", "-pi/6"),
    ("\\frac{9\\pi}{2}", "9pi/2"),
    ("\\frac{\\pi}{4}", "π/4"),
    ("\\frac{20000}{\\pi}", "20000/pi"),
    ("\\frac{1}{2\\pi}", "1/(2pi)"),
    ("2\\pi", "2*pi"),
    ("4\\pi^2", "4pi^2"),
    ("\\pi - 2", "pi - 2"),
    ("9\\pi - 18", "9pi-18"),
    ("\\frac{\\pi}{3}", "\\frac{pi}{3}"),
    ("\\frac{2\\pi}{3}", "dfrac{2pi}{3}"),
    ("\\pi r^2", "πr²"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, pi/2)"),
    ("\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]", "[pi^2/8, 5pi^2/4]"),
    # square roots: sqrt(x), sqrt x, sqrt{x}, √x, \sqrt(x), nested, in fractions and sums
    ("2\\sqrt{113}", "2 sqrt(113)"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{ sqrt(3)}{3}"),
    ("\\frac{\\sqrt{3}}{3}", "sqrt(3)/3"),
    ("\\sqrt{51}", "sqrt(51)"),
    ("\\sqrt{5}", "sqrt 5"),
    ("\\sqrt{5}", "√5"),
    ("\\sqrt{13}", "sqrt{13}"),
    ("3\\sqrt{13}", "3sqrt(13)"),
    ("11\\sqrt2", "11 sqrt 2"),
    ("6\\sqrt{2}", "6 sqrt2"),
    ("70 \\sqrt{2}", "70√2"),
    ("2 \\sqrt{5}", "2√(5)"),
    ("10\\sqrt{10}", "10sqrt10"),
    ("5\\sqrt{3}", "5 \\sqrt(3)"),
    ("\\frac{\\sqrt{3}}{2}", "\\sqrt(3)/2"),
    ("-\\sqrt{3}", "-sqrt(3)"),
    ("\\frac{3\\sqrt{3}}{4}", "3sqrt(3)/4"),
    ("\\frac{\\sqrt{21}}{5}", "sqrt(21)/5"),
    ("\\frac{2\\sqrt{6}}{3}", "2sqrt(6)/3"),
    ("\\frac{5\\sqrt{3}}{3}", "(5 sqrt 3)/3"),
    ("\\frac{\\sqrt{5}}{5}", "1/sqrt(5)"),
    ("\\frac{\\sqrt{2}}{2}", "sqrt(2)/2"),
    ("-\\frac{\\sqrt{2}}{2}", "-sqrt(2)/2"),
    ("1+2\\sqrt{3}", "1+2sqrt(3)"),
    ("2+\\sqrt{3}", "2+sqrt(3)"),
    ("\\sqrt{3} - 1", "√3 - 1"),
    ("5\\sqrt{2} - 1", "5sqrt(2) - 1"),
    ("2\\sqrt{2} + 2", "2 sqrt 2 + 2"),
    ("11 \\sqrt{5} + 11", "11 sqrt(5) + 11"),
    ("1 \\pm \\sqrt{19}", "1 ± sqrt(19)"),
    ("3 \\pm 2 \\sqrt{2}", "3 ± 2sqrt(2)"),
    ("\\frac{1+\\sqrt{5}}{2}", "(1+sqrt(5))/2"),
    ("\\frac{1+\\sqrt{5}}{2}", "(1 + √5)/2"),
    ("\\sqrt{2+\\sqrt{3}}", "sqrt(2+sqrt(3))"),
    ("(-\\sqrt{3}, \\sqrt{3})", "(-sqrt(3), sqrt(3))"),
    ("4\\sqrt{3}\\pi", "4 sqrt(3) pi"),
    ("\\frac{\\pi\\sqrt{3}}{6}", "pi sqrt(3)/6"),
    # other roots and powers
    ("\\sqrt[3]{2}", "cbrt(2)"),
    ("\\sqrt[3]{2}", "2^(1/3)"),
    ("\\sqrt[3]{4}", "∛4"),
    ("\\sqrt[4]{8}", "sqrt[4](8)"),
    ("\\sqrt{x}", "x^(1/2)"),
    ("2^{\\frac{3}{2}}", "2^(3/2)"),
    ("8", "2**3"),
    ("x^2+1", "x²+1"),
    # infinity and intervals
    ("\\infty", "infinity"),
    ("(2,\\infty)", "(2, infinity)"),
    ("(-\\infty, 0]", "(-inf, 0]"),
    ("(5,\\infty)", "(5, ∞)"),
    ("[0, \\infty)", "[0, Infinity)"),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(-inf, 2) U (3, inf)"),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(-∞, 2) \u222a (3, ∞)"),
    ("[-2, 2]", "[−2, 2]"),
    # degrees, large numbers
    ("90^\\circ", "90 degrees"),
    ("30^\\circ", "30°"),
    ("145^\\circ", "145 deg"),
    ("120^\\circ", "120\\text{degrees}"),
    ("\\frac{270}7\\text{ degrees}", "270/7 degrees"),
    ("2000000", "2 million"),
    ("5000", "5 thousand"),
    ("1000", "1,000.0"),
    # functions
    ("\\sin x", "sin(x)"),
]

# (gold, prediction): textually close, different answers
PLAIN_DIFFERENT = [
    ("12", "12pi"),
    ("12\\pi", "12"),
    ("12\\pi", "12 pine"),
    ("12\\pi", "12 spin"),
    ("\\pi", "pine"),
    ("\\pi", "spin"),
    ("\\pi", "api"),
    ("\\pi", "pi2"),
    ("\\pi", "3.14"),
    ("\\pi", "22/7"),
    ("\\pi^2", "pi"),
    ("2\\pi", "2pi^2"),
    ("8\\pi", "8"),
    ("\\frac{\\pi}{3}", "pi/2"),
    ("\\frac{\\pi}{3}", "frac{pi}{6}"),
    ("\\frac{2\\pi}{3}", "dfrac{pi}{3}"),
    ("\\frac{3\\pi}{4}", "3pi/2"),
    ("\\frac{3\\pi}{4}", "4pi/3"),
    ("18+2\\pi", "18+pi"),
    ("18+2\\pi", "20pi"),
    ("\\frac{20000}{\\pi}", "20000 pi"),
    ("\\frac{20000}{\\pi}", "20000/pi^2"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, pi)"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(pi/2, 3)"),
    ("\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]", "[pi/8, 5pi/4]"),
    ("3", "sqrt(3)"),
    ("\\sqrt{3}", "3"),
    ("2\\sqrt{113}", "2 sqrt(112)"),
    ("2\\sqrt{112}", "2 sqrt(113)"),
    ("\\sqrt{2}", "sqrt(2)/2"),
    ("\\frac{\\sqrt{2}}{2}", "sqrt(2)"),
    ("-\\frac{\\sqrt{2}}{2}", "sqrt(2)/2"),
    ("\\sqrt{5}", "√6"),
    ("\\sqrt{5}", "5"),
    ("\\sqrt{13}", "sqrt{31}"),
    ("70 \\sqrt{2}", "70 sqrt(3)"),
    ("10\\sqrt{10}", "10sqrt100"),
    ("\\frac{\\sqrt{21}}{5}", "sqrt(21/5)"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{ sqrt(3)}{2}"),
    ("2+\\sqrt{3}", "2-sqrt(3)"),
    ("2+\\sqrt{3}", "2 sqrt(3)"),
    ("\\sqrt{3}-1", "√3+1"),
    ("2\\sqrt{2}", "2sqrt(2)/2"),
    ("\\sqrt{2+\\sqrt{3}}", "sqrt(2)+sqrt(3)"),
    ("\\frac{1+\\sqrt{5}}{2}", "1+sqrt(5)/2"),
    ("\\frac{1+\\sqrt{5}}{2}", "(1-sqrt 5)/2"),
    ("1 \\pm \\sqrt{19}", "1 + sqrt(19)"),
    ("(-\\sqrt{3}, \\sqrt{3})", "[-sqrt(3), sqrt(3)]"),
    ("(-\\sqrt{3}, \\sqrt{3})", "(-sqrt(3), sqrt(2))"),
    ("4\\sqrt{3}", "4 sqrt(3) pi"),
    ("\\sqrt{2}", "1.414"),
    ("\\sqrt[3]{2}", "sqrt(2)"),
    ("\\sqrt{2}", "cbrt(2)"),
    ("\\sqrt[3]{2}", "2^(1/2)"),
    ("\\sqrt{x}", "x^(1/3)"),
    ("x^{2}", "x^(1/2)"),
    ("8", "2**4"),
    ("\\infty", "-infinity"),
    ("(2,\\infty)", "[2, infinity)"),
    ("(-\\infty, 0]", "(-inf, 0)"),
    ("(-\\infty, 0]", "(-inf, 1]"),
    ("[0, \\infty)", "(0, Infinity)"),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(-inf, 2] U [3, inf)"),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(-inf, 3) U (2, inf)"),
    ("90^\\circ", "9 degrees"),
    ("145^\\circ", "154 deg"),
    ("\\frac{270}7\\text{ degrees}", "7/270 degrees"),
    ("2000000", "2 thousand"),
    ("2000", "2 million"),
    ("2", "2 million"),
    ("\\sin x", "cos(x)"),
    # what the brackets hold
    ("\\sqrt{2}\\pi", "sqrt(2pi)"),
    ("\\sqrt{2\\pi}", "sqrt(2) pi"),
    ("\\sqrt{2}+1", "sqrt(2+1)"),
    ("\\sqrt{x+1}", "sqrt(x)+1"),
    ("\\sqrt{2}", "sqrt(-2)"),
    ("2^{3}+1", "2^(3+1)"),
    ("-\\frac{1}{8}", "2^-3"),
    ("10", "10 million"),
    ("[1,2]", "[1, 2] U [3, 4]"),
]

# Plain text whose reading is ambiguous is left as it is: neither reading is accepted.
PLAIN_AMBIGUOUS = [
    ("\\frac{\\pi}{2}", "1/2pi"),
    ("\\frac{1}{2\\pi}", "1/2pi"),
    ("\\frac{4}{3}\\pi", "4/3 pi"),
    ("\\frac{4}{3\\pi}", "4/3 pi"),
    ("\\frac{\\sqrt{3}}{2}", "1/2 sqrt(3)"),
    ("\\frac{1}{2\\sqrt{3}}", "1/2 sqrt(3)"),
    ("\\sqrt{2}x", "sqrt 2x"),
    ("\\sqrt{2x}", "sqrt 2x"),
    ("\\frac{\\sqrt{5}}{2}", "√5/2"),
    ("\\sqrt{\\frac{5}{2}}", "√5/2"),
    ("\\frac{\\sqrt{3}}{2}", "sqrt 3/2"),
    ("\\sqrt{\\frac{3}{2}}", "sqrt 3/2"),
    ("3 \\pm 2", "3+-2"),  # not read as ±
]


def test_plain_text_equivalent_forms_are_accepted() -> None:
    # target: at least 95% of the equivalent plain forms accepted; all of them are
    misses = [(gold, pred) for gold, pred in PLAIN_EQUIVALENT if not answers_match(gold, pred)]
    rate = 1 - len(misses) / len(PLAIN_EQUIVALENT)
    assert len(PLAIN_EQUIVALENT) >= 60
    assert rate >= 0.95, (rate, misses)
    assert misses == [], f"{rate:.1%} accepted; missed {misses}"


@pytest.mark.parametrize(("gold", "pred"), PLAIN_DIFFERENT)
def test_plain_text_different_answers_are_rejected(gold: str, pred: str) -> None:
    assert not answers_match(gold, pred), (gold, pred, qmath.latexify_plain(pred))


@pytest.mark.parametrize(("gold", "pred"), PLAIN_AMBIGUOUS)
def test_ambiguous_plain_text_is_left_alone(gold: str, pred: str) -> None:
    assert qmath.latexify_plain(pred) == pred
    assert not answers_match(gold, pred), (gold, pred)


@pytest.mark.parametrize(
    ("plain", "latex"),
    [
        ("12pi", "12\\pi"),
        ("pi r", "\\pi r"),
        ("πr²", "\\pi r^{2}"),
        ("2 sqrt(113)", "2 \\sqrt{113}"),
        ("\\frac{ sqrt(3)}{3}", "\\frac{ \\sqrt{3}}{3}"),
        ("sqrt(2+sqrt(3))", "\\sqrt{2+\\sqrt{3}}"),
        ("sqrt((1+x)(1-x))", "\\sqrt{(1+x)(1-x)}"),
        ("\\sqrt(3)", "\\sqrt{3}"),
        ("\\sqrt[3](2)", "\\sqrt[3]{2}"),
        ("sqrt[3]{2}", "\\sqrt[3]{2}"),
        ("(1+sqrt 5)/2", "(1+\\sqrt{5})/2"),
        ("√x+1", "\\sqrt{x}+1"),
        ("e^(i pi)", "e^{i \\pi}"),
        ("2^-3", "2^{-3}"),
        ("2**(1/2)", "2^{1/2}"),
        ("(-inf, 2] U [3, infinity)", "(-\\infty, 2] \\cup [3, \\infty)"),
        ("sin^2(x)", "\\sin^2(x)"),
        ("2.5 million", "2.5\\cdot 10^{6}"),
        ("30 degrees", "30"),
        ("1,000,000", "1000000"),
        # left as they are: words, LaTeX, and ambiguous or unclosed forms
        ("pine", "pine"),
        ("spin", "spin"),
        ("pi2", "pi2"),
        ("Pi", "Pi"),
        ("\\text{infinite}", "\\text{infinite}"),
        ("\\inf S", "\\inf S"),
        ("sqrt(3", "sqrt(3"),
        ("sqrt 3/2", "sqrt 3/2"),
        ("sqrt 2^3", "sqrt 2^3"),
        ("2^-1/2", "2^-1/2"),
        ("3+-2", "3+-2"),
        ("log(8)", "log(8)"),
        ("(1,000, 2)", "(1,000, 2)"),
        ("\\sqrt{3}\\pi + \\sqrt[3]{2} - \\infty", "\\sqrt{3}\\pi + \\sqrt[3]{2} - \\infty"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ],
)
def test_latexify_plain_rewrites(plain: str, latex: str) -> None:
    assert qmath.latexify_plain(plain) == latex


def test_latexify_plain_is_fast_on_long_input() -> None:
    start = time.monotonic()
    qmath.latexify_plain("sqrt(" * 300 + "2" + ")" * 300)
    qmath.latexify_plain("1/2 pi " * 150)
    qmath.latexify_plain("^(" * 400)
    assert time.monotonic() - start < 2


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer", "method"),
    [
        # 1. "#### x" wins over everything else
        ("so \\boxed{7}\n#### 1,000", "1,000", "hash"),
        ("The answer is 3.\n#### 4", "4", "hash"),
        ("#### 18 dollars", "18", "hash"),
        ("#### **$18**", "18", "hash"),
        # a Markdown heading is not a "####" answer
        ("#### **Final Answer**\n\\boxed{18}", "18", "boxed"),
        ("#### Step 1\nWe get \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}", "boxed"),
        # 2. the last complete \boxed{}, nested braces, \fbox, "\boxed 5"
        ("\\boxed{1} then \\boxed{\\frac{a}{b^{2}}}", "\\frac{a}{b^{2}}", "boxed"),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}", "boxed"),
        ("\\boxed{18 dollars}", "18", "boxed"),
        ("\\boxed{5 \\text{ cm}}", "5 \\text{ cm}", "boxed"),
        ("\\boxed{2 pi}", "2 pi", "boxed"),
        # ... but mathematical words are no unit: the number alone would be another answer
        ("\\boxed{2 sqrt x}", "2 sqrt x", "boxed"),
        ("\\boxed{3 pi r}", "3 pi r", "boxed"),
        ("\\boxed{2 million}", "2 million", "boxed"),
        ("#### 4 thousand", "4 thousand", "hash"),
        ("The answer is 5 infinity.", "5 infinity", "answer_is"),
        ("\\boxed{18 pine trees}", "18", "boxed"),
        ("\\fbox{7}", "7", "boxed"),
        ("$\\boxed 5$", "5", "boxed"),
        ("\\boxed{a} and finally \\boxed{\\frac{1}{", "a", "boxed"),
        ("The answer is 3, i.e. \\boxed{4}", "4", "boxed"),
        # 3. "the answer is x"
        ("The answer is $\\frac{3}{4}$.", "\\frac{3}{4}", "answer_is"),
        ("So the final answer is: **42**", "42", "answer_is"),
        ("The answer is 18 dollars.", "18", "answer_is"),
        ("the answer is 3.5. Then 7", "3.5", "answer_is"),
        ("Therefore, the answer is (B).", "(B)", "answer_is"),
        # 4. the last number
        ("I think 3 then 4.5 and -7.", "-7", "last_number"),
        ("total $1,234.50 spent", "1234.50", "last_number"),
        ("ratio 3/4 it is", "3/4", "last_number"),
        ("no digits at all", None, "none"),
    ],
)
def test_extraction_order(text: str, answer: str | None, method: str) -> None:
    found = extract_answer(text)
    assert (found.answer, found.method) == (answer, method)


def test_number_with_mathematical_words_is_not_cut() -> None:
    # "\boxed{2 sqrt x}" was extracted as "2" and accepted against a gold 2
    assert not judge_text("so \\boxed{2 sqrt x}", "2").correct
    assert not judge_text("so \\boxed{2 million}", "2").correct
    assert judge_text("so \\boxed{18 dollars}", "18").correct


def test_last_boxed_balanced() -> None:
    assert (
        last_boxed("x \\boxed{\\left(1, \\frac{2}{3}\\right)} y")
        == "\\left(1, \\frac{2}{3}\\right)"
    )
    assert last_boxed("\\boxed{\\}}") == "\\}"
    assert last_boxed("\\boxed{unclosed") is None
    assert last_boxed("\\boxedx{1}") is None
    assert last_boxed("none") is None


def test_judge_text_reports_extraction_and_method() -> None:
    j = judge_text("Adding up: 3 + 4 = 7, so \\boxed{7}.", "7")
    assert j.correct and j.score == 1.0 and j.extracted == "7"
    assert j.detail is not None and j.detail.startswith("boxed")
    j = judge_text("I do not know.", "7")
    assert (
        not j.correct and j.score == 0.0 and j.extracted is None and j.detail == "no answer found"
    )


def test_judge_math_batch_and_missing_gold() -> None:
    out = judge_math(["#### 5", "\\boxed{6}"], [{"answer": "5"}, {"answer": "5"}], [{}, {}])
    assert [j.correct for j in out] == [True, False]
    with pytest.raises(JudgeError, match="p1"):
        judge_math(["5"], [{"solution": "x"}], [{"prompt_id": "p1"}])


# ---------------------------------------------------------------------------------------------
# Pathological inputs
# ---------------------------------------------------------------------------------------------


def test_very_long_answer_is_not_parsed() -> None:
    start = time.monotonic()
    j = judge_text("\\boxed{" + "1" * 5000 + "}", "5")
    assert not j.correct and "longer than" in (j.detail or "")
    j = judge_text("(" * 400 + "1" + ")" * 400, "5")
    assert not j.correct
    # many unclosed boxes, a huge output: extraction stays linear-ish
    assert extract_answer("\\boxed{" * 20000 + " 5").answer == "5"
    assert judge_text("x" * 1_000_000 + " so the answer is 5", "5").correct
    assert time.monotonic() - start < 5


def test_power_tower_times_out_in_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qmath, "TIME_LIMIT_S", 0.5)
    start = time.monotonic()
    correct, how = qmath.compare("5", "9^{9^{9^{9}}}")
    assert not correct and "timed out" in how
    assert time.monotonic() - start < 3
    # the module still works after an interrupted comparison
    assert answers_match("\\frac{1}{2}", "0.5")


def test_someone_elses_timer_is_left_alone() -> None:
    import signal

    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        assert qmath.compare("5", "9^{9^{9^{9}}}") == (False, qmath.UNTIMED)
        assert answers_match("\\frac{1}{2}", "0.5")
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 20
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fired == []


def test_off_main_thread_no_signal_and_guarded() -> None:
    results: dict[str, tuple[bool, str] | bool] = {}

    def work() -> None:
        results["ok"] = answers_match("\\dfrac{1}{2}", "0.5")
        results["bad"] = answers_match("1/2", "0.6")
        results["tower"] = qmath.compare("5", "9^{9^{9^{9}}}")
        results["huge"] = qmath.compare("5", "10^{100000}")

    thread = threading.Thread(target=work)
    start = time.monotonic()
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert results["ok"] is True and results["bad"] is False
    assert results["tower"] == (False, qmath.UNTIMED)
    assert results["huge"] == (False, qmath.UNTIMED)
    assert time.monotonic() - start < 10


# ---------------------------------------------------------------------------------------------
# Task families
# ---------------------------------------------------------------------------------------------


def test_math_family_reference_hub_and_math500_records() -> None:
    hub = {
        "problem": "What is $1+1$?",
        "level": "Level 1",
        "type": "Algebra",
        "solution": "We have $1+1=\\boxed{2}$.",
    }
    assert FAMILY_ALGEBRA.name == "math_algebra" and FAMILY_ALGEBRA.hf_config == "algebra"
    assert FAMILY_GEOMETRY.name == "math_geometry" and FAMILY_GEOMETRY.hf_config == "geometry"
    assert FAMILY_ALGEBRA.render_text(hub) == "Problem: What is $1+1$?\n\nSolution:"
    assert FAMILY_ALGEBRA.render_user(hub) == "What is $1+1$?"
    assert FAMILY_ALGEBRA.reference(hub)["answer"] == "2"
    m500 = {**hub, "answer": "2.0", "subject": "Algebra", "level": 1, "unique_id": "test/a/1.json"}
    ref = FAMILY_ALGEBRA.reference(m500)
    assert ref["answer"] == "2.0" and ref["unique_id"] == "test/a/1.json"
    from divtrace.tasks.base import TaskDataError

    with pytest.raises(TaskDataError, match="boxed"):
        FAMILY_ALGEBRA.reference({**hub, "solution": "no box"})


# ---------------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------------


def test_gsm8k_gold_solutions_judged_against_gold(shared_real) -> None:
    records = read_jsonl(shared_real / "gsm8k_test_100.jsonl")
    assert len(records) == 100
    for record in records:
        gold = gold_answer(record["answer"])
        assert judge_text(record["answer"], gold).correct, record["answer"][-60:]
        wrong = str(int(gold) + 1)
        assert not judge_text(record["answer"], wrong).correct, (gold, wrong)


def test_math500_solutions_judged_against_answers(shared_real) -> None:
    records = read_jsonl(shared_real / "math500_test.jsonl")
    assert len(records) == 500
    # the task family's gold is the answer field; without it, the last \boxed{} of the solution
    misses = [
        r["unique_id"]
        for r in records
        if not judge_text(r["solution"], FAMILY_ALGEBRA.reference(r)["answer"]).correct
    ]
    assert len(misses) <= 0.02 * len(records), misses
    boxed_differs = [r["unique_id"] for r in records if last_boxed(r["solution"]) != r["answer"]]
    assert len(boxed_differs) <= 0.02 * len(records), boxed_differs


def test_math500_answers_equivalent_through_math_verify(shared_real) -> None:
    # Same check, bypassing the normalised-string shortcut: math-verify alone must agree.
    records = read_jsonl(shared_real / "math500_test.jsonl")
    misses = [r["unique_id"] for r in records if not qmath._verify(r["answer"], r["answer"])]
    assert len(misses) <= 0.02 * len(records), misses


def test_math500_solutions_rejected_against_other_answers(shared_real) -> None:
    records = read_jsonl(shared_real / "math500_test.jsonl")[:200]
    accepted = [
        (r["answer"], other["answer"])
        for r, other in zip(records, records[1:] + records[:1], strict=True)
        if judge_text(r["solution"], other["answer"]).correct
        and not answers_match(other["answer"], r["answer"])
    ]
    assert accepted == []


def _group(latex: str, start: int) -> int:
    """Index after the ``{...}`` group opening at ``latex[start]``."""
    depth = 0
    for j in range(start, len(latex)):
        depth += {"{": 1, "}": -1}.get(latex[j], 0)
        if depth == 0:
            return j + 1
    raise ValueError(latex)


def _plain(latex: str, spelling: str = "words") -> str:
    """LaTeX transcribed by hand as plain text, the way a model might write it.

    ``words``: ``\\sqrt{x}``/``\\sqrt2`` → ``sqrt(x)``/``sqrt(2)``, ``\\sqrt[n]{x}`` →
    ``(x)^(1/n)``, ``\\pi`` → ``pi``, ``\\infty`` → ``infinity``; ``unicode``: ``√(x)``, ``π``,
    ``∞``; ``flat``: as ``words``, and ``\\frac{a}{b}`` → ``(a)/(b)``, ``\\left``/``\\right`` dropped.
    """
    root, pi, infinity = ("√", "π", "∞") if spelling == "unicode" else ("sqrt", "pi", "infinity")
    out: list[str] = []
    i = 0
    while i < len(latex):
        command = re.match(r"\\(sqrt|pi|infty|d?frac|left|right)(?![A-Za-z])\s*", latex[i:])
        if command is None or (
            spelling != "flat" and command.group(1) in ("frac", "dfrac", "left", "right")
        ):
            out.append(latex[i])
            i += 1
            continue
        name, i = command.group(1), i + command.end()
        if name == "pi":
            out.append(pi + (" " if latex[i : i + 1].isalpha() else ""))
        elif name == "infty":
            out.append(infinity)
        elif name in ("left", "right"):
            pass
        elif name in ("frac", "dfrac"):
            if latex[i : i + 1] != "{":  # \frac12, \frac{270}7: left as LaTeX
                out.append("\\frac")
                continue
            middle = _group(latex, i)
            end = _group(latex, middle) if latex[middle : middle + 1] == "{" else None
            if end is None:
                out.append("\\frac")
                continue
            top, bottom = latex[i + 1 : middle - 1], latex[middle + 1 : end - 1]
            out.append(f"({_plain(top, spelling)})/({_plain(bottom, spelling)})")
            i = end
        else:
            index = re.match(r"\[(\d+)\]", latex[i:])
            if index is not None:
                i += index.end()
            if latex[i : i + 1] == "{":
                end = _group(latex, i)
                radicand, i = _plain(latex[i + 1 : end - 1], spelling), end
            else:
                radicand, i = latex[i], i + 1
            if index is not None:
                out.append(f"({radicand})^(1/{index.group(1)})")
            else:
                out.append(f"{root}({radicand})")
    return "".join(out)


def test_plain_transcription() -> None:
    assert _plain("\\frac{\\sqrt{3}}{3}") == "\\frac{sqrt(3)}{3}"
    assert _plain("\\frac{\\sqrt{3}}{3}", "flat") == "(sqrt(3))/(3)"
    assert _plain("11\\sqrt2 + \\sqrt{2+\\sqrt{3}}") == "11sqrt(2) + sqrt(2+sqrt(3))"
    assert _plain("\\pi r^2, \\sqrt[3]{4}, (2,\\infty)") == "pi r^2, (4)^(1/3), (2,infinity)"
    assert _plain("2\\pi-\\sqrt{2}", "unicode") == "2π-√(2)"
    assert _plain("\\left( 3, \\frac{\\pi}{2} \\right)", "flat") == "( 3, (pi)/(2) )"
    assert _plain("\\frac{270}7", "flat") == "\\frac{270}7"


MATH500_PLAIN = re.compile(r"\\(?:sqrt|pi|infty)")


def _math500_answers(shared_real) -> list[str]:
    return [r["answer"] for r in read_jsonl(shared_real / "math500_test.jsonl")]


def test_math500_golds_unchanged_by_plain_rewrite(shared_real) -> None:
    golds = _math500_answers(shared_real)
    changed = {g: qmath.latexify_plain(g) for g in golds if qmath.latexify_plain(g) != g}
    # only a trailing "\text{ degrees}" and a thousands separator are touched
    assert changed == {"\\frac{270}7\\text{ degrees}": "\\frac{270}7", "58,500": "58500"}
    for gold in golds:
        assert answers_match(gold, gold), gold
        assert answers_match(gold, qmath.latexify_plain(gold)), gold


@pytest.mark.parametrize("spelling", ["words", "unicode", "flat"])
def test_math500_golds_written_as_plain_text_are_accepted(shared_real, spelling: str) -> None:
    # every MATH500 gold with a root, pi or infinity (37 of the 500), transcribed as plain text
    golds = [g for g in _math500_answers(shared_real) if MATH500_PLAIN.search(g)]
    assert len(golds) >= 30
    plain = {g: _plain(g, spelling) for g in golds}
    assert all(plain[g] != g for g in golds)
    misses = [(g, plain[g]) for g in golds if not answers_match(g, plain[g])]
    assert misses == [], f"{1 - len(misses) / len(golds):.1%} of {len(golds)}; missed {misses}"


def test_math500_plain_golds_reject_other_problems_golds(shared_real) -> None:
    # each plain-text gold against the 6 textually closest other golds with a root, pi or
    # infinity that the LaTeX golds themselves tell apart: none is accepted
    golds = sorted({g for g in _math500_answers(shared_real) if MATH500_PLAIN.search(g)})
    checked, accepted = 0, []
    for gold in golds:
        plain = _plain(gold)
        others = sorted(
            (g for g in golds if g != gold),
            key=lambda g: -difflib.SequenceMatcher(None, plain, _plain(g)).ratio(),
        )[:6]
        for other in others:
            if answers_match(other, gold):  # the same answer (2\sqrt{5} and 2 \sqrt{5})
                continue
            checked += 1
            if answers_match(other, plain) or answers_match(other, _plain(gold, "flat")):
                accepted.append((other, plain))
    assert checked >= 150
    assert accepted == []
