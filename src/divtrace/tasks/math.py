"""MATH (EleutherAI/hendrycks_math, configs ``algebra`` and ``geometry``, test): competition math.

Records are either the hub's (``problem, level, type, solution``) or MATH500-style
(``problem, solution, answer, subject, level, unique_id``). The gold answer is the record's
``answer`` field when present, else the content of the last complete ``\\boxed{...}`` of the
solution. Prompt ids are row numbers (the hub copy has no id field); a MATH500 record's
``unique_id`` is kept in the reference.
"""

from __future__ import annotations

from typing import Any

from divtrace.quality.math import last_boxed
from divtrace.tasks.base import Record, TaskDataError, TaskFamily


def gold_answer(record: Record) -> str:
    """The record's ``answer`` if it has one, else the last ``\\boxed{}`` of its solution."""
    answer = record.get("answer")
    if answer is not None and str(answer).strip():
        return str(answer).strip()
    boxed = last_boxed(str(record["solution"]))
    if boxed is None or not boxed:
        raise TaskDataError(
            f"math solution has no complete \\boxed{{...}} answer: {str(record['solution'])[-80:]!r}"
        )
    return boxed


def _reference(record: Record) -> dict[str, Any]:
    reference: dict[str, Any] = {"answer": gold_answer(record), "solution": record["solution"]}
    for key in ("unique_id", "level", "type", "subject"):
        if record.get(key) is not None:
            reference[key] = record[key]
    return reference


def _family(name: str, config: str) -> TaskFamily:
    return TaskFamily(
        name=name,
        hf_id="EleutherAI/hendrycks_math",
        hf_config=config,
        split="test",
        required_fields=("problem", "solution"),
        render_text=lambda r: f"Problem: {r['problem']}\n\nSolution:",
        render_user=lambda r: str(r["problem"]),
        reference=_reference,
        stop=("\n\nProblem:",),
        judge="divtrace.quality.math:judge_math",
        equivalence="divtrace.quality.math:answers_match",
        id_fields=("unique_id",),  # MATH500-style records; the hub copy has none
        meta_fields=("level", "type", "subject", "unique_id"),
        paper_query=lambda r: f"Problem: {r['problem']}\n\nSolution:",
        paper_stop=("\nProblem:", "\n\nProblem"),
    )


FAMILY_ALGEBRA = _family("math_algebra", "algebra")
FAMILY_GEOMETRY = _family("math_geometry", "geometry")

FAMILIES: tuple[TaskFamily, ...] = (FAMILY_ALGEBRA, FAMILY_GEOMETRY)
