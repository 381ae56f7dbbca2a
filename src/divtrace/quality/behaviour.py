"""Behavioural classes of code answers: programs grouped by what they do on a problem's inputs.

Two programs are one answer class when they behave alike: called on the same inputs, each call
returns the same value (compared as plain data) or raises the same type of exception. The
correctness judge asks whether a program passes; this module asks which programs are the same
solution, so that the answer-class metrics (:mod:`divtrace.metrics.classes`) and the
``behaviours`` metric count distinct solutions of a code task.

* **Inputs** (:func:`problem_inputs`): the positional arguments of the calls the task's own
  tests make (HumanEval: calls of ``check``'s parameter, ``candidate(...)``; MBPP:
  ``<name>(...)`` in the ``test_list`` asserts, the name the first assert calls), read with :mod:`ast`,
  only calls whose arguments are all literals and that have no keywords (at most
  :data:`MAX_TEST_INPUTS`, first come first served, repeats dropped); then at most
  :data:`MAX_EXTRA_INPUTS` inputs derived from them (:func:`extra_inputs`) with a generator seeded
  by the prompt id: each argument keeps its type and each input its arity (integers moved by
  one or doubled, floats scaled, strings and lists reversed, truncated or shuffled, tuples and
  dicts changed element by element). Nothing comes from the gold solution.
* **Program** (:func:`candidate_program`): the candidate's program as the correctness judge runs
  it (:func:`divtrace.quality.code.humaneval_run`, :func:`~divtrace.quality.code.mbpp_run`,
  the prompt style included), and its entry point (HumanEval's ``entry_point``, MBPP's asserted
  name).
* **Signature** (:func:`signature`): one outcome per input, from
  :func:`divtrace.quality.sandbox.run_calls` (one sandbox process per program): a value's
  canonical text (:func:`canonical`: floats at :data:`FLOAT_DIGITS` significant digits, sets and
  dicts in sorted order, types kept apart: ``1``, ``1.0`` and ``True`` differ), an exception's
  type name, or a fault (the program did not load, a value that is not plain data, the time ran
  out, the process ended), each fault its own outcome. The signature's key is a short hash.

A problem without a literal test call has no inputs and so no behaviour classes (null keys:
the class metrics of its prompt are missing values). A timeout is a property of the machine as
much as of the program; :data:`DEFAULT_LIMITS` gives each program generous time for all its
calls.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import random
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import polars as pl

from divtrace.errors import ContractError, JudgeError
from divtrace.quality.align import expected_name
from divtrace.quality.code import humaneval_run, mbpp_run
from divtrace.quality.sandbox import CallOutcome, SandboxLimits, cleanup_on_signals, run_calls
from divtrace.quality.sandbox import child as protocol
from divtrace.tasks.styles import PAPER

#: Inputs taken from the task's tests, and inputs derived from them, per problem.
MAX_TEST_INPUTS = 8
MAX_EXTRA_INPUTS = 8
#: Significant digits a float keeps in a signature (float noise must not split classes).
FLOAT_DIGITS = 9
#: Characters of the hex digest a signature's key keeps.
KEY_LENGTH = 16
#: Limits of one program's run (all its calls together).
DEFAULT_LIMITS = SandboxLimits(timeout_s=10.0)
#: Tries at drawing a new derived input before giving up on the rest.
_DRAWS_PER_INPUT = 4


@dataclass(frozen=True)
class Problem:
    """What a problem's programs are called with: the entry point and the inputs (each a tuple
    of positional arguments); ``n_tests`` of them come from the tests, the rest are derived."""

    entry_point: str
    inputs: tuple[tuple[Any, ...], ...]
    n_tests: int


def _parse(code: str, what: str) -> ast.Module:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(code)
    except (SyntaxError, ValueError) as err:
        raise JudgeError(f"{what} is not valid Python: {err}") from None


def literal_calls(code: str, name: str, what: str = "test code") -> list[tuple[Any, ...]]:
    """The positional arguments of every call ``name(...)`` in ``code`` whose arguments are all
    literals (and that passes no keywords), in source order; repeats kept."""
    found: list[tuple[tuple[int, int], tuple[Any, ...]]] = []
    for node in ast.walk(_parse(code, what)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id != name or node.keywords:
            continue
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            continue
        try:
            args = tuple(ast.literal_eval(arg) for arg in node.args)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        found.append(((node.lineno, node.col_offset), args))
    return [args for _, args in sorted(found, key=lambda item: item[0])]


def _plain(args: tuple[Any, ...]) -> bool:
    """Whether the sandbox can pass ``args`` to a candidate (plain data, within its bounds)."""
    try:
        for arg in args:
            protocol.encode(arg)
    except (protocol.NotPlain, RecursionError):
        return False
    return True


def _distinct(inputs: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The inputs the sandbox can pass, repeats dropped, in order."""
    seen: set[str] = set()
    out: list[tuple[Any, ...]] = []
    for args in inputs:
        if not _plain(args):
            continue
        key = canonical(args)
        if key not in seen:
            seen.add(key)
            out.append(args)
    return out


