"""Prompt styles: how a record becomes the strings a model is sent, and which records are sent.

``instructed`` (divtrace's own, the demo's)
    The family's completion text (``render_text``) and chat user turn (``render_user``), which
    spell out what is asked (e.g. "Complete the following Python function ..."); the family's
    stop sequences; the family's filter and, where it has one, the balanced selection; prompts
    drawn by a shuffle seeded with the study's ``seed`` and the task name.

``paper``
    What the paper's code sent, through lighteval 0.12 (PAPER.md §3): the *query* is the paper's
    prompt template filled with the record's raw fields (``family.paper_query``). lighteval's
    prompt manager strips the query in both paths (``_extract_query`` with ``instruction=""``):
    the completion text is ``"\\n\\n" + query.strip()`` (an empty instruction joined to the query
    with a blank line), the chat prompt one user turn ``query.strip()`` with no system turn of our
    own. Stop sequences are the paper's, for the completion format only (with a chat template
    lighteval sent none). Selection: the records in the dataset's order, the paper's filter
    (``family.paper_keep``), ``random.Random(42).shuffle``, the first ``n`` — the very prompts of
    the paper for the same dataset revision, whatever the study's ``seed``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from divtrace.tasks.base import Record, TaskDataError, TaskFamily

PAPER = "paper"
INSTRUCTED = "instructed"
PROMPT_STYLES: tuple[str, ...] = (PAPER, INSTRUCTED)
DEFAULT_PROMPT_STYLE = INSTRUCTED

#: The seed of lighteval's document shuffle (``LightevalTask.get_docs``), fixed in its code.
PAPER_SELECTION_SEED = 42


@dataclass(frozen=True)
class Rendered:
    """The two prompt forms of one record: completion text and chat user turn."""

    text: str
    user: str


def check_style(style: str) -> str:
    if style not in PROMPT_STYLES:
        raise TaskDataError(f"unknown prompt style {style!r} (known: {', '.join(PROMPT_STYLES)})")
    return style


def paper_query(family: TaskFamily, record: Record) -> str:
    """The paper's query of ``record`` (before lighteval's strip)."""
    if family.paper_query is None:
        raise TaskDataError(f"task family {family.name!r} has no paper prompt")
    return family.paper_query(record)


def render(family: TaskFamily, record: Record, style: str) -> Rendered:
    """The completion text and the chat user turn of ``record`` in ``style``."""
    if check_style(style) == PAPER:
        query = paper_query(family, record).strip()
        return Rendered(text="\n\n" + query, user=query)
    return Rendered(text=family.render_text(record), user=family.render_user(record))


def completion_stop(family: TaskFamily, style: str) -> tuple[str, ...]:
    """Stop sequences of completion-format sampling in ``style`` (chat sampling has none)."""
    return family.paper_stop if check_style(style) == PAPER else family.stop


def record_filter(family: TaskFamily, style: str) -> Callable[[Record], bool] | None:
    """The records ``style`` keeps before selecting (None: every record)."""
    return family.paper_keep if check_style(style) == PAPER else family.keep


def balance_field(family: TaskFamily, style: str) -> str | None:
    """The field whose values the selection takes in turn (instructed style only)."""
    return None if check_style(style) == PAPER else family.balance_by


def paper_order(n_records: int) -> list[int]:
    """Positions ``0..n-1`` in the order of lighteval's ``random.Random(42).shuffle``.

    ``random.shuffle`` draws the same swaps for any list of the same length, so shuffling the
    positions gives the order in which the paper's documents came out.
    """
    order = list(range(n_records))
    rnd = random.Random()
    rnd.seed(PAPER_SELECTION_SEED)
    rnd.shuffle(order)
    return order
