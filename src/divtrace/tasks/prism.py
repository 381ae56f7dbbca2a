"""PRISM (HannahRoseKirk/prism-alignment, config ``conversations``, train): opening prompts.

PRISM (Kirk et al., 2024) holds 8,011 conversations of 1,396 participants from 75 countries
with 21 LLMs. Each ``conversations`` record has ``conversation_id``, ``user_id``,
``conversation_type`` (``unguided``, ``values guided`` or ``controversy guided``: what the
participant was asked to talk about), ``opening_prompt`` (the participant's first message),
``conversation_turns``, ``conversation_history``, feedback fields and
``included_in_balanced_subset``. The prompt is the opening prompt alone, as a single user turn;
the completion form is ``User: ...\\nAssistant:``, stopped where the model starts the next turn.
There is no gold answer (the model responses in the history were rated, not written as
references), so the reference is empty.

The subset ("English, balanced"), in the order :mod:`divtrace.tasks.prompts` applies it:

1. Filter (:func:`keep`, before the seeded shuffle; the count dropped is reported in the prompts
   file's ``selection`` metadata). A conversation is kept when both hold:

   a. ``included_in_balanced_subset`` is not false: PRISM's own balanced subset, which the
      dataset authors drew (seed 0) to balance the three conversation types. A record without
      the field (a local stand-in) passes.
   b. Its opening prompt is English by :func:`is_english`. The ``conversations`` config carries
      no language field (PRISM's language detection is in the separate ``metadata`` config,
      which one prompts job does not join), and ``langdetect`` misreads short prompts ("Tell me
      a joke" comes out Finnish), so the test counts function words: the prompt is English when
      at least 90% of its letters are ASCII and it has no Spanish, French, German, Italian,
      Portuguese or Dutch function words, or more English ones than those. So a short ASCII
      prompt with no function words at all ("gun control") counts as English, as 99% of PRISM
      is. The word lists are below.

2. Balance (``balance_by="conversation_type"``): after the seeded shuffle the prompts are taken
   round-robin over the conversation types, in sorted order (controversy guided, unguided,
   values guided), so the first n prompts hold n/3 of each type (±1) as long as every type has
   prompts left, and a larger n extends the same order.

The ``paper`` prompt style uses the paper's filter instead (:func:`paper_keep`, its
``_is_prism_valid``: the balanced subset only, a record without the field dropped; no empty
opening prompt; no bare greeting; at most 20% non-ASCII characters), no balancing, and the
opening prompt as the query.
"""

from __future__ import annotations

import re
from typing import Any

from divtrace.tasks.base import Record, TaskDataError, TaskFamily


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Frequent English function words (and greetings and request verbs common in chat openers).
ENGLISH_WORDS = _words(
    """a about after all also am an and any are as at be because been before but by can could did
    do does doing for from get give had has have he hello help her here hey hi him his how i i'm if
    in into is it it's its just know let like me more most my no not now of on or our out please
    should so some tell than thank thanks that the their them then there these they think this
    those to too us very was we were what when where which who whom why will with would you your"""
)
# Frequent function words (and greetings) of the Latin-script languages most likely among PRISM's
# non-English prompts. Words that are also English ("a", "in", "is", "die", "was", ...) are left
# out, and so is the Italian/Portuguese "e" (English has "e.g.", "vitamin E").
OTHER_WORDS = (
    _words(
        """al como con de del el en es esta está este esto la las lo los mi muy para pero por
        porque qué que se sobre su sus un una y yo au avec ce cette dans des du elle est et je le
        les leur mais mon ne nous ou où par pas pour qui sont sur tu une vous aber auch bin bitte
        das dem den der des dich dir du ein eine einen für hat ich ist mit nicht sich sie und von
        wie wir zu che come della di gli il mi non per più sono ao com da do dos em eu mas não os
        um uma você het een ik niet op te van voor wat zijn hola gracias bonjour salut merci hallo
        danke ciao grazie olá oi obrigado obrigada"""
    )
    - ENGLISH_WORDS
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def is_english(text: str) -> bool:
    """Whether ``text`` reads as English (the heuristic of the module docstring)."""
    letters = [c for c in text if c.isalpha()]
    if not letters or sum(c.isascii() for c in letters) < 0.9 * len(letters):
        return False
    words = _WORD.findall(text.lower())
    english = sum(w in ENGLISH_WORDS for w in words)
    other = sum(w in OTHER_WORDS for w in words)
    return other == 0 or english > other


def _opening(record: Record) -> str:
    value = record["opening_prompt"]
    if not isinstance(value, str) or not value.strip():
        raise TaskDataError(
            f"prism field 'opening_prompt' must be a non-empty string, got {value!r}"
        )
    return value.strip()


def keep(record: Record) -> bool:
    """PRISM's balanced subset (when the record says) and an English opening prompt."""
    if record.get("included_in_balanced_subset") is False:
        return False
    return is_english(_opening(record))


#: The openers the paper's filter drops (compared after lower-casing and stripping ``.!?,``).
PAPER_GREETINGS = frozenset(
    {"hello", "hi", "hey", "hola", "hello!", "hi!", "hey!", "hello.", "hi."}
)


def paper_keep(record: Record) -> bool:
    """The paper's PRISM filter (``_is_prism_valid``), condition by condition, in its order."""
    if not record.get("included_in_balanced_subset", False):
        return False
    prompt = str(record.get("opening_prompt") or "").strip()
    if not prompt:
        return False
    if prompt.lower().rstrip(".!?,") in PAPER_GREETINGS:
        return False
    non_ascii = sum(1 for c in prompt if ord(c) > 127)
    return non_ascii / len(prompt) <= 0.2


def _reference(record: Record) -> dict[str, Any]:
    return {}


FAMILY = TaskFamily(
    name="prism",
    hf_id="HannahRoseKirk/prism-alignment",
    hf_config="conversations",
    split="train",
    required_fields=("opening_prompt", "conversation_type"),
    id_fields=("conversation_id",),
    render_text=lambda r: f"User: {_opening(r)}\nAssistant:",
    render_user=_opening,
    reference=_reference,
    stop=("\nUser:", "\nAssistant:"),
    meta_fields=(
        "conversation_type",
        "user_id",
        "conversation_turns",
        "included_in_balanced_subset",
    ),
    keep=keep,
    balance_by="conversation_type",
    paper_query=lambda r: str(r["opening_prompt"]).strip(),
    paper_keep=paper_keep,
)
