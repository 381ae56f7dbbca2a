"""What every correctness check returns, and the batch interface each task's judge implements."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from divtrace.errors import JudgeError


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


#: Judge one answer: ``(answer, reference, prompt) -> Judgement`` (arguments as in BatchJudge).
SampleJudge = Callable[[str, Mapping[str, Any], Mapping[str, Any]], Judgement]


def per_sample(judge: SampleJudge) -> BatchJudge:
    """A :class:`BatchJudge` that judges each answer on its own with ``judge`` (None → "")."""

    def judge_batch(
        answers: Sequence[str],
        references: Sequence[Mapping[str, Any]],
        prompts: Sequence[Mapping[str, Any]],
    ) -> list[Judgement]:
        if not len(answers) == len(references) == len(prompts):
            raise ValueError(
                f"{len(answers)} answers, {len(references)} references and {len(prompts)} "
                "prompts: each answer needs its reference and prompt"
            )
        return [
            judge(answer or "", reference, prompt)
            for answer, reference, prompt in zip(answers, references, prompts, strict=True)
        ]

    judge_batch.__doc__ = judge.__doc__
    return judge_batch


def prompt_error(prompt: Mapping[str, Any], problem: str) -> JudgeError:
    """The error for a prompt whose reference is unusable, naming the prompt."""
    return JudgeError(f"prompt {prompt.get('prompt_id')!r}: {problem}")
