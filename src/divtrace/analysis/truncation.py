"""What the budgets cut: one row per checkpoint, task and CoT mode, from the generations.

Columns (after the lineage columns of :data:`~divtrace.analysis.common.LINEAGE_COLUMNS`):

``task``, ``cot``
    the run.
``n_prompts``, ``n_samples``
    prompts and samples of the run, as sampled.
``n_prompt_too_long``
    prompts whose text did not fit the model's context (their samples were never generated:
    ``finish_reason`` ``prompt_too_long``); left out of every metric.
``length_share``
    of the generated samples, the share that ran to the token budget (``finish_reason``
    ``length``): their text is cut.
``unclosed_share``
    of the generated samples, the share whose think block never closed (``think_closed`` False:
    the reasoning ran out of budget before the answer); left out of the metrics. 0 for models
    that write no think block.
``n_short_prompts``, ``short_prompt_share``
    prompts left with fewer than 2 usable outputs (generated, and not an unclosed trace), and
    their share of the run's prompts: such a prompt has no per-input diversity.
``n_sample0_unusable``
    prompts whose sample 0 is not usable: they are left out of the across-input set (which takes
    each prompt's sample 0 and never a later sample in its place).

Shares are null where their denominator is 0. Counted with polars group-bys (per prompt, then per
run): no loop over the rows.
"""

from __future__ import annotations

import polars as pl

from divtrace.analysis.common import finish, with_lineage_columns
from divtrace.errors import AnalysisError, ContractError
from divtrace.generation.backend import LENGTH, PROMPT_TOO_LONG
from divtrace.lineage import Lineage
from divtrace.names import LINEAGE_COLUMNS, MIN_OUTPUTS

#: The generation columns the table reads (a projection: never the texts).
INPUT_COLUMNS = ("model", "task", "cot", "prompt_id", "sample", "finish_reason", "think_closed")

COLUMNS = (
    *LINEAGE_COLUMNS,
    "task",
    "cot",
    "n_prompts",
    "n_samples",
    "n_prompt_too_long",
    "length_share",
    "unclosed_share",
    "n_short_prompts",
    "short_prompt_share",
    "n_sample0_unusable",
)
SCHEMA = {
    name: pl.Float64
    if name.endswith("_share")
    else pl.Int64
    if name == "depth" or name.startswith("n_")
    else pl.String
    for name in COLUMNS
}
RUN = ["model", "task", "cot"]


def _share(count: str, total: str) -> pl.Expr:
    return pl.when(pl.col(total) != 0).then(pl.col(count) / pl.col(total))


def truncation_table(generations: pl.DataFrame, lineage: Lineage) -> pl.DataFrame:
    """The truncation table (see the module docstring) of the generations of many runs."""
    missing = [c for c in INPUT_COLUMNS if c not in generations.columns]
    if missing:
        raise ContractError(f"generations table lacks column(s) {missing}")
    frame = generations.select(INPUT_COLUMNS)
    for column in RUN:
        nulls = frame.get_column(column).null_count()
        if nulls:
            raise ContractError(f"generations column {column!r} has {nulls} null value(s)")
    models = frame.get_column("model").cast(pl.String).unique().to_list()
    unknown = sorted(set(models) - set(lineage.checkpoints))
    if unknown:
        raise AnalysisError(f"generations of model(s) {unknown} not in the lineage")
    reason = pl.col("finish_reason").cast(pl.String)
    too_long = (reason == PROMPT_TOO_LONG).fill_null(False)
    unclosed = (pl.col("think_closed").cast(pl.Boolean) == False).fill_null(False)  # noqa: E712
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c in RUN).with_columns(
        too_long=too_long,
        generated=~too_long,
        length=(reason == LENGTH).fill_null(False) & ~too_long,
        unclosed=unclosed & ~too_long,
        usable=~too_long & ~unclosed,
    )
    prompts = (
        frame.drop_nulls("prompt_id")
        .group_by([*RUN, "prompt_id"])
        .agg(
            pl.col("usable").sum(),
            pl.col("too_long").all(),
            sample0_unusable=~pl.col("usable").sort_by("sample").first(),
        )
        .group_by(RUN)
        .agg(
            n_prompts=pl.len(),
            n_prompt_too_long=pl.col("too_long").sum(),
            n_short_prompts=(pl.col("usable") < MIN_OUTPUTS).sum(),
            n_sample0_unusable=pl.col("sample0_unusable").sum(),
        )
    )
    runs = frame.group_by(RUN).agg(
        n_samples=pl.len(),
        _generated=pl.col("generated").sum(),
        _length=pl.col("length").sum(),
        _unclosed=pl.col("unclosed").sum(),
    )
    table = (
        runs.join(prompts, on=RUN, how="left")
        .with_columns(
            pl.col(
                "n_prompts", "n_prompt_too_long", "n_short_prompts", "n_sample0_unusable"
            ).fill_null(0)
        )
        .with_columns(
            length_share=_share("_length", "_generated"),
            unclosed_share=_share("_unclosed", "_generated"),
            short_prompt_share=_share("n_short_prompts", "n_prompts"),
        )
    )
    return finish(
        with_lineage_columns(table, lineage), COLUMNS, lineage, ("task", "cot"), schema=SCHEMA
    )
