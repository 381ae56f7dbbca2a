"""CNN/DailyMail (abisee/cnn_dailymail, 3.0.0, test): summarise a news article.

Records hold ``article``, ``highlights`` (the bullet-point summary, one highlight per line; kept as
the reference for later judge-based scoring) and ``id``. The completion prompt is the article
followed by ``TL;DR:`` (the GPT-2 zero-shot summarisation prompt); a base model is stopped at a
blank line. Articles are long (hundreds of words) and are never truncated here: a prompt longer
than a model's context is the sampler's to report. A record without ``id`` gets its row number.
"""

from __future__ import annotations

from typing import Any

from divtrace.tasks.base import Record, TaskDataError, TaskFamily

INSTRUCTION = "Summarize the following news article in a few sentences."


def _text(record: Record, name: str) -> str:
    value = record[name]
    if not isinstance(value, str) or not value.strip():
        raise TaskDataError(
            f"cnn_dailymail field {name!r} must be a non-empty string, got {value!r}"
        )
    return value.strip()


def _reference(record: Record) -> dict[str, Any]:
    return {"reference": _text(record, "highlights")}


FAMILY = TaskFamily(
    name="cnn_dailymail",
    hf_id="abisee/cnn_dailymail",
    hf_config="3.0.0",
    split="test",
    required_fields=("article", "highlights"),
    id_fields=("id",),
    render_text=lambda r: f"{_text(r, 'article')}\nTL;DR:",
    render_user=lambda r: f"{INSTRUCTION}\n\n{_text(r, 'article')}",
    reference=_reference,
    stop=("\n\n", "\nTL;DR:"),
)
