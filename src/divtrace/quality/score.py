"""Score generations: one quality row (DESIGN §3) per sampled answer of a verifiable task.

:data:`JUDGES` maps a task family to its :class:`~divtrace.quality.base.BatchJudge`, named as
``"module:function"`` and imported only when used, so this module imports even when a judge's
module (or its heavy dependencies) is missing.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any, cast

import pandas as pd

from divtrace.generation.backend import PROMPT_TOO_LONG
from divtrace.io import QUALITY, empty_frame
from divtrace.quality.base import BatchJudge, Judgement

JUDGES: dict[str, str] = {
    "gsm8k": "divtrace.quality.math:judge_math",
    "math_algebra": "divtrace.quality.math:judge_math",
    "math_geometry": "divtrace.quality.math:judge_math",
    "cruxeval": "divtrace.quality.exact:judge_cruxeval",
    "truthfulqa": "divtrace.quality.exact:judge_truthfulqa",
    "humaneval": "divtrace.quality.code:judge_humaneval",
    "mbpp": "divtrace.quality.code:judge_mbpp",
    "ifeval": "divtrace.quality.ifeval:judge_ifeval",
}

UNCLOSED = "unclosed reasoning trace"

_PROMPT_COLUMNS = ("prompt_id", "reference")
_GENERATION_COLUMNS = ("model", "task", "cot", "prompt_id", "sample", "answer")


def get_judge(family: str) -> BatchJudge:
    """The batch judge of a task family (ValueError for a family without one)."""
    try:
        target = JUDGES[family]
    except KeyError:
        raise ValueError(
            f"task family {family!r} has no correctness judge (judged families: {sorted(JUDGES)})"
        ) from None
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    try:
        return cast(BatchJudge, getattr(module, attribute))
    except AttributeError:
        raise ValueError(f"judge {target!r} of family {family!r}: no such function") from None


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} table lacks column(s) {missing}")


def _decode(reference: Any, prompt_id: str) -> Mapping[str, Any]:
    if isinstance(reference, Mapping):
        return reference
    try:
        decoded = json.loads(reference)
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"prompt {prompt_id!r}: reference is not valid JSON ({err})") from err
    if not isinstance(decoded, Mapping):
        raise ValueError(f"prompt {prompt_id!r}: reference must be a JSON object")
    return decoded


def _unclosed(value: Any) -> bool:
    """``think_closed`` is False (null means "not a reasoning model": judged normally)."""
    return value is not None and not pd.isna(value) and not bool(value)


def score_generations(
    family: str, prompts: pd.DataFrame, generations: pd.DataFrame
) -> pd.DataFrame:
    """Judge every generation of ``family``; one QUALITY row per (prompt_id, sample).

    The judge sees the ``answer`` column. A row whose ``think_closed`` is False (a reasoning trace
    that never closed) is judged incorrect with detail ``"unclosed reasoning trace"`` and is not
    passed to the judge. A sample that was never generated (``finish_reason`` ``prompt_too_long``:
    its prompt did not fit the model's context) has no quality row: there is nothing to judge, and
    it says nothing of the model. Rows come out in prompt-table order, then by sample.
    """
    _require(prompts, _PROMPT_COLUMNS, "prompts")
    _require(generations, _GENERATION_COLUMNS, "generations")
    duplicated = prompts["prompt_id"][prompts["prompt_id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"prompts table repeats prompt_id {duplicated.iloc[0]!r}")
    key = ["model", "task", "cot", "prompt_id", "sample"]
    repeated = generations[generations.duplicated(key)]
    if len(repeated):
        first = repeated.iloc[0]
        raise ValueError(
            f"generations repeat prompt_id {first['prompt_id']!r} sample {first['sample']} "
            f"(model {first['model']!r}, task {first['task']!r}, cot {first['cot']!r})"
        )
    if "finish_reason" in generations.columns:
        generations = generations[generations["finish_reason"] != PROMPT_TOO_LONG]
    if generations.empty:
        return empty_frame("quality")

    known = set(prompts["prompt_id"])
    unknown = sorted(set(generations["prompt_id"]) - known)
    if unknown:
        shown = ", ".join(repr(p) for p in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ValueError(f"generations name prompt_id(s) not in the prompts table: {shown}{more}")

    order = {pid: i for i, pid in enumerate(prompts["prompt_id"])}
    generations = generations.assign(_order=generations["prompt_id"].map(order))
    generations = generations.sort_values(["_order", "sample"], kind="stable").reset_index(
        drop=True
    )

    prompt_rows: dict[str, Mapping[str, Any]] = {
        str(row["prompt_id"]): {str(k): v for k, v in row.items()}
        for row in prompts.to_dict("records")
    }
    references = {pid: _decode(row["reference"], pid) for pid, row in prompt_rows.items()}

    if "think_closed" in generations.columns:
        unclosed = [_unclosed(v) for v in generations["think_closed"]]
    else:
        unclosed = [False] * len(generations)
    to_judge = [i for i, skip in enumerate(unclosed) if not skip]
    judgements: list[Judgement] = [Judgement(False, 0.0, None, UNCLOSED)] * len(generations)
    if len(to_judge):
        judge = get_judge(family)
        rows = generations.iloc[to_judge]
        answers = ["" if pd.isna(a) else str(a) for a in rows["answer"]]
        ids = [str(p) for p in rows["prompt_id"]]
        verdicts = judge(answers, [references[p] for p in ids], [prompt_rows[p] for p in ids])
        if len(verdicts) != len(answers):
            raise RuntimeError(
                f"judge of {family!r} returned {len(verdicts)} verdicts for {len(answers)} answers"
            )
        for position, verdict in zip(to_judge, verdicts, strict=True):
            judgements[position] = verdict

    out = generations[["model", "task", "cot", "prompt_id", "sample"]].copy()
    out["sample"] = out["sample"].astype("int64")
    out["correct"] = [bool(j.correct) for j in judgements]
    out["score"] = [float(j.score) for j in judgements]
    # object dtype keeps None (pandas' string dtype would turn it into NaN)
    out["extracted"] = pd.Series([j.extracted for j in judgements], index=out.index, dtype=object)
    out["detail"] = pd.Series([j.detail for j in judgements], index=out.index, dtype=object)
    return out[QUALITY.names]
