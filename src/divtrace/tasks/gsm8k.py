"""GSM8K (openai/gsm8k, main, test): grade-school math word problems with a numeric answer."""

from __future__ import annotations

import re
from typing import Any

from divtrace.tasks.base import Record, TaskDataError, TaskFamily

_FINAL = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)


def gold_answer(solution: str) -> str:
    """The number after ``####`` in a GSM8K solution, without thousands separators."""
    match = _FINAL.search(solution)
    if match is None:
        raise TaskDataError(f"gsm8k answer has no '#### <number>' line: {solution[-80:]!r}")
    return match.group(1).replace(",", "").strip()


def _reference(record: Record) -> dict[str, Any]:
    return {"answer": gold_answer(str(record["answer"])), "solution": record["answer"]}


FAMILY = TaskFamily(
    name="gsm8k",
    hf_id="openai/gsm8k",
    hf_config="main",
    split="test",
    required_fields=("question", "answer"),
    render_text=lambda r: f"Question: {r['question']}\n\nAnswer:",
    render_user=lambda r: str(r["question"]),
    reference=_reference,
    stop=("\n\nQuestion:", "\n\n\n"),
    judge="divtrace.quality.math:judge_math",
    equivalence="divtrace.quality.math:answers_match",
    paper_query=lambda r: f"Question: {r['question']}\n\nAnswer:",
    paper_stop=("\nQuestion:", "\n\nQuestion"),
)
