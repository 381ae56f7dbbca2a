"""Split a reasoning model's output into its reasoning and its answer (DESIGN §4)."""

from __future__ import annotations

from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class Split:
    reasoning: str | None
    answer: str
    think_closed: bool | None


def split_reasoning(text: str, *, reasoning_model: bool, prefill: str = "") -> Split:
    """Reasoning and answer of ``prefill + text``.

    For a reasoning model the answer is the text after the last ``</think>``; the closing tag is
    looked for even when no opening tag was emitted (templates that open the block in the prompt).
    A trace that never closes has ``think_closed=False`` and an empty answer: it is never scored
    as if it were an answer. Non-reasoning models keep the whole text as the answer
    (``think_closed`` is None).
    """
    if not reasoning_model:
        return Split(reasoning=None, answer=text.strip(), think_closed=None)
    full = prefill + text
    cut = full.rfind(THINK_CLOSE)
    if cut < 0:
        return Split(reasoning=_strip_open(full), answer="", think_closed=False)
    return Split(
        reasoning=_strip_open(full[:cut]),
        answer=full[cut + len(THINK_CLOSE) :].strip(),
        think_closed=True,
    )


def _strip_open(text: str) -> str:
    text = text.strip()
    return text[len(THINK_OPEN) :].strip() if text.startswith(THINK_OPEN) else text
