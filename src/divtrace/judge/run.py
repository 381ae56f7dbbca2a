"""Judging one (model, task, CoT) run: requests → cache → backend → parsed rows.

:func:`judge` turns the protocol's items into backend-independent requests, asks the backend only
for those without a cached answer (each answer is cached the moment it arrives), and builds one
row per item (:data:`divtrace.names.JUDGEMENT_COLUMNS`) from the cache. If any request is left
without an answer it raises :class:`~divtrace.errors.JudgeError` after caching the others, so no
incomplete table is written and a rerun asks only for what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from divtrace.errors import JudgeError
from divtrace.judge.backends import Failure, OnAnswer
from divtrace.judge.cache import AnswerCache, ChatRequest
from divtrace.judge.protocols import Item, parse
from divtrace.names import JUDGEMENT_COLUMNS

Send = Callable[[Sequence[ChatRequest], OnAnswer], list[Failure]]


@dataclass(frozen=True)
class JudgeRun:
    """A finished run: its rows and how many requests were sent (0 when all were cached)."""

    frame: pl.DataFrame
    n_requests: int
    n_sent: int

    @property
    def n_failed_parse(self) -> int:
        return int((~self.frame.get_column("parsed")).sum())


def requests_of(
    items: Sequence[Item], judge_model: str, template_version: str, temperature: float = 0.0
) -> list[ChatRequest]:
    return [
        ChatRequest(judge_model, template_version, item.messages, item.max_tokens, temperature)
        for item in items
    ]


def judge(
    items: Sequence[Item],
    *,
    judge_model: str,
    template_version: str,
    cache: AnswerCache,
    send: Send,
    temperature: float = 0.0,
) -> JudgeRun:
    requests = requests_of(items, judge_model, template_version, temperature)
    missing = cache.missing(requests)
    failures = send(missing, cache.put) if missing else []
    if failures:
        request, why = failures[0]
        raise JudgeError(
            f"{len(failures)} of {len(missing)} judge request(s) got no answer (first: {why}); "
            f"the {len(missing) - len(failures)} answered are cached; rerun to retry the rest"
        )
    rows = []
    for item, request in zip(items, requests, strict=True):
        answer = cache.get(request.key)
        if answer is None:
            raise JudgeError(f"the backend reported no failure but left {request.key} unanswered")
        parsed = parse(item.protocol, answer.text, item.swapped)
        rows.append(
            {
                "model": item.model,
                "task": item.task,
                "cot": item.cot,
                "prompt_id": item.prompt_id,
                "sample": item.sample,
                "protocol": item.protocol,
                "opponent": item.opponent,
                "swapped": item.swapped,
                "raw": answer.text,
                "parsed": parsed.ok,
                "verdict": parsed.verdict,
                "score": parsed.score,
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "judge_model": judge_model,
                "template_version": template_version,
            }
        )
    schema = {
        "sample": pl.Int64,
        "swapped": pl.Boolean,
        "parsed": pl.Boolean,
        "verdict": pl.String,
        "score": pl.Float64,
        "prompt_tokens": pl.Int64,
        "completion_tokens": pl.Int64,
    }
    frame = pl.DataFrame(
        rows,
        schema={c: schema.get(c, pl.String) for c in JUDGEMENT_COLUMNS},
    )
    return JudgeRun(frame, len(requests), len(missing))
