"""Math answer correctness (GSM8K, MATH): extract the final answer, compare it with math-verify.

Extraction — :func:`extract_answer` tries these rules in order and uses the first that finds
something (the ``method`` it reports is the rule's name):

1. ``hash``: the last line of the form ``#### x`` (GSM8K's answer format) where ``x``, cleaned,
   starts like an answer (a digit, sign, ``.``, ``$``, ``\\`` or ``(``): a Markdown heading such
   as ``#### Step 2`` is not an answer.
2. ``boxed``: the content of the last complete ``\\boxed{...}`` or ``\\fbox{...}`` (braces
   balanced and nested; ``\\{``/``\\}`` are literal braces; ``\\boxed 5`` also counts). A box that
   never closes (a truncated output) is skipped in favour of the previous complete one.
3. ``answer_is``: the text after the last "answer is" (e.g. "The final answer is:";
   case-insensitive), up to the end of its sentence or line.
4. ``last_number``: the last number in the text (``-1,234.5``, ``3/4``), thousands separators
   removed.

Rules 1–3 clean what they find: Markdown bold, surrounding ``$``/``\\(...\\)``/``\\[...\\]`` and
trailing punctuation are dropped, and a number followed by plain words ("18 dollars") keeps the
number, unless a word is mathematics (``2 sqrt x``, ``3 pi``, ``2 million`` stay whole).

Equivalence — :func:`answers_match` drops a trailing unit (``\\text{ cm}``, with its leading
space), rewrites plain-text mathematics as LaTeX (:func:`latexify_plain`, below), compares
normalised strings (whitespace, ``$``, ``\\left``/``\\right``, ``\\dfrac``, ``\\text{}``, degrees,
thousands separators, ``(A)`` → ``A``), then parses both sides as LaTeX with math-verify
(``\\boxed{x}``) and asks :func:`math_verify.verify` (numeric within 6 decimals, symbolic, sets,
tuples, intervals, percentages). The gold is the task reference's ``answer`` (GSM8K: a plain
number; MATH: LaTeX). Both sides go through the same steps; on LaTeX golds the rewrite changes
nothing that matters (tested on all of MATH500).

Plain text — models often box ``12pi`` or ``2 sqrt(113)`` for a gold ``12\\pi`` or
``2\\sqrt{113}``; math-verify reads those as products of letters and rejects them.
:func:`latexify_plain` rewrites, before the comparison (regular expressions and a bracket
matcher, no SymPy):

- ``pi`` as a token (``12pi``, ``3pi/4``, ``pi r``; not ``pine``, ``spin``, ``pi2``) and ``π`` →
  ``\\pi``; ``infinity``, ``Infinity``, ``inf``, ``infty``, ``∞`` → ``\\infty``;
- roots: ``sqrt(x)``, ``sqrt{x}``, ``\\sqrt(x)``, ``√(x)``, ``√{x}``, nested ones, and a bare
  number or letter (``sqrt 3``, ``sqrt3``, ``√5``) that the end or a new term (``+ - , ; = ) ] }``)
  follows → ``\\sqrt{x}``; ``sqrt[n](x)`` → ``\\sqrt[n]{x}``; ``cbrt(x)``, ``∛x`` → ``\\sqrt[3]{x}``;
- powers: ``x^(a)`` → ``x^{a}`` (balanced), ``2^-3`` → ``2^{-3}``, ``**`` → ``^``, ``²``/``³``;
- ``sin(``, ``cos(``, ``tan(`` (and ``cot sec csc arcsin arccos arctan ln``) → ``\\sin(`` …;
  plain ``frac{``/``dfrac{``/``tfrac{`` → ``\\frac{``; ``) U (`` between intervals and the
  union sign → ``\\cup``; ``±``, ``×``, ``·``, ``≤``, ``≥``, ``≠``, Unicode minus, ``°``;
- a number followed by ``thousand``/``million``/``billion``/``trillion`` → ``n\\cdot 10^{k}``; a
  trailing ``degrees``/``deg``/``\\text{degrees}`` after a number is dropped (as ``^\\circ`` is);
  a whole answer like ``1,000.0`` loses its thousands separators.

Not rewritten, because the reading is ambiguous or the form is rare: a root or ``pi`` right after
``/`` and a number or letter (``1/2pi``, ``4/3 pi``, ``1/2 sqrt(3)``: does the slash take it?); a
bare radicand followed by anything else (``sqrt 3/2``, ``sqrt 2x``, ``sqrt 2^3``); ``+-``;
``log`` (which base?); mixed numbers (``2 1/2``); ``Pi``; ``x`` as a times sign. Those reach
math-verify unchanged, as before (it accepts none of the tested ones). Extraction keeps such
words too: a boxed ``2 sqrt x`` or ``2 million`` is not cut to ``2`` as "18 dollars" is to ``18``.

Departure from the paper — the paper's code matched MATH answers as strings or floats only, with
no LaTeX or symbolic equivalence (``PAPER.md`` §6.1), so ``\\frac{1}{2}`` against ``0.5`` or
``12pi`` against ``12\\pi`` counted as wrong there. divtrace's checker is more accurate on
purpose; its accuracies are therefore not the paper's numbers for the same outputs.

Safety — math-verify's own timeouts use ``signal.alarm`` and fail outside the main thread, so they
are switched off; instead each comparison runs under one ``setitimer`` limit
(:data:`TIME_LIMIT_S`) when called in the main thread with no other interval timer running.
Without a timer (other threads, or another timer already set), answers that look expensive for
SymPy (power towers, huge exponents or factorials, deep nesting) are compared as strings only. In every thread an extracted answer longer than
:data:`MAX_ANSWER_CHARS` is judged incorrect without parsing, and only the last
:data:`MAX_TEXT_CHARS` characters of a very long output are searched.
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from divtrace.quality.base import Judgement, per_sample, prompt_error

TIME_LIMIT_S = 5.0
MAX_ANSWER_CHARS = 1000
MAX_TEXT_CHARS = 200_000
MAX_NESTING = 40
MAX_BOX_CHARS = 20_000  # a \boxed{ that does not close within this many characters is skipped
MAX_BOXES = 50  # only the last boxes of an output are tried
UNTIMED = "expensive expression compared as a string only (no timer available)"

# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------

_HASH = re.compile(r"^[ \t]*####[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_ANSWER_START = re.compile(r"[-+.$\\(\d]")
_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_ANSWER_IS = re.compile(r"(?:final\s+)?answer\s+is\s*:?[ \t]*", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|(?<![\w.])-?\.\d+")
_SENTENCE_END = re.compile(r"\.(?=\s|$)|\n")
# words that are mathematics, not a unit: "2 sqrt x", "3 pi", "2 million" keep their words
_MATH_WORD = r"(?:pi|sqrt|cbrt|inf|infinity|infty|sin|cos|tan|ln|thousand|million|billion|trillion)"
_NUMBER_WITH_WORDS = re.compile(
    r"^\\?\$?\s*(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?)"
    rf"(?:\s+(?![A-Za-z\s\-']*(?<![A-Za-z]){_MATH_WORD}(?![A-Za-z]))[A-Za-z]{{2,}}[A-Za-z\s\-']*)?$"
)


@dataclass(frozen=True)
class Extraction:
    """The final answer found in a text: ``answer`` (None if none) and the rule that found it."""

    answer: str | None
    method: str


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the ``{...}`` group opening at ``text[start]``, and the index after it.

    None when the group does not close within :data:`MAX_BOX_CHARS` characters.
    """
    depth = 0
    i = start
    stop = min(len(text), start + MAX_BOX_CHARS)
    while i < stop:
        char = text[i]
        if char == "\\":
            i += 2  # \{ and \} are literal braces, not grouping
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}``/``\\fbox{...}`` in ``text`` (None if none)."""
    for match in reversed(list(_BOX.finditer(text))[-MAX_BOXES:]):
        rest = match.end()
        while rest < len(text) and text[rest] in " \t":
            rest += 1
        if rest < len(text) and text[rest] == "{":
            group = _braced(text, rest)
            if group is not None:
                return group[0].strip()
        elif rest > match.end():
            # "\boxed 5": the argument is the next token
            token = re.match(r"[^\s$]+", text[rest:])
            if token is not None:
                return token.group(0).rstrip(".,;")
    return None


def _strip_wrappers(text: str) -> str:
    text = text.strip()
    changed = True
    while changed and text:
        changed = False
        for left, right in (("**", "**"), ("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if (
                len(text) >= len(left) + len(right)
                and text.startswith(left)
                and text.endswith(right)
            ):
                text = text[len(left) : len(text) - len(right)].strip()
                changed = True
        if text.endswith((".", ",", ";", ":")):
            text = text[:-1].rstrip()
            changed = True
    return text


def _clean(candidate: str, *, markdown: bool = True) -> str:
    """Drop ``$``/``\\(`` wrappers, trailing punctuation and (in prose) Markdown bold;
    "18 dollars" → "18"."""
    candidate = _strip_wrappers(candidate.replace("**", "") if markdown else candidate)
    number = _NUMBER_WITH_WORDS.match(candidate)
    return number.group(1) if number is not None else candidate


def _after_hash(text: str) -> str | None:
    for line in reversed(_HASH.findall(text)):
        candidate = _clean(line)
        if _ANSWER_START.match(candidate):
            return candidate
    return None


def _after_answer_is(text: str) -> str | None:
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :]
    end = _SENTENCE_END.search(rest)
    return _clean(rest[: end.start()] if end else rest) or None


def extract_answer(text: str) -> Extraction:
    """The final answer of a model output, by the rules in the module docstring."""
    text = text[-MAX_TEXT_CHARS:]
    hashed = _after_hash(text)
    if hashed is not None:
        return Extraction(hashed, "hash")
    boxed = last_boxed(text)
    if boxed is not None:
        return Extraction(_clean(boxed, markdown=False), "boxed")
    answer_is = _after_answer_is(text)
    if answer_is is not None:
        return Extraction(answer_is, "answer_is")
    numbers = _NUMBER.findall(text)
    if numbers:
        return Extraction(numbers[-1].replace(",", ""), "last_number")
    return Extraction(None, "none")


# ---------------------------------------------------------------------------------------------
# Plain-text mathematics
# ---------------------------------------------------------------------------------------------

_SYMBOLS = {
    "∞": "\\infty",
    "\u222a": "\\cup",  # the union sign
    "×": "\\times",
    "·": "\\cdot",
    "⋅": "\\cdot",
    "−": "-",
    "≤": "\\le",
    "≥": "\\ge",
    "≠": "\\ne",
    "±": "\\pm",
    "²": "^{2}",
    "³": "^{3}",
    "°": "^{\\circ}",
}
_SYMBOL = re.compile("|".join(map(re.escape, _SYMBOLS)))
_DOUBLE_STAR = re.compile(r"(?<=[\w)}\]])\s*\*\*\s*(?=[\w({\\.-])")
# a root head (sqrt, cbrt, √, ∛, or \sqrt before parentheses) or a power sign
_HEAD = re.compile(
    r"(?P<plain>(?<![A-Za-z\\])(?:sqrt|cbrt))|(?P<sign>[√∛])|(?P<latex>\\sqrt)(?![A-Za-z])|(?P<power>\^)"
)
_ROOT_INDEX = re.compile(r"\s*\[([0-9A-Za-z]{1,3})\]")
_OPEN = re.compile(r"\s*([({])")
# a bare radicand ("sqrt 3", "√x") is one number or letter that a new term or the end follows:
# "sqrt 3/2" (√3/2 or √(3/2)?), "sqrt 2x", "sqrt 2^3", "sqrt 3 pi" are left as they are
_TERM_END = r"(?=\s*(?:$|[-+,;=)\]}]|\\(?:right|cup|pm)))"
_BARE_RADICAND = re.compile(r"\s*(\d+(?:\.\d+)?|[A-Za-z](?![A-Za-z]))" + _TERM_END)
_NEGATIVE_EXPONENT = re.compile(r"\s*(-\s*\d+(?:\.\d+)?)" + _TERM_END)  # "2^-3", not "2^-1/2"
# "1/2 sqrt(3)", "1/2pi": does the slash take the root (π) too? Ambiguous: left as it is.
_AFTER_SLASH_ATOM = re.compile(r"/\s*(?:\d+(?:\.\d+)?|[A-Za-z])\s*$")
_PI = re.compile(r"(?<![A-Za-z\\])pi(?![A-Za-z0-9_])|π")  # not pine, spin, pi2, \pi
_INFINITY = re.compile(r"(?<![A-Za-z\\])(?:[Ii]nfinity|infty|[Ii]nf)(?![A-Za-z])")
_FUNCTION = re.compile(
    r"(?<![A-Za-z\\])(arcsin|arccos|arctan|sin|cos|tan|cot|sec|csc|ln)(?=\s*[(^])"
)
_PLAIN_FRAC = re.compile(r"(?<![A-Za-z\\])[dt]?frac(?=\s*\{)")
_UNION = re.compile(r"(?<=[)\]])\s*U\s*(?=[(\[])")
_MULTIPLIER = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s*(thousand|million|billion|trillion)(?![A-Za-z])"
)
_POWERS_OF_TEN = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_TRAILING_DEGREES = re.compile(
    r"(?<=[\d})])\s*(?:degrees?|deg|\\(?:text|mbox|mathrm)\s*\{\s*(?:degrees?|deg)\s*\})\s*$"
)


def _closing(text: str, start: int) -> int | None:
    """Index of the bracket closing the ``(`` or ``{`` at ``text[start]`` (None if it never does)."""
    opener = text[start]
    closer = ")" if opener == "(" else "}"
    depth = 0
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == opener:
            depth += 1
        elif char == closer:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _groups(text: str, depth: int = 0) -> str:
    """Roots and powers written with parentheses, or plain roots, as LaTeX groups.

    ``sqrt(x)``, ``sqrt{x}``, ``sqrt 3``, ``√x``, ``\\sqrt(x)`` → ``\\sqrt{x}``; ``cbrt(x)``,
    ``∛x`` → ``\\sqrt[3]{x}``; ``x^(a+b)`` → ``x^{a+b}``. Anything else is left as it is.
    """
    if depth > MAX_NESTING:
        return text
    out: list[str] = []
    pos = 0
    for head in _HEAD.finditer(text):
        if head.start() < pos:
            continue  # inside a group already rewritten
        out.append(text[pos : head.start()])
        pos = head.end()
        kind = head.lastgroup
        rest = head.end()
        if kind == "power":
            group = _OPEN.match(text, rest)
            close = _closing(text, group.start(1)) if group and group.group(1) == "(" else None
            negative = _NEGATIVE_EXPONENT.match(text, rest)
            if group is not None and close is not None:
                out.append("^{" + _groups(text[group.end(1) : close], depth + 1) + "}")
                pos = close + 1
            elif negative is not None:
                out.append("^{" + re.sub(r"\s+", "", negative.group(1)) + "}")
                pos = negative.end()
            else:
                out.append("^")
            continue
        if kind != "latex" and _AFTER_SLASH_ATOM.search(text, 0, head.start()):
            out.append(head.group(0))
            continue
        index = ""
        if head.group(0) in ("cbrt", "∛"):
            index = "[3]"
        else:
            given = _ROOT_INDEX.match(text, rest)
            if given is not None:
                index, rest = f"[{given.group(1)}]", given.end()
        group = _OPEN.match(text, rest)
        if group is not None and (group.group(1) == "(" or kind != "latex"):
            close = _closing(text, group.start(1))
            if close is not None:
                inner = _groups(text[group.end(1) : close], depth + 1)
                out.append(f"\\sqrt{index}{{{inner}}}")
                pos = close + 1
                continue
        elif kind != "latex":
            bare = _BARE_RADICAND.match(text, rest)
            if bare is not None:
                out.append(f"\\sqrt{index}{{{bare.group(1)}}}")
                pos = bare.end()
                continue
        out.append(head.group(0))  # "\sqrt{x}", "\sqrt3": LaTeX, math-verify reads it
    out.append(text[pos:])
    return "".join(out)


def _symbol(match: re.Match[str]) -> str:
    latex = _SYMBOLS[match.group(0)]
    follows = match.string[match.end() : match.end() + 1]
    return latex + " " if latex[-1].isalpha() and follows.isalpha() else latex  # "∞x": \infty x


def _pi(match: re.Match[str]) -> str:
    if _AFTER_SLASH_ATOM.search(match.string, 0, match.start()):
        return match.group(0)
    return "\\pi " if match.string[match.end() : match.end() + 1].isalpha() else "\\pi"


@lru_cache(maxsize=16384)
def latexify_plain(answer: str) -> str:
    """Plain-text mathematics in an answer rewritten as the LaTeX that math-verify reads.

    ``12pi`` → ``12\\pi``, ``2 sqrt(113)`` → ``2 \\sqrt{113}``, ``(-inf, 3]`` → ``(-\\infty, 3]``,
    ``x^(1/2)`` → ``x^{1/2}``; the module docstring lists every rule. Conservative: text whose
    reading is ambiguous (``1/2pi``, ``sqrt 2x``, ``sqrt 3/2``) is left as it is, and LaTeX passes
    through unchanged.
    """
    text = _SYMBOL.sub(_symbol, answer)
    text = _DOUBLE_STAR.sub("^", text)
    text = _groups(text)
    text = _PI.sub(_pi, text)
    text = _INFINITY.sub(r"\\infty", text)
    text = _FUNCTION.sub(r"\\\1", text)
    text = _PLAIN_FRAC.sub(r"\\frac", text)
    text = _UNION.sub(r" \\cup ", text)
    text = _MULTIPLIER.sub(
        lambda m: f"{m.group(1)}\\cdot 10^{{{_POWERS_OF_TEN[m.group(2)]}}}", text
    )
    stripped = _TRAILING_DEGREES.sub("", text)
    if stripped.strip():
        text = stripped
    if _THOUSANDS.match(text.strip()):
        text = text.replace(",", "")
    return text


# ---------------------------------------------------------------------------------------------
# Equivalence
# ---------------------------------------------------------------------------------------------

_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|°|\\degree")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")


def normalize(answer: str) -> str:
    """A canonical string form of an answer, for the exact-string shortcut."""
    text = answer.strip()
    text = _strip_wrappers(text)
    text = text.replace("\\$", "").replace("$", "")
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = text.replace("\\left", "").replace("\\right", "")
    text = re.sub(r"\\[!,;: ]", "", text)
    text = _TEXT.sub(r"\1", text)
    text = _DEGREES.sub("", text)
    text = re.sub(r"\s+", "", text)
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    if re.fullmatch(r"\([A-Za-z]\)", text):  # a multiple-choice letter: (A) is A
        text = text[1:-1]
    return text


_POWER_TOWER = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\d+\s*\^|\*\*[^*]*\*\*")
_BIG_EXPONENT = re.compile(r"(?:\^|\*\*)\s*\{?\s*\d{4,}")
_BIG_FACTORIAL = re.compile(r"\d{4,}\s*!")


def _looks_expensive(answer: str) -> bool:
    depth = max_depth = 0
    for char in answer:
        if char in "{([":
            depth += 1
            max_depth = max(max_depth, depth)
        elif char in "})]":
            depth -= 1
    return bool(
        max_depth > MAX_NESTING
        or _POWER_TOWER.search(answer)
        or _BIG_EXPONENT.search(answer)
        or _BIG_FACTORIAL.search(answer)
    )


class _TimeLimit(BaseException):
    """Raised by the alarm; a BaseException so that math-verify's ``except Exception`` lets it by."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[bool]:
    """Limit the block to ``seconds`` (main thread only); yields whether a limit is in force."""
    if (
        threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "setitimer")
        or signal.getitimer(signal.ITIMER_REAL)[0] > 0  # someone else's timer: leave it alone
    ):
        yield False
        return

    def _raise(signum: int, frame: object) -> None:
        raise _TimeLimit

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _quiet_math_verify() -> None:
    # Timeouts are ours (see _time_limit); math-verify would warn once that its own are off.
    import math_verify.grader
    import math_verify.parser

    for module in (math_verify.grader, math_verify.parser):
        if hasattr(module, "TIMEOUT_WARNING_SHOWN"):
            module.TIMEOUT_WARNING_SHOWN = True


@lru_cache(maxsize=4096)
def _parse(answer: str) -> tuple[Any, ...]:
    from math_verify import parse

    _quiet_math_verify()
    return tuple(parse(f"\\boxed{{{answer}}}", parsing_timeout=None))


@lru_cache(maxsize=16384)
def _verify(gold: str, pred: str) -> bool:
    from math_verify import verify

    gold_parsed = _parse(gold)
    pred_parsed = _parse(pred)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(list(gold_parsed), list(pred_parsed), timeout_seconds=None))


_UNITS = re.compile(r"\s*\\(?:text|mbox|mathrm)\s*\{\s+[A-Za-z][^{}]*\}\s*$")


def _strip_units(answer: str) -> str:
    """``5.4 \\text{ cents}`` → ``5.4``: a trailing text group that starts with a space is a unit."""
    stripped = _UNITS.sub("", answer)
    return stripped if stripped.strip() else answer


def compare(gold: str, pred: str) -> tuple[bool, str]:
    """Whether ``pred`` is equivalent to ``gold``, and how that was decided."""
    if len(pred) > MAX_ANSWER_CHARS:
        return False, f"answer longer than {MAX_ANSWER_CHARS} characters, not parsed"
    gold, pred = latexify_plain(_strip_units(gold)), latexify_plain(_strip_units(pred))
    if normalize(gold) == normalize(pred):
        return True, "string match"
    try:
        with _time_limit(TIME_LIMIT_S) as limited:
            if not limited and (_looks_expensive(pred) or _looks_expensive(gold)):
                return False, UNTIMED
            return _verify(gold, pred), "math-verify"
    except _TimeLimit:  # also if the alarm fires while the timer is being switched off
        return False, f"math-verify timed out after {TIME_LIMIT_S:g} s"


def answers_match(gold: str, pred: str) -> bool:
    """Whether the extracted answer ``pred`` is mathematically equivalent to ``gold``."""
    return compare(gold, pred)[0]


def judge_text(text: str, gold: str) -> Judgement:
    """Judge one model output against the gold answer."""
    found = extract_answer(text)
    if found.answer is None:
        return Judgement(False, 0.0, None, "no answer found")
    correct, how = compare(gold, found.answer)
    return Judgement(correct, float(correct), found.answer, f"{found.method}; {how}")


def _judge_math(answer: str, reference: Mapping[str, Any], prompt: Mapping[str, Any]) -> Judgement:
    """BatchJudge for GSM8K and MATH: the reference's ``answer`` is the gold."""
    gold = reference.get("answer")
    if gold is None or str(gold).strip() == "":
        raise prompt_error(prompt, "reference has no 'answer'")
    return judge_text(answer, str(gold))


judge_math = per_sample(_judge_math)
