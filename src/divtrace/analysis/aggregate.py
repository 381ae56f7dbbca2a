"""Summary of the diversity scores: one row per checkpoint, task, CoT mode, scope, subset and metric.

:func:`summarize_diversity` turns the per-prompt rows of the ``diversity`` contract (docs/design.md §3) into
the table behind ``results/tables/diversity.parquet``. Each row carries the checkpoint's place in
the lineage tree and its ratios to the base model and to its parent stage.

Columns of the summary (in this order):

``model``
    checkpoint name (a key of ``config.models``).
``lineage``
    lineage label from :meth:`Lineage.lineage_of`. The root checkpoint belongs to every lineage and
    is labelled ``"base"`` (:data:`divtrace.names.BASE_LABEL`). A non-root checkpoint with no label on itself or on
    any ancestor takes the label that :meth:`Lineage.lineages` gives the path through it (the name
    of a leaf below it), so the labels match the lines of the trajectory figures.
``stage``, ``parent``, ``depth``
    the checkpoint's stage label, parent checkpoint (null for the root) and distance from the root.
``task``, ``cot``, ``scope``, ``subset``, ``metric``
    as in the diversity contract.
``value``
    ``per_input``: mean of the per-prompt values; ``across_input``: the single value.
``ci_low``, ``ci_high``
    ``per_input``: the 95 % percentile bootstrap interval of the mean over prompts
    (:mod:`divtrace.analysis.bootstrap`; seeded, ``n_boot`` resamples of the prompts, one resample
    matrix shared by the metrics of a checkpoint, task, CoT mode and subset). ``across_input``:
    null, since the set has one value per prompt set and nothing to resample (and with
    ``n_boot = 0``).
``n_prompts``
    ``per_input``: number of prompts averaged (those with a value); ``across_input``: number of
    outputs in the set, one per prompt (each prompt's sample 0, docs/design.md §5), i.e. the row's
    ``n_outputs``.
``n_missing``
    prompts of the run left out: ``per_input``, prompts without a value (fewer than two usable
    outputs, or in subset ``correct`` fewer than two correct ones); ``across_input``, prompts
    whose sample 0 is not in the set (dropped, or in subset ``correct`` not correct).
``n_outputs``
    total number of outputs scored (sum over the prompts that have a value).
``n_dropped``
    only if the input has that column: total outputs dropped before scoring (unclosed think
    blocks, prompts that did not fit); ``across_input``: prompts whose sample 0 was dropped.
``value_base``, ``ratio_to_base``
    the root checkpoint's value for the same task, scope, subset and metric with CoT ``on``, and
    ``value / value_base``.
``value_parent``, ``ratio_to_parent``
    the parent's value for the same task, scope, subset and metric: with the same CoT mode if the
    parent has rows for it, otherwise with CoT ``on`` (a reasoning model's CoT-off run is compared to
    a non-reasoning parent's normal run); and ``value / value_parent``. Null for the root.

Missing values (no reference, a division by zero, no interval) are null, never NaN or ``inf``.
The means, counts and references are polars group-bys and joins; only the bootstrap works on
the per-prompt numpy arrays of :class:`~divtrace.analysis.common.DiversityData`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from divtrace import io
from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, bootstrap_mean
from divtrace.analysis.common import (
    KEY,
    DiversityData,
    diversity_data,
    finish,
    missing_as_null,
    with_lineage_columns,
)
from divtrace.lineage import Lineage
from divtrace.names import LINEAGE_COLUMNS

#: What a value is compared with across checkpoints: the same task, scope, subset and metric.
REF_KEY = ["task", "scope", "subset", "metric"]
_COUNTS = ("depth", "n_prompts", "n_missing", "n_outputs", "n_dropped")
_STRINGS = ("model", "lineage", "stage", "parent", "task", "cot", "scope", "subset", "metric")


def summary_columns(with_dropped: bool = False) -> list[str]:
    """Column names of the summary table, in order."""
    return [
        *LINEAGE_COLUMNS,
        "task",
        "cot",
        "scope",
        "subset",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "n_prompts",
        "n_missing",
        "n_outputs",
        *(["n_dropped"] if with_dropped else []),
        "value_base",
        "ratio_to_base",
        "value_parent",
        "ratio_to_parent",
    ]


def _schema(columns: list[str]) -> dict[str, Any]:
    return {
        name: pl.String if name in _STRINGS else pl.Int64 if name in _COUNTS else pl.Float64
        for name in columns
    }


def _ratio(numerator: str, denominator: str) -> pl.Expr:
    """``numerator / denominator``; null where the denominator is 0, missing or not finite."""
    den = pl.col(denominator)
    return pl.when((den != 0) & den.is_finite()).then(pl.col(numerator) / den)


def _intervals(data: DiversityData, n_boot: int, seed: int, level: float) -> pl.DataFrame:
    """Bootstrap interval of each per_input mean: (model, task, cot, subset, metric) → bounds."""
    rows: list[tuple[str, str, str, str, str, float, float]] = []
    if n_boot > 0:
        for (model, task, cot, subset), block in data.per_input.items():
            result = bootstrap_mean(
                block.values,
                n_boot=n_boot,
                seed=seed,
                key=("diversity", model, task, cot, subset),
            )
            low, high = result.interval(level)
            for j, metric in enumerate(block.metrics):
                rows.append((model, task, cot, subset, metric, float(low[j]), float(high[j])))
    names = ["model", "task", "cot", "subset", "metric", "ci_low", "ci_high"]
    return pl.DataFrame(rows, schema=_schema(names), orient="row").with_columns(
        scope=pl.lit("per_input")
    )


def summarize_diversity(
    diversity: pl.DataFrame | DiversityData,
    lineage: Lineage,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> pl.DataFrame:
    """Aggregate diversity rows of many checkpoints into the summary table (module docstring).

    ``n_boot``, ``seed`` and ``level`` set the bootstrap intervals (``n_boot = 0``: none, null).
    Raises :class:`~divtrace.errors.ContractError` naming the column for a missing column or bad
    values, and :class:`~divtrace.errors.AnalysisError` naming the model for a model that is not in
    ``lineage``.
    """
    data = diversity_data(diversity, lineage)
    frame = data.frame
    with_dropped = "n_dropped" in frame.columns
    columns = summary_columns(with_dropped)
    if frame.is_empty():
        return finish([], columns, lineage, [], schema=_schema(columns))

    value = pl.col("value").fill_nan(None)
    table = frame.group_by(KEY).agg(
        *([pl.col("n_dropped").sum()] if with_dropped else []),
        pl.col("n_outputs").filter(value.is_not_null()).sum(),
        value=value.mean(),
        n_prompts=value.is_not_null().sum().cast(pl.Int64),
        _rows=pl.len().cast(pl.Int64),
        _set_size=pl.col("n_outputs").sum(),
    )
    # The run's prompts: its per_input rows (one per prompt and metric, whatever their value).
    run = ["model", "task", "cot", "subset", "metric"]
    prompts = table.filter(pl.col("scope") == "per_input").select(*run, _run_prompts="_rows")
    across = pl.col("scope") == "across_input"
    table = (
        table.join(prompts, on=run, how="left", maintain_order="left")
        .with_columns(
            # across inputs: the size of the one set, whether it has a value or not
            n_outputs=pl.when(across).then(pl.col("_set_size")).otherwise(pl.col("n_outputs"))
        )
        .with_columns(
            n_prompts=pl.when(across).then(pl.col("n_outputs")).otherwise(pl.col("n_prompts")),
            n_missing=pl.when(across)
            .then(pl.col("_run_prompts") - pl.col("n_outputs"))
            .otherwise(pl.col("_rows") - pl.col("n_prompts")),
        )
        .drop("_rows", "_set_size", "_run_prompts")
    )
    table = with_lineage_columns(table, lineage)

    values = table.select(*KEY, "value")
    base = values.filter((pl.col("model") == lineage.root) & (pl.col("cot") == "on"))
    table = table.join(
        base.select(*REF_KEY, value_base="value"), on=REF_KEY, how="left", maintain_order="left"
    )
    # The parent's value with the same CoT mode if the parent has rows for it (decided per parent
    # and CoT mode, not per value), otherwise with CoT on.
    same = values.rename({"model": "parent", "value": "_parent_same"})
    on = values.filter(pl.col("cot") == "on").drop("cot")
    on = on.rename({"model": "parent", "value": "_parent_on"})
    has_cot = frame.select(parent="model", cot="cot").unique().with_columns(_has_cot=pl.lit(True))
    table = (
        table.join(same, on=["parent", *KEY[1:]], how="left", maintain_order="left")
        .join(on, on=["parent", *REF_KEY], how="left", maintain_order="left")
        .join(has_cot, on=["parent", "cot"], how="left", maintain_order="left")
        .with_columns(
            value_parent=pl.when(pl.col("_has_cot").fill_null(False))
            .then(pl.col("_parent_same"))
            .otherwise(pl.col("_parent_on"))
        )
        .with_columns(
            ratio_to_base=_ratio("value", "value_base"),
            ratio_to_parent=_ratio("value", "value_parent"),
        )
    )
    table = table.join(
        _intervals(data, n_boot, seed, level),
        on=["model", "task", "cot", "scope", "subset", "metric"],
        how="left",
        maintain_order="left",
    )
    order = ["task", "cot", "scope", "subset", "metric"]
    return missing_as_null(finish(table, columns, lineage, order, schema=_schema(columns)))


def write_summary(
    table: pl.DataFrame,
    parquet_path: str | os.PathLike[str],
    csv_path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Atomically write the summary as Parquet (with JSON file metadata) and as CSV.

    The Parquet file's metadata (read with :func:`divtrace.io.read_metadata`) records
    ``{"table": "diversity_summary", **metadata}``.
    """
    meta = {"table": "diversity_summary", **(metadata or {})}
    return io.write_table_pair(table, parquet_path, csv_path, meta)
