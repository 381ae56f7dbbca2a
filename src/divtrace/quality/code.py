"""Code correctness by execution: HumanEval and MBPP answers run in the sandbox (docs/design.md §6).

Each answer becomes a :class:`~divtrace.quality.sandbox.TestRun` (:func:`humaneval_run`,
:func:`mbpp_run`): the candidate's program (the code picked from the answer, after the problem's
prompt or setup code) and the trusted tests (the prompt or setup code again, then the problem's
tests), which call the candidate's function through a proxy that passes plain data only. They
run in :mod:`divtrace.quality.sandbox`, in parallel, the candidate and the tests in processes of
their own; an answer is correct when the tests run to completion. (:func:`humaneval_program` and
:func:`mbpp_program` give the same code as one program, as the benchmarks' own harnesses run
it.) A reference without the keys its task needs raises
:class:`~divtrace.errors.JudgeError` (naming the prompt where it has a ``prompt_id``).
"""

from __future__ import annotations

import ast
import builtins
import re
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from divtrace.errors import JudgeError
from divtrace.quality.align import paper_humaneval_program, paper_mbpp_program
from divtrace.quality.base import Judgement
from divtrace.quality.sandbox import SandboxLimits, TestRun, cleanup_on_signals, run_tests
from divtrace.tasks.humaneval import STOP as HUMANEVAL_STOP
from divtrace.tasks.styles import PAPER

#: Longest ``Judgement.extracted`` kept (characters).
MAX_EXTRACTED = 4000


