"""Reddit TL;DR (UCL-DARK/openai-tldr-filtered, test): summarise a Reddit post in a sentence or two.

This is the filtered TL;DR set of "Learning to summarize from human feedback" (Stiennon et al.,
2020). Records hold ``id``, ``subreddit`` (without the ``r/``), ``title``, ``post`` and the
author's own ``summary``, kept as the reference for later judge-based scoring. The completion
prompt is the paper's format (``SUBREDDIT: r/... TITLE: ... POST: ... TL;DR:``); a base model
writes the summary and is stopped at a blank line or a new post header. Posts are never truncated.
"""

from __future__ import annotations

from typing import Any

from divtrace.tasks.base import Record, TaskDataError, TaskFamily

INSTRUCTION = "Summarize the following Reddit post in one or two sentences."


def _text(record: Record, name: str) -> str:
    value = record[name]
    if not isinstance(value, str) or not value.strip():
        raise TaskDataError(f"tldr field {name!r} must be a non-empty string, got {value!r}")
    return value.strip()


def _subreddit(record: Record) -> str:
    name = _text(record, "subreddit")
    return name[2:] if name.lower().startswith("r/") else name


def render_post(record: Record) -> str:
    """The post in the paper's layout, without the trailing ``TL;DR:``."""
    return (
        f"SUBREDDIT: r/{_subreddit(record)}\n"
        f"TITLE: {_text(record, 'title')}\n"
        f"POST: {_text(record, 'post')}"
    )


def paper_query(record: Record) -> str:
    """The paper's TL;DR query: the raw fields (``subreddit`` as the dataset spells it)."""
    return (
        f"SUBREDDIT: {record['subreddit']}\nTITLE: {record['title']}\n"
        f"POST: {record['post']}\nTL;DR:"
    )


def _reference(record: Record) -> dict[str, Any]:
    return {"reference": _text(record, "summary")}


FAMILY = TaskFamily(
    name="tldr",
    hf_id="UCL-DARK/openai-tldr-filtered",
    split="test",
    required_fields=("subreddit", "title", "post", "summary"),
    id_fields=("id",),
    render_text=lambda r: f"{render_post(r)}\nTL;DR:",
    render_user=lambda r: f"{INSTRUCTION}\n\n{render_post(r)}",
    reference=_reference,
    stop=("\nSUBREDDIT:", "\n\n"),
    meta_fields=("subreddit",),
    paper_query=paper_query,
    paper_stop=("\n\n",),
)
