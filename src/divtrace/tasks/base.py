"""What a task family is: where its prompts come from and how a record becomes a prompt.

A family renders a record in two prompt styles (see :mod:`divtrace.tasks.styles`): ``instructed``,
divtrace's own prompts (``render_text`` / ``render_user`` / ``stop``, the filter ``keep`` and the
balanced selection ``balance_by``), and ``paper``, the prompts the paper's code sent
(``paper_query``, ``paper_stop``, ``paper_keep``; the budget ``paper_max_tokens``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from divtrace.errors import TaskDataError

Record = Mapping[str, Any]


@dataclass(frozen=True)
class TaskFamily:
    """A task family: dataset coordinates, record → prompt rendering, gold reference.

    ``render_text`` gives the completion-format prompt (base models); ``render_user`` the user turn
    of the chat-format prompt. ``stop`` applies to completion-format sampling only. A prompt's id
    is the first of ``id_fields`` present in its record, else the record's row number.

    ``judge`` names the correctness judge (``"module:function"``, a
    :class:`~divtrace.quality.base.BatchJudge`); ``equivalence`` (only for an answer-based judge)
    names the function ``(a, b) -> bool`` that decides whether two extracted answers are the same
    answer, by which majority@K groups the votes (:mod:`divtrace.quality.metrics`). A family
    without one (code run against tests, instruction following, a string match on free text) has
    no meaningful vote: its majority@K is missing.

    ``keep`` (optional) is a record filter: records it rejects are dropped before the seeded
    selection (row numbers, and so ids, stay those of the source). ``balance_by`` (optional) names
    a field whose values the selection takes in turn (round-robin), so any prefix of the prompts
    table is balanced over them (see :func:`divtrace.tasks.prompts.select_records`).
    """

    name: str
    hf_id: str
    split: str
    required_fields: tuple[str, ...]
    render_text: Callable[[Record], str]
    render_user: Callable[[Record], str]
    reference: Callable[[Record], dict[str, Any]]
    hf_config: str | None = None
    id_fields: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    judge: str | None = None
    equivalence: str | None = None
    meta_fields: tuple[str, ...] = field(default_factory=tuple)
    keep: Callable[[Record], bool] | None = None
    balance_by: str | None = None
    paper_query: Callable[[Record], str] | None = None
    paper_stop: tuple[str, ...] = ()
    paper_keep: Callable[[Record], bool] | None = None
    paper_max_tokens: int = 32768

    def __post_init__(self) -> None:
        if self.equivalence is not None and self.judge is None:
            raise ValueError(f"task family {self.name!r}: an answer equivalence needs a judge")

    @property
    def verifiable(self) -> bool:
        """The family has a correctness judge: its samples are scored."""
        return self.judge is not None

    @property
    def votes(self) -> bool:
        """A majority vote over the family's extracted answers has a meaning (majority@K is
        computed): its judge compares an extracted answer, and it names the equivalence."""
        return self.judge is not None and self.equivalence is not None

    def record_id(self, record: Record, row_number: int) -> tuple[str | None, Any]:
        """(field the id came from, id) of a record; (None, row number) without an id field."""
        for field_name in self.id_fields:
            if record.get(field_name) is not None:
                return field_name, record[field_name]
        return None, row_number

    def check_record(self, record: Record, where: str) -> None:
        missing = [f for f in self.required_fields if f not in record or record[f] is None]
        if missing:
            raise TaskDataError(f"{where}: {self.name} record lacks field(s) {missing}")