def seed_of(prompt_id: str) -> int:
    """The generator seed of a problem's derived inputs: from its prompt id alone."""
    return int.from_bytes(hashlib.sha256(f"behaviour\0{prompt_id}".encode()).digest()[:8], "big")


def derive(value: Any, rng: random.Random) -> Any:
    """A value of the same type as ``value`` (and the same length for tuples), near it."""
    t = type(value)
    if t is bool:
        return not value if rng.random() < 0.5 else value
    if t is int:
        return rng.choice((value + 1, value - 1, value * 2))
    if t is float:
        if math.isfinite(value):
            return value * rng.choice((0.5, 1.5, 2.0, -1.0))
        return value
    if t is str or t is bytes:
        if not value:
            return value
        choice = rng.randrange(3)
        if choice == 0:
            return value[::-1]
        if choice == 1:
            return value[: rng.randrange(len(value))]
        chars = list(value)
        rng.shuffle(chars)
        return "".join(chars) if t is str else bytes(chars)
    if t is list:
        if not value:
            return []
        choice = rng.randrange(4)
        if choice == 0:
            return value[::-1]
        if choice == 1:
            return value[: rng.randrange(len(value))]
        if choice == 2:
            items = list(value)
            rng.shuffle(items)
            return items
        at = rng.randrange(len(value))
        return [derive(x, rng) if i == at else x for i, x in enumerate(value)]
    if t is tuple:
        return tuple(derive(x, rng) for x in value)
    if t is dict:
        return {k: derive(v, rng) for k, v in value.items()}
    if t is set or t is frozenset:
        items = sorted(value, key=canonical)
        kept = t(items[: rng.randrange(len(items) + 1)]) if items else value
        return kept
    return value  # None, complex, ...: kept as they are


def extra_inputs(
    inputs: Sequence[tuple[Any, ...]], seed: int, n: int = MAX_EXTRA_INPUTS
) -> list[tuple[Any, ...]]:
    """Up to ``n`` inputs derived from ``inputs`` (:func:`derive` on each argument of an input
    drawn at random), none equal to another or to one of ``inputs``; the same for the same
    ``seed``."""
    if not inputs or n <= 0:
        return []
    rng = random.Random(seed)
    seen = {canonical(args) for args in inputs}
    out: list[tuple[Any, ...]] = []
    for _ in range(n * _DRAWS_PER_INPUT):
        if len(out) >= n:
            break
        base = inputs[rng.randrange(len(inputs))]
        new = tuple(derive(arg, rng) for arg in base)
        key = canonical(new)
        if key not in seen and _plain(new):
            seen.add(key)
            out.append(new)
    return out


def _checked_name(test: str) -> str:
    """The parameter of HumanEval's ``check(candidate)``: the name its tests call."""
    for node in ast.walk(_parse(test, "test code")):
        if isinstance(node, ast.FunctionDef) and node.name == "check" and node.args.args:
            return node.args.args[0].arg
    return "candidate"


def _entry_point(family: str, reference: Mapping[str, Any]) -> tuple[str, str]:
    """(entry point, test code its calls are read from) of a problem."""
    if family == "humaneval":
        if "entry_point" not in reference or "test" not in reference:
            raise JudgeError(f"humaneval reference lacks 'entry_point'/'test': {sorted(reference)}")
        test = str(reference["test"])
        return _checked_name(test), test
    if family == "mbpp":
        tests = list(reference.get("test_list") or [])
        name = expected_name(tests)
        if name is None:
            raise JudgeError("mbpp reference has no 'assert <name>(' in its test_list")
        return name, "\n".join(tests)
    raise JudgeError(f"task family {family!r} has no behavioural classes (code families only)")


