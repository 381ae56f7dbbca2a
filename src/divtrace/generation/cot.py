"""Split a reasoning model's output into its reasoning and its answer (docs/design.md §4).

The split reads the assistant turn as the model wrote it: the part of the turn the prompt already
held (``turn_prefix``: an opening tag the chat template left open, a CoT-off prefill) followed by
the sampled text. Three cases:

* the turn holds a closing ``</think>``: the answer is the text after the last one
  (``think_closed`` True), the reasoning what precedes it, without its opening tag;
* the turn opened a think block that never closes (the template opened it, or the model wrote
  ``<think>``): a truncated trace, flagged ``think_closed`` False with an empty answer, never
  scored as if it were one;
* the turn has no think block at all (a reasoning model that answered directly, e.g. an RL-Zero
  checkpoint whose template does not open one): the whole text is the answer and
  ``think_closed`` is None, as for a model that does not reason.
"""

from __future__ import annotations

from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class Split:
    reasoning: str | None
    answer: str
    think_closed: bool | None


def split_reasoning(text: str, *, reasoning_model: bool, turn_prefix: str = "") -> Split:
    """Reasoning and answer of the assistant turn ``turn_prefix + text`` (see module docstring).

    Non-reasoning models keep the whole text as the answer (``think_closed`` None).
    """
    if not reasoning_model:
        return Split(reasoning=None, answer=text.strip(), think_closed=None)
    full = turn_prefix + text
    cut = full.rfind(THINK_CLOSE)
    if cut >= 0:
        return Split(
            reasoning=_strip_open(full[:cut]),
            answer=full[cut + len(THINK_CLOSE) :].strip(),
            think_closed=True,
        )
    if THINK_OPEN in full:
        return Split(reasoning=_strip_open(full), answer="", think_closed=False)
    return Split(reasoning=None, answer=text.strip(), think_closed=None)


def _strip_open(text: str) -> str:
    text = text.strip()
    return text[len(THINK_OPEN) :].strip() if text.startswith(THINK_OPEN) else text
