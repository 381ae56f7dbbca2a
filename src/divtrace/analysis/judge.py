"""The judge table: LLM-judge quality per checkpoint, task and CoT mode, with intervals and cost.

Reads the judgements that ``divtrace judge`` writes, one row per judged sample and order
(:data:`divtrace.names.JUDGEMENT_COLUMNS`), and summarises each (model, task, cot) cell by its protocol
(:data:`divtrace.names.JUDGE_TASK_PROTOCOLS`):

``reference_ranking`` (tldr, cnn_dailymail, xsum, alpaca)
    ``score`` is the model's side of the ranking against the reference (win 1, tie 0.5, loss 0;
    the judge library has undone the position swap). Win rate = mean score.
``base_pairwise`` (writingprompts, prism)
    Two rows per sample, one per order (``swapped``), each ``score`` from the model's side (the
    second order already flipped). A sample counts where both orders parsed; its score is the
    mean of the two, so the win rate is the mean of the two orders' means over those samples.
    ``position_consistency``: the share of those samples whose two orders prefer the same side
    (the model, neither, or the base).
``wb_score`` (wildbench)
    ``score`` is the raw 1–10 rating; ``raw_mean`` its mean and ``value`` the WB-Score,
    ``(raw_mean - 5) x 2``.

A row whose answer could not be parsed (``parsed`` false, ``score`` null) is counted in
``n_failed`` and left out of the value: never a tie, never a loss. Per prompt the value is the
mean over its judged samples; the interval is a percentile bootstrap over prompts, with the same
resamples for every cell of a task (the key is the task, prompts sorted by id), so that the cells
of one task are compared on jointly resampled prompts.

Tokens are summed over every row, parsed or not (each was a paid request); ``cost_usd`` prices
them with ``prices[judge_model]`` (per million tokens; the batch discount off both prices when
the backend is ``openai-batch``), null where the judge model has no price.

Columns: ``model, lineage, stage, parent, depth, task, cot, protocol, opponent, judge_model,
measure`` (``win_rate`` | ``wb_score``), ``value, value_ci_low, value_ci_high, raw_mean,
position_consistency, n_prompts`` (prompts with a value), ``n_judged`` (rows), ``n_parsed,
n_failed, prompt_tokens, completion_tokens, cost_usd``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, bootstrap_mean
from divtrace.analysis.common import check_models, finish, missing_as_null, row_head
from divtrace.errors import ContractError
from divtrace.lineage import Lineage
from divtrace.names import JUDGE_MEASURES, LINEAGE_COLUMNS

#: The judgement columns the table reads.
READ_COLUMNS: tuple[str, ...] = (
    "model",
    "task",
    "cot",
    "prompt_id",
    "sample",
    "protocol",
    "opponent",
    "swapped",
    "parsed",
    "score",
    "prompt_tokens",
    "completion_tokens",
    "judge_model",
)
RUN = ["model", "task", "cot"]
#: The batch discount where a price entry names none (OpenAI's Batch API: half price).
DEFAULT_BATCH_DISCOUNT = 0.5
BATCH_BACKEND = "openai-batch"

COLUMNS: list[str] = [
    *LINEAGE_COLUMNS,
    "task",
    "cot",
    "protocol",
    "opponent",
    "judge_model",
    "measure",
    "value",
    "value_ci_low",
    "value_ci_high",
    "raw_mean",
    "position_consistency",
    "n_prompts",
    "n_judged",
    "n_parsed",
    "n_failed",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
]
_INTS = {"depth", "n_prompts", "n_judged", "n_parsed", "n_failed"}
_INTS |= {"prompt_tokens", "completion_tokens"}
_FLOATS = {"value", "value_ci_low", "value_ci_high", "raw_mean", "position_consistency"}
_FLOATS |= {"cost_usd"}
SCHEMA: dict[str, Any] = {
    name: pl.Int64 if name in _INTS else pl.Float64 if name in _FLOATS else pl.String
    for name in COLUMNS
}
#: One expected judge cell: model, task, CoT mode.
JudgeRun = tuple[str, str, str]


def empty_judge_table() -> pl.DataFrame:
    """The judge table of a study that judges nothing: its columns, no rows."""
    return pl.DataFrame(schema=SCHEMA)


def validate_judgements(judgements: pl.DataFrame, lineage: Lineage) -> pl.DataFrame:
    """The columns the table reads, typed; :class:`ContractError` names a missing column, a
    protocol without a summary, or a parsed row without a score."""
    missing = [c for c in READ_COLUMNS if c not in judgements.columns]
    if missing:
        raise ContractError(f"judgements lack column(s) {missing} (issue #16 row schema)")
    frame = judgements.select(READ_COLUMNS).with_columns(
        pl.col(["model", "task", "cot", "prompt_id", "protocol", "opponent", "judge_model"]).cast(
            pl.String
        ),
        pl.col("sample").cast(pl.Int64),
        pl.col("swapped").cast(pl.Boolean),
        pl.col("parsed").cast(pl.Boolean).fill_null(False),
        pl.col("score").cast(pl.Float64).fill_nan(None),
        pl.col(["prompt_tokens", "completion_tokens"]).cast(pl.Int64).fill_null(0),
    )
    check_models(frame, lineage, "judgements")
    unknown = sorted(set(frame.get_column("protocol").unique().to_list()) - set(JUDGE_MEASURES))
    if unknown:
        raise ContractError(
            f"judgements name protocol(s) {unknown} without a summary (known: "
            f"{sorted(JUDGE_MEASURES)})"
        )
    bad = frame.filter(pl.col("parsed") & pl.col("score").is_null())
    if len(bad):
        row = bad.row(0, named=True)
        raise ContractError(
            f"judgements of {row['model']}/{row['task']}/cot-{row['cot']}: {len(bad)} row(s) "
            f"parsed without a score (first: prompt {row['prompt_id']!r}, sample {row['sample']})"
        )
    return frame


def sample_scores(frame: pl.DataFrame, protocol: str) -> pl.DataFrame:
    """One row per judged sample of one cell's rows: ``prompt_id, sample, score`` (null unless
    it counts) and, for ``base_pairwise``, ``consistent`` (the two orders agree in direction)."""
    if protocol != "base_pairwise":
        return frame.select(
            "prompt_id",
            "sample",
            pl.when(pl.col("parsed")).then(pl.col("score")).alias("score"),
            pl.lit(None, dtype=pl.Boolean).alias("consistent"),
        )
    score = pl.when(pl.col("parsed")).then(pl.col("score"))
    direction = (score - 0.5).sign()
    per_order = frame.group_by("prompt_id", "sample").agg(
        first=score.filter(~pl.col("swapped")).mean(),
        second=score.filter(pl.col("swapped")).mean(),
        first_dir=direction.filter(~pl.col("swapped")).mean(),
        second_dir=direction.filter(pl.col("swapped")).mean(),
    )
    both = pl.col("first").is_not_null() & pl.col("second").is_not_null()
    return per_order.select(
        "prompt_id",
        "sample",
        pl.when(both).then((pl.col("first") + pl.col("second")) / 2).alias("score"),
        pl.when(both).then(pl.col("first_dir") == pl.col("second_dir")).alias("consistent"),
    )


def _cost(
    prompt_tokens: int,
    completion_tokens: int,
    judge_model: str,
    prices: Mapping[str, Mapping[str, float]],
    backend: str | None,
) -> float | None:
    price = prices.get(judge_model)
    if price is None:
        return None
    discount = (
        float(price.get("batch_discount", DEFAULT_BATCH_DISCOUNT))
        if backend == BATCH_BACKEND
        else 0.0
    )
    dollars = (
        prompt_tokens * float(price["input_per_mtok"])
        + completion_tokens * float(price["output_per_mtok"])
    ) / 1e6
    return dollars * (1.0 - discount)


def judge_table(
    judgements: pl.DataFrame | None,
    lineage: Lineage,
    *,
    prices: Mapping[str, Mapping[str, float]] | None = None,
    backend: str | None = None,
    runs: Sequence[JudgeRun] | None = None,
    protocols: Mapping[str, str] | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> pl.DataFrame:
    """The judge table (module docstring) from the judgement rows of many cells.

    ``runs``: the expected judge cells; one without a judgement gets a row with a null value
    (``n_judged`` 0) so that it cannot vanish. ``protocols`` (task → protocol) labels such a
    row; ``prices`` and ``backend`` price the tokens.
    """
    rows: list[dict[str, object]] = []
    frame = (
        validate_judgements(judgements, lineage)
        if judgements is not None and len(judgements)
        else None
    )
    present: set[tuple[str, str, str]] = set()
    if frame is not None:
        cells = frame.sort([*RUN, "prompt_id", "sample", "swapped"]).partition_by(
            RUN, as_dict=True, maintain_order=True
        )
        for key, cell in cells.items():
            model, task, cot = (str(part) for part in key)
            present.add((model, task, cot))
            rows.append(
                _cell_row(
                    cell, lineage, model, task, cot, prices or {}, backend, n_boot, seed, level
                )
            )
    for model, task, cot in runs or ():
        if (model, task, cot) in present or model not in lineage.checkpoints:
            continue
        protocol = (protocols or {}).get(task)
        rows.append(
            {
                **row_head(lineage, model, task),
                "cot": cot,
                "protocol": protocol,
                "measure": JUDGE_MEASURES.get(protocol or ""),
                "n_prompts": 0,
                "n_judged": 0,
                "n_parsed": 0,
                "n_failed": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
            }
        )
    if not rows:
        return empty_judge_table()
    return missing_as_null(finish(rows, COLUMNS, lineage, ["task", "cot"], schema=SCHEMA))


def _single(cell: pl.DataFrame, column: str, where: str) -> str:
    values = cell.get_column(column).unique().drop_nulls().to_list()
    if len(values) != 1:
        raise ContractError(f"judgements of {where}: expected one {column}, found {values}")
    return str(values[0])


def _cell_row(
    cell: pl.DataFrame,
    lineage: Lineage,
    model: str,
    task: str,
    cot: str,
    prices: Mapping[str, Mapping[str, float]],
    backend: str | None,
    n_boot: int,
    seed: int,
    level: float,
) -> dict[str, object]:
    where = f"{model}/{task}/cot-{cot}"
    protocol = _single(cell, "protocol", where)
    judge_model = _single(cell, "judge_model", where)
    opponents = sorted(set(cell.get_column("opponent").drop_nulls().to_list()))
    samples = sample_scores(cell, protocol)
    per_prompt = (
        samples.group_by("prompt_id")
        .agg(pl.col("score").mean())
        .sort("prompt_id")
        .get_column("score")
        .to_numpy()
        .astype(float)
    )
    result = bootstrap_mean(per_prompt, n_boot=n_boot, seed=seed, key=("judge", task))
    estimate = float(result.estimate[0]) if int(result.n[0]) else float("nan")
    low, high = (float(bound[0]) for bound in result.interval(level))
    raw_mean: float | None = None
    if protocol == "wb_score":  # WB-Score: a linear map of the raw mean, interval included
        raw_mean = estimate
        estimate, low, high = ((x - 5.0) * 2.0 for x in (estimate, low, high))
    consistent = samples.get_column("consistent").drop_nulls()
    prompt_tokens = int(cell.get_column("prompt_tokens").sum())
    completion_tokens = int(cell.get_column("completion_tokens").sum())
    n_parsed = int(cell.get_column("parsed").sum())
    return {
        **row_head(lineage, model, task),
        "cot": cot,
        "protocol": protocol,
        "opponent": ",".join(opponents) or None,
        "judge_model": judge_model,
        "measure": JUDGE_MEASURES[protocol],
        "value": estimate,
        "value_ci_low": low,
        "value_ci_high": high,
        "raw_mean": raw_mean,
        "position_consistency": (
            float(consistent.cast(pl.Float64).mean()) if len(consistent) else None  # type: ignore[arg-type]
        ),
        "n_prompts": int(np.isfinite(per_prompt).sum()),
        "n_judged": len(cell),
        "n_parsed": n_parsed,
        "n_failed": len(cell) - n_parsed,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_usd": _cost(prompt_tokens, completion_tokens, judge_model, prices, backend),
    }
