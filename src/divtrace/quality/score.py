"""Score generations: one quality row (docs/design.md §3) per sampled answer of a verifiable task.

:data:`JUDGES` maps a task family to its :class:`~divtrace.quality.base.BatchJudge`, named as
``"module:function"`` by the family itself (:attr:`divtrace.tasks.base.TaskFamily.judge`) and
imported only when used, so this module imports even when a judge's module (or its heavy
dependencies) is missing.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Mapping
from typing import Any, cast

import polars as pl

from divtrace.errors import ContractError, JudgeError
from divtrace.generation.backend import PROMPT_TOO_LONG
from divtrace.io import QUALITY, empty_frame
from divtrace.quality.base import BatchJudge, Judgement
from divtrace.quality.votes import vote_column


def _judges() -> dict[str, str]:
    from divtrace.tasks import FAMILIES

    return {name: family.judge for name, family in FAMILIES.items() if family.judge is not None}


JUDGES: dict[str, str] = _judges()
"""Task family → its judge, as each family names it (``TaskFamily.judge``)."""

UNCLOSED = "unclosed reasoning trace"

_PROMPT_COLUMNS = ("prompt_id", "reference")
_GENERATION_COLUMNS = ("model", "task", "cot", "prompt_id", "sample", "answer")
#: Every generations column :func:`score_generations` reads (``divtrace score`` reads only these;
#: the last two are optional).
INPUT_COLUMNS: tuple[str, ...] = (*_GENERATION_COLUMNS, "think_closed", "finish_reason")


def get_judge(family: str) -> BatchJudge:
    """The batch judge of a task family (:class:`JudgeError` for a family without one)."""
    try:
        target = JUDGES[family]
    except KeyError:
        raise JudgeError(
            f"task family {family!r} has no correctness judge (judged families: {sorted(JUDGES)})"
        ) from None
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    try:
        return cast(BatchJudge, getattr(module, attribute))
    except AttributeError:
        raise ValueError(f"judge {target!r} of family {family!r}: no such function") from None


def _require(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ContractError(f"{what} table lacks column(s) {missing}")


def _decode(reference: Any, prompt_id: str) -> Mapping[str, Any]:
    if isinstance(reference, Mapping):
        return reference
    try:
        decoded = json.loads(reference)
    except (TypeError, json.JSONDecodeError) as err:
        raise ContractError(f"prompt {prompt_id!r}: reference is not valid JSON ({err})") from err
    if not isinstance(decoded, Mapping):
        raise ContractError(f"prompt {prompt_id!r}: reference must be a JSON object")
    return decoded


def score_generations(
    family: str,
    prompts: pl.DataFrame,
    generations: pl.DataFrame,
    prompt_style: str | None = None,
) -> pl.DataFrame:
    """Judge every generation of ``family``; one QUALITY row per (prompt_id, sample).

    The judge sees the ``answer`` column. A row whose ``think_closed`` is False (a reasoning trace
    that never closed) is judged incorrect with detail ``"unclosed reasoning trace"`` and is not
    passed to the judge; null ``think_closed`` means "not a reasoning model" and is judged
    normally. A sample that was never generated (``finish_reason`` ``prompt_too_long``: its
    prompt did not fit the model's context) has no quality row: there is nothing to judge, and
    it says nothing of the model. Rows come out in prompt-table order, then by sample. Besides
    the QUALITY columns, the table holds each sample's answer class for majority@K (``vote``,
    :mod:`divtrace.quality.votes`; null where the family's vote has no meaning).
    ``prompt_style`` (the prompts file's, ``tasks.<name>.prompt_style``) reaches the judges that
    take it: the code judges score answers to the paper's prompts as the paper's checker does.
    """
    _require(prompts, _PROMPT_COLUMNS, "prompts")
    _require(generations, _GENERATION_COLUMNS, "generations")
    repeated_ids = prompts.filter(~pl.col("prompt_id").is_first_distinct())
    if repeated_ids.height:
        raise ContractError(f"prompts table repeats prompt_id {repeated_ids['prompt_id'][0]!r}")
    key = ["model", "task", "cot", "prompt_id", "sample"]
    repeated = generations.filter(~pl.struct(key).is_first_distinct())
    if repeated.height:
        first = repeated.row(0, named=True)
        raise ContractError(
            f"generations repeat prompt_id {first['prompt_id']!r} sample {first['sample']} "
            f"(model {first['model']!r}, task {first['task']!r}, cot {first['cot']!r})"
        )
    if "finish_reason" in generations.columns:
        generations = generations.filter(pl.col("finish_reason").ne_missing(PROMPT_TOO_LONG))
    if generations.is_empty():
        return empty_frame("quality")

    known = set(prompts.get_column("prompt_id").to_list())
    unknown = sorted(set(generations.get_column("prompt_id").to_list()) - known)
    if unknown:
        shown = ", ".join(repr(p) for p in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ContractError(
            f"generations name prompt_id(s) not in the prompts table: {shown}{more}"
        )

    order = prompts.select("prompt_id").with_row_index("_order")
    generations = generations.join(order, on="prompt_id", how="left").sort(
        ["_order", "sample"], maintain_order=True
    )

    prompt_rows: dict[str, Mapping[str, Any]] = {
        str(row["prompt_id"]): row for row in prompts.iter_rows(named=True)
    }
    references = {pid: _decode(row["reference"], pid) for pid, row in prompt_rows.items()}

    if "think_closed" in generations.columns:
        unclosed = pl.col("think_closed").cast(pl.Boolean).eq_missing(False)
    else:
        unclosed = pl.lit(False)
    to_judge = generations.with_row_index("_position").filter(~unclosed)
    judgements: list[Judgement] = [Judgement(False, 0.0, None, UNCLOSED)] * generations.height
    if to_judge.height:
        judge = get_judge(family)
        answers = to_judge.get_column("answer").cast(pl.String).fill_null("").to_list()
        ids = [str(p) for p in to_judge.get_column("prompt_id")]
        options = (
            {"prompt_style": prompt_style}
            if prompt_style is not None and "prompt_style" in inspect.signature(judge).parameters
            else {}
        )
        verdicts = judge(
            answers, [references[p] for p in ids], [prompt_rows[p] for p in ids], **options
        )
        if len(verdicts) != len(answers):
            raise RuntimeError(
                f"judge of {family!r} returned {len(verdicts)} verdicts for {len(answers)} answers"
            )
        for position, verdict in zip(to_judge.get_column("_position"), verdicts, strict=True):
            judgements[position] = verdict

    table = generations.select(
        *key[:-1],
        pl.col("sample").cast(pl.Int64),
        pl.Series("correct", [bool(j.correct) for j in judgements], dtype=pl.Boolean),
        pl.Series("score", [float(j.score) for j in judgements], dtype=pl.Float64),
        pl.Series("extracted", [j.extracted for j in judgements], dtype=pl.String),
        pl.Series("detail", [j.detail for j in judgements], dtype=pl.String),
    ).select(QUALITY.names)
    # Each sample's answer class for majority@K, computed here once per run (quality.votes).
    return table.with_columns(vote_column(table, family))
