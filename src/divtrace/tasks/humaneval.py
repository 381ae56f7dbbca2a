"""HumanEval (openai/openai_humaneval, test): complete a Python function from its signature and docstring.

The completion-format prompt is the function prompt itself (imports, signature, docstring); a base
model continues with the body, cut at the standard HumanEval stop sequences. The chat-format prompt
asks for the whole function in a fenced code block. Correctness is checked by running the
problem's ``check`` in a sandbox (:mod:`divtrace.quality.code`).
"""

from __future__ import annotations

from typing import Any

from divtrace.tasks.base import Record, TaskDataError, TaskFamily

#: Stop sequences of the Codex paper / openai/human-eval for completion-format sampling.
STOP = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")


def _field(record: Record, name: str) -> str:
    value = record[name]
    if not isinstance(value, str) or not value.strip():
        raise TaskDataError(f"humaneval field {name!r} must be a non-empty string, got {value!r}")
    return value


def render_user(record: Record) -> str:
    """The chat user turn: an instruction and the function prompt in a Python code fence."""
    prompt = _field(record, "prompt")
    return (
        "Complete the following Python function. Reply with the complete function "
        "(signature included) in a single ```python code block.\n\n"
        f"```python\n{prompt.rstrip()}\n```"
    )


def _reference(record: Record) -> dict[str, Any]:
    return {
        "prompt": _field(record, "prompt"),
        "test": _field(record, "test"),
        "entry_point": _field(record, "entry_point").strip(),
    }


FAMILY = TaskFamily(
    name="humaneval",
    hf_id="openai/openai_humaneval",
    split="test",
    required_fields=("task_id", "prompt", "canonical_solution", "test", "entry_point"),
    id_fields=("task_id",),
    render_text=lambda r: _field(r, "prompt"),
    render_user=render_user,
    reference=_reference,
    stop=STOP,
    judge="divtrace.quality.code:judge_humaneval",
    paper_query=lambda r: str(r["prompt"]),
    paper_stop=("\nclass ", "\ndef ", "\n#", "\nif __name__"),
)
