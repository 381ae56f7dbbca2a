"""News summarisation families (CNN/DailyMail, XSum): an article, then ``TL;DR:``.

Both ask for a summary of one text field and keep the dataset's own summary as the reference for
later judge-based scoring. The completion prompt is the article followed by ``TL;DR:`` (the GPT-2
zero-shot summarisation prompt); a base model is stopped at a blank line or a new ``TL;DR:``.
Articles are long (hundreds of words) and are never truncated here: a prompt longer than a
model's context is the sampler's to report. A record without ``id`` gets its row number.
"""

from __future__ import annotations

from typing import Any

from divtrace.tasks.base import Record, TaskDataError, TaskFamily


def news_summary_family(
    name: str,
    hf_id: str,
    *,
    article_field: str,
    reference_field: str,
    instruction: str,
    paper_stop: tuple[str, ...],
    hf_config: str | None = None,
    split: str = "test",
) -> TaskFamily:
    """A family whose prompt is ``record[article_field]`` and reference ``record[reference_field]``."""

    def text(record: Record, field: str) -> str:
        value = record[field]
        if not isinstance(value, str) or not value.strip():
            raise TaskDataError(f"{name} field {field!r} must be a non-empty string, got {value!r}")
        return value.strip()

    def reference(record: Record) -> dict[str, Any]:
        return {"reference": text(record, reference_field)}

    return TaskFamily(
        name=name,
        hf_id=hf_id,
        hf_config=hf_config,
        split=split,
        required_fields=(article_field, reference_field),
        id_fields=("id",),
        render_text=lambda r: f"{text(r, article_field)}\nTL;DR:",
        render_user=lambda r: f"{instruction}\n\n{text(r, article_field)}",
        reference=reference,
        stop=("\n\n", "\nTL;DR:"),
        paper_query=lambda r: f"ARTICLE: {r[article_field]}\nTL;DR:",
        paper_stop=paper_stop,
    )
