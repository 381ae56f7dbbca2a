"""The paper's way of making a code answer callable by its tests: extraction and renaming.

The paper's prompts for MBPP show the problem text only, never the name of the function the tests
call, so a model can only guess it. The paper's checker (PAPER.md §6.2, issue 13 of its list of
known problems) therefore takes the code out of the answer and renames the answer's **first
top-level function** to the expected name, its definition and every call of it. divtrace's own
assembly (:mod:`divtrace.quality.code`) never renames; this module is the paper's procedure, used
for prompts of the paper's style (``tasks.<name>.prompt_style: paper``), so that a run made the
paper's way is scored the paper's way.

The steps, as the paper's checker takes them:

1. **Code**: the fenced blocks opened by three backticks, optionally ``python``, then optional
   whitespace up to a newline, and closed by three backticks (an unclosed block does not count).
   The first block containing ``def <expected>`` wins, else the longest; either is stripped. An
   answer without a closed block is taken whole, unstripped.
2. **Expected name** (MBPP): the name called by the first ``assert <name>(`` among the tests.
3. **Renaming**: when the first line-initial ``def <name>(`` defines another name than the
   expected one, every ``def <name>`` (as a whole word) becomes ``def <expected>`` and every
   ``<name>(`` (a whole word, optional whitespace, an opening parenthesis) ``<expected>(``. The
   rename is blind: a helper defined before the real function takes the real function's place,
   exactly as in the paper.
4. **Program**: for MBPP, the code, a blank line and the asserts (the paper uses neither
   ``test_setup_code`` nor ``challenge_test_list``). For HumanEval, the aligned code followed by
   the tests and ``check(<entry point>)`` when it defines the entry point, else the problem's
   prompt followed by the raw answer (a completion).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: A closed fenced block, as the paper's checker finds them.
_BLOCK = re.compile(r"```(?:python)?\s*\n(.*?)```", re.DOTALL)
_FIRST_DEF = re.compile(r"^def\s+(\w+)\s*\(", re.MULTILINE)
_ASSERTED = re.compile(r"assert\s+(\w+)\s*\(")


def paper_code(answer: str, entry_point: str = "") -> str:
    """The code the paper's checker takes from ``answer`` (step 1 of the module docstring)."""
    blocks = _BLOCK.findall(answer)
    if not blocks:
        return answer
    if entry_point:
        defining = [block for block in blocks if f"def {entry_point}" in block]
        if defining:
            return str(defining[0]).strip()
    return str(max(blocks, key=len)).strip()


def expected_name(tests: Sequence[str]) -> str | None:
    """The function the first ``assert <name>(`` of ``tests`` calls, or None (step 2)."""
    for test in tests:
        found = _ASSERTED.search(test)
        if found:
            return found.group(1)
    return None


def rename_first_function(code: str, name: str) -> str:
    """``code`` with its first line-initial function renamed to ``name``, definitions and calls
    (step 3; unchanged when that function already has the name or there is none)."""
    first = _FIRST_DEF.search(code)
    if first is None or first.group(1) == name:
        return code
    old = re.escape(first.group(1))
    renamed = re.sub(rf"\bdef\s+{old}\b", lambda _m: f"def {name}", code)
    return re.sub(rf"\b{old}\s*\(", lambda _m: f"{name}(", renamed)


def aligned_code(answer: str, name: str) -> str:
    """Steps 1 and 3: the answer's code with its first function renamed to ``name``."""
    code = paper_code(answer, name)
    return rename_first_function(code, name) if name else code


def paper_mbpp_program(answer: str, tests: Sequence[str]) -> tuple[str, str]:
    """``(program, candidate)`` of an MBPP answer the paper's way (step 4)."""
    code = aligned_code(answer, expected_name(tests) or "")
    return f"{code}\n\n" + "\n".join(tests) + "\n", code


def paper_humaneval_program(
    answer: str, prompt: str, test: str, entry_point: str
) -> tuple[str, str]:
    """``(program, candidate)`` of a HumanEval answer the paper's way (step 4)."""
    code = aligned_code(answer, entry_point)
    check = f"\n\n{test}\n\ncheck({entry_point})\n"
    if f"def {entry_point}" in code:
        return code + check, code
    return prompt + answer + check, answer
