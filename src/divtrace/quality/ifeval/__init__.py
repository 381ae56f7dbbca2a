"""IFEval correctness: the official strict and loose instruction-following checks.

``evaluate`` checks one response against its instructions; ``judge_ifeval`` is the task's
:class:`~divtrace.quality.base.BatchJudge`. Strict: a check on the response as is. Loose (the
official upper bound): an instruction counts as followed if any of eight variants of the response
passes: the response, without its first line, without its last line, without both, and each of
those four with every ``*`` removed. As in the official code, a blank response (or blank variant)
follows nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from divtrace.errors import JudgeError
from divtrace.quality.base import Judgement, per_sample, prompt_error
from divtrace.quality.ifeval.instructions import CHECKERS, Instruction

__all__ = ["REGISTRY", "build_instruction", "evaluate", "judge_ifeval", "loose_variants"]

#: Every official instruction id -> its checker class.
REGISTRY: dict[str, type[Instruction]] = {cls.id: cls for cls in CHECKERS}

_EXTRACTED_CHARS = 80


def build_instruction(instruction_id: str, kwargs: Mapping[str, Any] | None = None) -> Instruction:
    """The checker for ``instruction_id`` bound to ``kwargs`` (None-valued keys are ignored).

    Raises :class:`~divtrace.errors.JudgeError` (a ValueError) for an unknown id and for
    missing, unexpected or invalid kwargs.
    """
    try:
        cls = REGISTRY[instruction_id]
    except KeyError:
        raise JudgeError(f"unknown IFEval instruction id {instruction_id!r}") from None
    args = {k: v for k, v in (kwargs or {}).items() if v is not None}
    try:
        return cls(**args)
    except TypeError as error:
        raise JudgeError(f"bad kwargs for {instruction_id}: {args!r} ({error})") from None
    except ValueError as error:
        raise JudgeError(f"bad kwargs for {instruction_id}: {error}") from None


def loose_variants(response: str) -> list[str]:
    """The official eight loose-evaluation variants of ``response`` (the response first)."""
    lines = response.split("\n")
    no_first = "\n".join(lines[1:]).strip()
    no_last = "\n".join(lines[:-1]).strip()
    no_both = "\n".join(lines[1:-1]).strip()
    variants = [response, no_first, no_last, no_both]
    return variants + [v.replace("*", "") for v in variants]


def evaluate(
    response: str,
    instruction_ids: Sequence[str],
    kwargs: Sequence[Mapping[str, Any] | None] | None = None,
    prompt: str | None = None,
) -> dict[str, Any]:
    """Strict and loose verdicts of ``response`` on each instruction.

    ``kwargs`` holds one mapping per instruction (sparse or None-padded; None or omitted means no
    kwargs). ``prompt`` is accepted for parity with the official evaluator, where it only feeds
    instructions taking a ``prompt`` argument; none of the registered ones does
    (``combination:repeat_prompt`` takes ``prompt_to_repeat``).

    Returns ``{"instruction_id_list", "strict": [bool], "loose": [bool], "follow_all_strict",
    "follow_all_loose"}``.
    """
    del prompt
    ids = list(instruction_ids)
    per_kwargs = list(kwargs) if kwargs is not None else [None] * len(ids)
    if len(per_kwargs) != len(ids):
        raise JudgeError(f"{len(ids)} instruction ids but {len(per_kwargs)} kwargs mappings")
    checkers = [build_instruction(i, kw) for i, kw in zip(ids, per_kwargs, strict=True)]
    variants = [v for v in loose_variants(response) if v.strip()]
    strict = [bool(response.strip()) and c.check(response) for c in checkers]
    loose = [s or any(c.check(v) for v in variants) for s, c in zip(strict, checkers, strict=True)]
    return {
        "instruction_id_list": ids,
        "strict": strict,
        "loose": loose,
        "follow_all_strict": all(strict),
        "follow_all_loose": all(loose),
    }


def _judge_ifeval(
    answer: str, reference: Mapping[str, Any], prompt: Mapping[str, Any]
) -> Judgement:
    """IFEval batch judge.

    ``correct``: every instruction followed (strict, prompt level); ``score``: fraction of the
    instructions followed (strict); ``extracted``: the first characters of the answer (None when
    blank); ``detail``: JSON with per-instruction strict/loose verdicts and the loose prompt-level
    verdict.
    """
    ids = reference.get("instruction_id_list")
    if not isinstance(ids, list | tuple):
        raise prompt_error(
            prompt, f"ifeval reference without an instruction_id_list: {reference!r}"
        )
    text = prompt.get("text") if isinstance(prompt, Mapping) else None
    try:
        result = evaluate(answer, ids, reference.get("kwargs"), text)
    except JudgeError as err:  # the reference's instructions or kwargs: name the prompt
        raise prompt_error(prompt, str(err)) from err
    n = len(result["strict"])
    detail = {
        "instructions": [
            {"id": i, "strict": s, "loose": lo}
            for i, s, lo in zip(ids, result["strict"], result["loose"], strict=True)
        ],
        "follow_all_strict": result["follow_all_strict"],
        "follow_all_loose": result["follow_all_loose"],
    }
    stripped = answer.strip()
    return Judgement(
        correct=result["follow_all_strict"],
        score=sum(result["strict"]) / n if n else 1.0,
        extracted=stripped[:_EXTRACTED_CHARS] if stripped else None,
        detail=json.dumps(detail, ensure_ascii=False),
    )


judge_ifeval = per_sample(_judge_ifeval)
