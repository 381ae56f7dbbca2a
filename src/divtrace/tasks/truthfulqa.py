"""TruthfulQA (truthfulqa/truthful_qa, generation, validation): questions that invite falsehoods.

Correctness is a weak string match (see :func:`divtrace.quality.exact.judge_truthfulqa`).
"""

from __future__ import annotations

from typing import Any

from divtrace.tasks.base import Record, TaskDataError, TaskFamily


def _answers(record: Record, field: str) -> list[str]:
    value = record[field]
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise TaskDataError(f"truthfulqa field {field!r} must be a list of strings, got {value!r}")
    return [str(v) for v in value]


def _reference(record: Record) -> dict[str, Any]:
    return {
        "best_answer": str(record["best_answer"]),
        "correct_answers": _answers(record, "correct_answers"),
        "incorrect_answers": _answers(record, "incorrect_answers"),
    }


FAMILY = TaskFamily(
    name="truthfulqa",
    hf_id="truthfulqa/truthful_qa",
    hf_config="generation",
    split="validation",
    required_fields=("question", "best_answer", "correct_answers", "incorrect_answers"),
    render_text=lambda r: f"Q: {r['question']}\nA:",
    render_user=lambda r: str(r["question"]),
    reference=_reference,
    stop=("\nQ:", "\n\n"),
    judge="divtrace.quality.exact:judge_truthfulqa",
    meta_fields=("type", "category", "source"),
    paper_query=lambda r: f"Q: {r['question']}\nA:",
    paper_stop=("\nQ:", "\n\n"),
    paper_max_tokens=512,
)
