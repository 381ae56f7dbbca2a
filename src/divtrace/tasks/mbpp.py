"""MBPP (google-research-datasets/mbpp, full, test): short Python programming problems.

The prompt is the standard MBPP one: the task text followed by the test asserts the code must pass.
The completion-format prompt additionally opens a Python code fence, so a base model writes code
and stops at the closing fence. Correctness: the setup code, the program and the asserts run in a
sandbox (:mod:`divtrace.quality.code`).
"""

from __future__ import annotations

from typing import Any

from divtrace.tasks.base import Record, TaskDataError, TaskFamily


def _tests(record: Record, name: str) -> list[str]:
    value = record.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise TaskDataError(f"mbpp field {name!r} must be a list of strings, got {value!r}")
    return list(value)


def _text(record: Record) -> str:
    text = record["text"]
    if not isinstance(text, str) or not text.strip():
        raise TaskDataError(f"mbpp field 'text' must be a non-empty string, got {text!r}")
    return text.strip()


def render_prompt(record: Record) -> str:
    """The standard MBPP prompt: the task and its test asserts."""
    tests = _tests(record, "test_list")
    if not tests:
        raise TaskDataError("mbpp record has an empty 'test_list'")
    return (
        f"You are an expert Python programmer, and here is your task: {_text(record)} "
        "Your code should pass these tests:\n\n" + "\n".join(tests)
    )


def _reference(record: Record) -> dict[str, Any]:
    setup = record.get("test_setup_code") or ""
    if not isinstance(setup, str):
        raise TaskDataError(f"mbpp field 'test_setup_code' must be a string, got {setup!r}")
    tests = _tests(record, "test_list")
    if not tests:
        raise TaskDataError("mbpp record has an empty 'test_list'")
    return {
        "test_list": tests,
        "test_setup_code": setup,
        "challenge_test_list": _tests(record, "challenge_test_list"),
    }


FAMILY = TaskFamily(
    name="mbpp",
    hf_id="google-research-datasets/mbpp",
    hf_config="full",
    split="test",
    required_fields=("task_id", "text", "code", "test_list"),
    id_fields=("task_id",),
    render_text=lambda r: render_prompt(r) + "\n\n```python\n",
    render_user=render_prompt,
    reference=_reference,
    stop=("\n```",),
    judge="divtrace.quality.code:judge_mbpp",
    paper_query=lambda r: f'"""\n{r["text"]}\n"""\n',  # the task text only, no tests
    paper_stop=("\nclass ", "\n#", "\nif __name__"),
)
