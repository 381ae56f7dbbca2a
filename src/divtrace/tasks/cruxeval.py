"""CRUXEval-O (cruxeval-org/cruxeval, test): predict the output of a short Python function."""

from __future__ import annotations

from typing import Any

from divtrace.tasks.base import Record, TaskFamily

_INSTRUCTION = (
    "You are given a Python function and an assertion containing an input to the function. "
    "Complete the assertion with a literal (no unsimplified expressions, no function calls) "
    "containing the output when executing the provided code on the given input, even if the "
    "function is incorrect or incomplete."
)


def _code_block(record: Record) -> str:
    return f"```python\n{record['code']}\nassert f({record['input']}) == ??\n```"


def render_user(record: Record) -> str:
    """Chat prompt: the instruction, the code with ``assert f(input) == ??``, the answer format."""
    return (
        f"{_INSTRUCTION}\n\n{_code_block(record)}\n\n"
        f"Answer with the completed assertion in a code block: "
        f"`assert f({record['input']}) == <output>`."
    )


def render_text(record: Record) -> str:
    """Completion prompt: ends right after ``== `` so the model writes the output literal."""
    return (
        f"{_INSTRUCTION}\n\n{_code_block(record)}\n\n"
        f"The completed assertion:\n```python\nassert f({record['input']}) == "
    )


def paper_query(record: Record) -> str:
    """The paper's CRUXEval-O query: the function, the call, ``Answer:``."""
    return (
        f"Given the following Python function:\n\n```python\n{record['code']}\n```\n\n"
        f"What is the output of `f({record['input']})`?\n\nAnswer:"
    )


def _reference(record: Record) -> dict[str, Any]:
    return {"output": record["output"], "input": record["input"]}


FAMILY = TaskFamily(
    name="cruxeval",
    hf_id="cruxeval-org/cruxeval",
    split="test",
    required_fields=("code", "input", "output", "id"),
    id_fields=("id",),
    render_text=render_text,
    render_user=render_user,
    reference=_reference,
    stop=("\n```", "\n\n"),
    judge="divtrace.quality.exact:judge_cruxeval",
    equivalence="divtrace.quality.exact:same_output",
    paper_query=paper_query,
    paper_stop=("\nGiven", "\n\nGiven"),
    paper_max_tokens=2048,
)