def problem_inputs(family: str, reference: Mapping[str, Any], prompt_id: str) -> Problem:
    """The entry point and inputs of a problem (module docstring): the tests' literal calls,
    then the inputs derived from them, seeded by ``prompt_id``."""
    called, code = _entry_point(family, reference)
    tests = _distinct(literal_calls(code, called, f"the tests of prompt {prompt_id!r}"))
    tests = tests[:MAX_TEST_INPUTS]
    entry = str(reference["entry_point"]) if family == "humaneval" else called
    extra = extra_inputs(tests, seed_of(prompt_id))
    return Problem(entry, (*tests, *extra), len(tests))


def candidate_program(
    family: str, answer: str, reference: Mapping[str, Any], prompt_style: str | None = None
) -> str:
    """The candidate's program as the correctness judge runs it (:mod:`divtrace.quality.code`)."""
    paper = prompt_style == PAPER
    if family == "humaneval":
        run, _ = humaneval_run(answer, reference, paper=paper)
    elif family == "mbpp":
        run, _ = mbpp_run(answer, reference, paper=paper)
    else:
        raise JudgeError(f"task family {family!r} has no behavioural classes (code families only)")
    return run.candidate


def _round(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = f"{x:.{FLOAT_DIGITS}g}"
    return "0" if text == "-0" else text


def canonical(value: Any) -> str:
    """A canonical text of plain data: equal for equal data (floats at :data:`FLOAT_DIGITS`
    significant digits, sets and dicts sorted), different across types (``1``, ``1.0``,
    ``True``, ``(1,)`` and ``[1]`` all differ)."""
    t = type(value)
    if value is None or t is bool or t is int or t is str or t is bytes:
        return repr(value)
    if t is float:
        return f"f{_round(value)}"
    if t is complex:
        return f"c({_round(value.real)},{_round(value.imag)})"
    if t is list:
        return "[" + ",".join(canonical(x) for x in value) + "]"
    if t is tuple:
        return "(" + ",".join(canonical(x) for x in value) + ",)"
    if t is set or t is frozenset:
        tag = "s" if t is set else "fs"
        return tag + "{" + ",".join(sorted(canonical(x) for x in value)) + "}"
    if t is dict:
        items = sorted(f"{canonical(k)}:{canonical(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    return f"<{t.__name__}>"  # the sandbox returns plain data only; never equal to a value


def outcome_text(outcome: CallOutcome) -> str:
    """One call's outcome as text: ``=<value>``, ``!<exception type>`` or ``#<fault>``."""
    if outcome.fault is not None:
        return f"#{outcome.fault}"
    if outcome.raised is not None:
        return f"!{outcome.raised}"
    return f"={canonical(outcome.value)}"


def signature(outcomes: Sequence[CallOutcome]) -> str:
    """The key of a program's signature: a short hash of its outcomes, in input order."""
    text = "\n".join(outcome_text(o) for o in outcomes)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:KEY_LENGTH]


Runner = Callable[[str, str, Sequence[Sequence[Any]], SandboxLimits], list[CallOutcome]]


def behaviour_keys(
    family: str,
    answers: Sequence[str],
    prompt_ids: Sequence[str],
    references: Mapping[str, Mapping[str, Any]],
    *,
    prompt_style: str | None = None,
    limits: SandboxLimits | None = None,
    workers: int | None = None,
    runner: Runner = run_calls,
) -> list[str | None]:
    """The behaviour key of each answer (of the prompt of the same position), None for a problem
    without inputs. Each distinct (program, problem) runs once, ``workers`` at a time."""
    if len(answers) != len(prompt_ids):
        raise ValueError(f"{len(answers)} answers but {len(prompt_ids)} prompt ids")
    problems: dict[str, Problem] = {}
    for pid in dict.fromkeys(prompt_ids):
        if pid not in references:
            raise ContractError(f"prompt {pid!r} is not in the prompts table")
        try:
            problems[pid] = problem_inputs(family, references[pid], pid)
        except JudgeError as err:
            raise JudgeError(f"prompt {pid!r}: {err}") from None
    jobs: dict[tuple[str, str], None] = {}
    wanted: list[tuple[str, str] | None] = []
    for answer, pid in zip(answers, prompt_ids, strict=True):
        if not problems[pid].inputs:
            wanted.append(None)
            continue
        try:
            program = candidate_program(family, answer, references[pid], prompt_style)
        except JudgeError as err:
            raise JudgeError(f"prompt {pid!r}: {err}") from None
        wanted.append((program, pid))
        jobs.setdefault((program, pid), None)
    chosen = limits or DEFAULT_LIMITS

    def run(job: tuple[str, str]) -> str:
        problem = problems[job[1]]
        return signature(runner(job[0], problem.entry_point, problem.inputs, chosen))

    todo = list(jobs)
    n = max(1, min(workers or 1, len(todo)))
    with cleanup_on_signals():
        if n == 1:
            keys = [run(job) for job in todo]
        else:
            # the pool's threads outlive the runs they start (the sandbox's parent-death signal)
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="behaviour") as pool:
                keys = list(pool.map(run, todo))
    found = dict(zip(todo, keys, strict=True))
    return [None if job is None else found[job] for job in wanted]


