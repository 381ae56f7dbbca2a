"""WildBench (allenai/WildBench, config ``v2``, test): hard tasks from real users of WildChat.

Each of the 1,024 records holds ``session_id``, ``id``, ``conversation_input`` (the conversation
so far: a list of turns with ``role``, ``content`` and flags such as ``language`` and ``toxic``),
``references`` (``{"gpt-4": ...}``: GPT-4's answer to the last user turn), ``checklist`` (what a
good answer to the last user turn covers), ``length``, ``intent``, ``primary_tag`` and
``secondary_tags`` (the last four are copied into the prompt's meta, with ``id``).

The prompt is the **first user turn** of ``conversation_input``, as a single user message: every
prompt is then a stand-alone opening request, like the other chat tasks. For a multi-turn
record this is not the turn WildBench evaluates, so its GPT-4 reference and
checklist (written for the last turn) are left out of the reference, which then only says
``single_turn: false``; single-turn records keep both for later judge-based scoring. The prompt
id is ``session_id``. The completion form is ``User: ...\\nAssistant:``, stopped where the model
starts the next turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from divtrace.tasks.base import Record, TaskDataError, TaskFamily


def _turns(record: Record) -> list[Any]:
    turns = record["conversation_input"]
    if isinstance(turns, str) or not isinstance(turns, Sequence):
        raise TaskDataError(
            f"wildbench field 'conversation_input' must be a list of turns, got {turns!r}"
        )
    return list(turns)


def _user_turns(record: Record) -> list[str]:
    """The contents of the user turns of ``conversation_input``, in order."""
    contents: list[str] = []
    for turn in _turns(record):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise TaskDataError(
                f"wildbench turns must be mappings with 'role' and 'content', got {turn!r}"
            )
        if turn["role"] == "user":
            contents.append(str(turn["content"] or ""))
    return contents


def first_user_turn(record: Record) -> str:
    """The content of the first user turn (the prompt)."""
    users = _user_turns(record)
    if not users or not users[0].strip():
        raise TaskDataError("wildbench record has no non-empty user turn in 'conversation_input'")
    return users[0].strip()


def paper_query(record: Record) -> str:
    """The paper's WildBench query: the content of the first turn of ``conversation_input``
    (whatever its role), stripped; a turn that is not a mapping is taken as text."""
    turns = _turns(record)
    if not turns:
        return ""
    first = turns[0]
    query = first.get("content", "") if isinstance(first, dict) else str(first)
    return str(query or "").strip()


def _reference(record: Record) -> dict[str, Any]:
    single = len(_user_turns(record)) == 1
    reference: dict[str, Any] = {"single_turn": single}
    if single:
        references = record.get("references") or {}
        if not isinstance(references, dict):
            raise TaskDataError(
                f"wildbench field 'references' must be a mapping, got {references!r}"
            )
        if references.get("gpt-4"):
            reference["reference"] = str(references["gpt-4"])
        checklist = record.get("checklist")
        if checklist is not None:
            reference["checklist"] = [str(item) for item in checklist]
    return reference


FAMILY = TaskFamily(
    name="wildbench",
    hf_id="allenai/WildBench",
    hf_config="v2",
    split="test",
    required_fields=("conversation_input",),
    id_fields=("session_id", "id"),
    render_text=lambda r: f"User: {first_user_turn(r)}\nAssistant:",
    render_user=first_user_turn,
    reference=_reference,
    stop=("\nUser:", "\nAssistant:"),
    meta_fields=("id", "length", "intent", "primary_tag", "secondary_tags"),
    paper_query=paper_query,
)
