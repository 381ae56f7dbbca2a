"""What every correctness check returns, and the batch interface each task's judge implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Judgement:
    """The verdict on one sampled answer.

    ``correct``: the answer is right; ``score``: a graded value in [0, 1] (1.0/0.0 where the check
    is binary; e.g. the fraction of IFEval instructions followed); ``extracted``: what was compared
    (the final answer, the program run), None when nothing could be extracted; ``detail``: a short
    human-readable reason or a JSON string with per-check results.
    """

    correct: bool
    score: float
    extracted: str | None
    detail: str | None = None


class BatchJudge(Protocol):
    """Judge many answers at once (so code execution can run in parallel).

    ``references`` are the decoded ``reference`` JSON of each answer's prompt; ``prompts`` are the
    prompt rows (``task, prompt_id, index, text, messages, reference, meta``) as mappings.
    Returns one :class:`Judgement` per answer, in order.
    """

    def __call__(
        self,
        answers: Sequence[str],
        references: Sequence[Mapping[str, Any]],
        prompts: Sequence[Mapping[str, Any]],
    ) -> list[Judgement]: ...
