"""XSum (EdinburghNLP/xsum, test): a one-sentence summary of a BBC article.

Records hold ``document``, ``summary`` (the article's one-sentence introduction, kept as the
reference for later judge-based scoring) and ``id`` (the BBC id). The completion prompt is the
document followed by ``TL;DR:``; a base model is stopped at a blank line. Documents are never
truncated. A record without ``id`` gets its row number as id.
"""

from __future__ import annotations

from typing import Any

from divtrace.tasks.base import Record, TaskDataError, TaskFamily

INSTRUCTION = "Summarize the following article in one sentence."


def _text(record: Record, name: str) -> str:
    value = record[name]
    if not isinstance(value, str) or not value.strip():
        raise TaskDataError(f"xsum field {name!r} must be a non-empty string, got {value!r}")
    return value.strip()


def _reference(record: Record) -> dict[str, Any]:
    return {"reference": _text(record, "summary")}


FAMILY = TaskFamily(
    name="xsum",
    hf_id="EdinburghNLP/xsum",
    split="test",
    required_fields=("document", "summary"),
    id_fields=("id",),
    render_text=lambda r: f"{_text(r, 'document')}\nTL;DR:",
    render_user=lambda r: f"{INSTRUCTION}\n\n{_text(r, 'document')}",
    reference=_reference,
    stop=("\n\n", "\nTL;DR:"),
)