_FENCE = re.compile(r"```[ \t]*([\w+.#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = ("", "python", "py", "python3", "py3")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """``(language tag, code)`` of each fenced block, in order (an unclosed last block counts)."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def _pick_block(text: str, names: Sequence[str]) -> str | None:
    blocks = code_blocks(text)
    if not blocks:
        return None
    for _tag, code in blocks:
        if any(_defines(code, name) for name in names):
            return code
        flat = textwrap.dedent(code)
        if any(_defines(flat, name) for name in names):
            return flat
    for tag, code in blocks:
        if tag in _PYTHON_TAGS:
            return code
    return blocks[0][1]


def _truncate_at(text: str, stops: Sequence[str]) -> str:
    cut = len(text)
    for stop in stops:
        at = text.find(stop)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


def _require(reference: Mapping[str, Any], keys: Sequence[str], task: str) -> None:
    missing = [k for k in keys if k not in reference]
    if missing:
        raise JudgeError(f"{task} reference lacks {missing}: {sorted(reference)}")


def humaneval_program(
    answer: str, reference: Mapping[str, Any], *, paper: bool = False
) -> tuple[str, str]:
    """``(program, candidate)`` for a HumanEval answer (``paper``: as the paper's checker builds
    it, :func:`divtrace.quality.align.paper_humaneval_program`).

    A fenced answer contributes the block defining the entry point (else the first Python block);
    an unfenced answer that defines the entry point at top level is a whole function; anything
    else is a completion of the prompt, cut at the standard stop sequences. The prompt (imports,
    helpers, the docstring-only stub) always comes first, so a whole function simply redefines
    the stub. Then the problem's tests and ``check(<entry_point>)``.
    """
    _require(reference, ("prompt", "test", "entry_point"), "humaneval")
    prompt, entry = str(reference["prompt"]), str(reference["entry_point"])
    if paper:
        return paper_humaneval_program(answer, prompt, str(reference["test"]), entry)
    block = _pick_block(answer, [entry])
    if block is not None:
        candidate = block
    elif _defines(answer, entry):
        candidate = answer
    else:
        candidate = _truncate_at(answer, HUMANEVAL_STOP)
    whole = _defines(candidate, entry)
    body = prompt + ("\n" if whole else "") + candidate
    program = f"{body}\n\n{reference['test']}\n\ncheck({entry})\n"
    return program, candidate


_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")


def mbpp_program(
    answer: str,
    reference: Mapping[str, Any],
    *,
    include_challenge: bool = False,
    paper: bool = False,
) -> tuple[str, str]:
    """``(program, candidate)`` for an MBPP answer: setup code, the program, the asserts.

    A fenced answer contributes the block defining a function the asserts call (else the first
    Python block); an unfenced answer is taken whole as the program. ``paper``: as the paper's
    checker builds it (:func:`divtrace.quality.align.paper_mbpp_program`: its first function
    renamed to the name the asserts call, no setup code, no challenge tests): the paper's
    prompts never show that name.
    """
    _require(reference, ("test_list",), "mbpp")
    if paper:
        return paper_mbpp_program(answer, list(reference["test_list"]))
    tests = list(reference["test_list"])
    if include_challenge:
        tests += list(reference.get("challenge_test_list") or [])
    names = list(dict.fromkeys(n for t in tests for n in _CALLED.findall(t)))
    block = _pick_block(answer, names)
    candidate = block if block is not None else _truncate_at(answer, ("\n```",))
    setup = str(reference.get("test_setup_code") or "")
    program = f"{setup}\n{candidate}\n\n" + "\n".join(tests) + "\n"
    return program, candidate


def humaneval_run(
    answer: str, reference: Mapping[str, Any], *, paper: bool = False
) -> tuple[TestRun, str]:
    """``(run, candidate)`` for a HumanEval answer: the candidate's program is the prompt and
    the answer's code (as in :func:`humaneval_program`); the tests are the prompt (for its
    helpers, such as ``poly`` or ``encode_cyclic``), the problem's ``check`` and
    ``check(<proxy of the entry point>)``."""
    program, candidate = humaneval_program(answer, reference, paper=paper)
    entry = str(reference["entry_point"])
    body = program[: program.rindex(f"\n\n{reference['test']}\n\ncheck({entry})\n")]
    tests = (
        f"{reference['prompt']}\n\n{reference['test']}\n\n"
        f"{entry} = __candidate__({entry!r})\ncheck({entry})\n"
    )
    return TestRun(body + "\n", tests), candidate


_CALLED_NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\(")


def _defined(code: str) -> set[str]:
    """Top-level names ``code`` defines (functions, classes, assignments, imports)."""
    try:
        with warnings.catch_warnings():  # the candidate's invalid escapes are not ours to report
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
    return names


def mbpp_run(
    answer: str,
    reference: Mapping[str, Any],
    *,
    include_challenge: bool = False,
    paper: bool = False,
) -> tuple[TestRun, str]:
    """``(run, candidate)`` for an MBPP answer: the candidate's program is the setup code and
    the answer's code; the tests are the setup code and the asserts, each name the asserts call
    (not defined by the setup code, nor a builtin the candidate does not redefine) bound to a
    proxy of the candidate's."""
    _, candidate = mbpp_program(
        answer, reference, include_challenge=include_challenge and not paper, paper=paper
    )
    tests = list(reference["test_list"])
    if include_challenge and not paper:
        tests += list(reference.get("challenge_test_list") or [])
    setup = "" if paper else str(reference.get("test_setup_code") or "")
    # A builtin's name is the candidate's where the candidate defines it (``def pow``).
    skip = _defined(setup) | (set(dir(builtins)) - _defined(candidate))
    names = [n for n in dict.fromkeys(_CALLED_NAME.findall("\n".join(tests))) if n not in skip]
    binds = "".join(f"{name} = __candidate__({name!r})\n" for name in names)
    run = TestRun(f"{setup}\n{candidate}\n", f"{setup}\n{binds}" + "\n".join(tests) + "\n")
    return run, candidate


Assemble = Callable[[str, Mapping[str, Any]], tuple[TestRun, str]]


def _assemble(
    build: Assemble,
    answers: Sequence[str],
    references: Sequence[Mapping[str, Any]],
    prompts: Sequence[Mapping[str, Any]],
) -> list[tuple[TestRun, str]]:
    """``build`` each answer's program; a JudgeError names the prompt it concerns."""
    if len(answers) != len(references):
        raise ValueError(f"{len(answers)} answers but {len(references)} references")
    assembled = []
    for index, (answer, reference) in enumerate(zip(answers, references, strict=True)):
        try:
            assembled.append(build(answer, reference))
        except JudgeError as err:
            prompt_id = prompts[index].get("prompt_id") if index < len(prompts) else None
            if prompt_id is None:
                raise
            raise JudgeError(f"prompt {prompt_id!r}: {err}") from None
    return assembled


def _judge(
    assembled: Sequence[tuple[TestRun, str]],
    limits: SandboxLimits | None,
    timeout_s: float | None,
    workers: int | None,
) -> list[Judgement]:
    chosen = limits or SandboxLimits()
    if timeout_s is not None:
        chosen = replace(chosen, timeout_s=timeout_s)
    # A SIGTERM or SIGINT (a cancelled job) kills the sandboxes and removes their folders first.
    with cleanup_on_signals():
        results = run_tests([run for run, _ in assembled], chosen, workers)
    return [
        Judgement(
            correct=r.passed,
            score=1.0 if r.passed else 0.0,
            extracted=candidate[:MAX_EXTRACTED],
            detail=r.detail,
        )
        for (_, candidate), r in zip(assembled, results, strict=True)
    ]


def judge_humaneval(
    answers: Sequence[str],
    references: Sequence[Mapping[str, Any]],
    prompts: Sequence[Mapping[str, Any]],
    *,
    timeout_s: float | None = None,
    workers: int | None = None,
    limits: SandboxLimits | None = None,
    prompt_style: str | None = None,
) -> list[Judgement]:
    """HumanEval: run each answer against its problem's ``check`` in the sandbox (answers to
    prompts of the paper's style built as the paper's checker builds them)."""
    paper = prompt_style == PAPER

    def build(answer: str, reference: Mapping[str, Any]) -> tuple[TestRun, str]:
        return humaneval_run(answer, reference, paper=paper)

    assembled = _assemble(build, answers, references, prompts)
    return _judge(assembled, limits, timeout_s, workers)


def judge_mbpp(
    answers: Sequence[str],
    references: Sequence[Mapping[str, Any]],
    prompts: Sequence[Mapping[str, Any]],
    *,
    timeout_s: float | None = None,
    workers: int | None = None,
    limits: SandboxLimits | None = None,
    include_challenge: bool = False,
    prompt_style: str | None = None,
) -> list[Judgement]:
    """MBPP: run each answer with its setup code and ``test_list`` asserts in the sandbox
    (answers to prompts of the paper's style, which never show the function's name, built as
    the paper's checker builds them: the first function renamed to the asserts' name)."""
    paper = prompt_style == PAPER

    def build(answer: str, reference: Mapping[str, Any]) -> tuple[TestRun, str]:
        return mbpp_run(answer, reference, include_challenge=include_challenge, paper=paper)

    assembled = _assemble(build, answers, references, prompts)
    return _judge(assembled, limits, timeout_s, workers)


__all__ = [
    "MAX_EXTRACTED",
    "SandboxLimits",
    "code_blocks",
    "humaneval_program",
    "humaneval_run",
    "judge_humaneval",
    "judge_mbpp",
    "mbpp_program",
    "mbpp_run",
]