#: The key columns of the table :func:`behaviour_table` returns (then the key column).
SAMPLE_KEYS = ("model", "task", "cot", "prompt_id", "sample")


def _reference(value: Any, prompt_id: str) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError) as err:
        raise ContractError(f"prompt {prompt_id!r}: reference is not valid JSON ({err})") from err
    if not isinstance(decoded, Mapping):
        raise ContractError(f"prompt {prompt_id!r}: reference must be a JSON object")
    return decoded


def behaviour_table(
    generations: pl.DataFrame,
    prompts: pl.DataFrame,
    family: str,
    column: str,
    *,
    prompt_style: str | None = None,
    limits: SandboxLimits | None = None,
    workers: int | None = None,
    runner: Runner = run_calls,
) -> pl.DataFrame:
    """Per generation: its keys (:data:`SAMPLE_KEYS`, as strings and int64) and its behaviour
    key in ``column`` (null for an output the metrics drop, an unclosed reasoning trace or a
    sample never generated, and for a problem without inputs)."""
    for frame, columns, what in (
        (generations, (*SAMPLE_KEYS, "answer"), "generations"),
        (prompts, ("prompt_id", "reference"), "prompts"),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ContractError(f"{what} table lacks column(s) {missing}")
    keyed = generations.with_columns(
        pl.col(["model", "task", "cot", "prompt_id"]).cast(pl.String),
        pl.col("sample").cast(pl.Int64),
    )
    usable = pl.col("answer").is_not_null()
    if "think_closed" in keyed.columns:
        usable = usable & ~pl.col("think_closed").cast(pl.Boolean).eq_missing(False)
    if "finish_reason" in keyed.columns:
        usable = usable & pl.col("finish_reason").cast(pl.String).ne_missing("prompt_too_long")
    keyed = keyed.with_columns(usable.alias("_usable"))
    chosen = keyed.filter(pl.col("_usable"))
    ids = [str(p) for p in chosen.get_column("prompt_id").to_list()]
    asked = set(ids)
    references = {
        str(pid): _reference(ref, str(pid))
        for pid, ref in prompts.select("prompt_id", "reference").iter_rows()
        if str(pid) in asked
    }
    keys = behaviour_keys(
        family,
        [str(a) for a in chosen.get_column("answer").to_list()],
        ids,
        references,
        prompt_style=prompt_style,
        limits=limits,
        workers=workers,
        runner=runner,
    )
    found = chosen.select(SAMPLE_KEYS).with_columns(pl.Series(column, keys, dtype=pl.String))
    return keyed.select(SAMPLE_KEYS).join(
        found, on=list(SAMPLE_KEYS), how="left", maintain_order="left"
    )


__all__ = [
    "DEFAULT_LIMITS",
    "FLOAT_DIGITS",
    "MAX_EXTRA_INPUTS",
    "MAX_TEST_INPUTS",
    "Problem",
    "behaviour_keys",
    "behaviour_table",
    "candidate_program",
    "canonical",
    "derive",
    "extra_inputs",
    "literal_calls",
    "outcome_text",
    "problem_inputs",
    "seed_of",
    "signature",
]
