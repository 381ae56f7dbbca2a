"""Quality per prompt and the quality table, with lineage columns, intervals and pass@k curves.

:func:`quality_per_prompt` is the one way the analysis reads the quality contract: the per-prompt
metrics of :func:`divtrace.quality.metrics.per_prompt`, checked against the lineage (the CoT table
pairs them; the quality table averages them).

:func:`quality_table` extends :func:`divtrace.quality.metrics.quality_summary` (same numbers, same
rows: one per checkpoint, task and CoT mode) with

- the checkpoint's ``lineage``, ``stage``, ``parent`` and ``depth`` (as in the diversity summary);
- ``pass_at_{k}`` for every power of two up to the largest number of samples per prompt, and that
  number itself, besides the summary's :data:`~divtrace.quality.metrics.PASS_KS` (1, 2, 4, 5, 8,
  10, 16; null where a run has fewer samples), so that pass@k curves have a point per doubling of
  k and at the paper's k;
- ``{metric}_ci_low`` / ``{metric}_ci_high`` for ``accuracy_at_1``, ``majority_at_k`` and every
  ``pass_at_{k}``: a percentile bootstrap over prompts, one resample shared by these metrics.

Columns: ``model, lineage, stage, parent, depth, task, cot, n_prompts, n_samples,
samples_per_prompt``, then each interval metric followed by its two bounds, then
``extraction_rate, mean_score, unclosed_rate``, then the IFEval accuracies
``ifeval_prompt_strict, ifeval_prompt_loose, ifeval_instruction_strict,
ifeval_instruction_loose`` (on sample 0, without intervals; null for the other tasks).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
import polars.selectors as cs

from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, bootstrap_mean
from divtrace.analysis.common import check_models, finish, missing_as_null, with_lineage_columns
from divtrace.errors import ContractError
from divtrace.lineage import Lineage
from divtrace.names import LINEAGE_COLUMNS
from divtrace.quality.metrics import (
    IFEVAL_COLUMNS,
    IFEVAL_PROMPT_COLUMNS,
    METRIC_COLUMNS,
    PASS_KS,
    ifeval_summary,
    per_prompt,
    with_pass_at_k,
)

#: The per-prompt quality metrics the CoT table pairs (every per-prompt table has them).
QUALITY_METRICS = ("accuracy_at_1", "pass_at_1")
RUN = ["model", "task", "cot"]


def quality_per_prompt(
    quality: pl.DataFrame, lineage: Lineage, families: Mapping[str, str] | None = None
) -> pl.DataFrame:
    """Per-prompt quality metrics: ``quality`` itself if it already is a per-prompt table
    (:func:`divtrace.quality.metrics.per_prompt`), otherwise computed from the quality contract
    (``families``: task → task family, as there).

    Key columns come back as strings, missing float values as null; a null ``pass_at_1`` is filled
    with ``c / n`` where those columns exist. Raises :class:`ContractError` for a missing column
    and :class:`AnalysisError` for a model that is not in ``lineage``.
    """
    prompts = quality if "sample" not in quality.columns else per_prompt(quality, families)
    missing = [c for c in (*RUN, "prompt_id", *QUALITY_METRICS) if c not in prompts.columns]
    if missing:
        raise ContractError(f"quality table lacks column(s) {missing}")
    check_models(prompts, lineage, "quality")
    prompts = prompts.with_columns(cs.float().fill_nan(None))
    if {"c", "n"} <= set(prompts.columns):
        prompts = prompts.with_columns(pl.col("pass_at_1").fill_null(pl.col("c") / pl.col("n")))
    return prompts.with_columns(pl.col(c).cast(pl.String) for c in (*RUN, "prompt_id"))


def pass_ks(max_samples: int, base: tuple[int, ...] = PASS_KS) -> list[int]:
    """Powers of two up to ``max_samples``, ``max_samples`` itself and ``base``, sorted."""
    ks = set(base)
    k = 1
    while k <= max_samples:
        ks.add(k)
        k *= 2
    if max_samples >= 1:
        ks.add(max_samples)
    return sorted(ks)


def quality_table(
    quality: pl.DataFrame,
    lineage: Lineage,
    *,
    families: Mapping[str, str] | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> pl.DataFrame:
    """The quality summary per checkpoint, task and CoT mode (module docstring).

    ``quality`` is the quality contract (one row per sample) or its per-prompt table;
    ``families`` (task → task family) as in :func:`divtrace.quality.metrics.per_prompt`.
    """
    prompts = quality_per_prompt(quality, lineage, families)
    prompts = prompts.with_columns(  # a per-prompt table from before the IFEval columns
        pl.lit(None, dtype=pl.Int64).alias(c)
        for c in IFEVAL_PROMPT_COLUMNS
        if c not in prompts.columns
    )
    max_n = prompts.get_column("n").max() if len(prompts) else 0
    ks = pass_ks(int(max_n) if isinstance(max_n, int) else 0)
    prompts = with_pass_at_k(prompts, [k for k in ks if f"pass_at_{k}" not in prompts.columns])
    interval_metrics = ["accuracy_at_1", "majority_at_k", *(f"pass_at_{k}" for k in ks)]
    plain = [m for m in METRIC_COLUMNS if m not in interval_metrics]
    bounds = [f"{m}{s}" for m in interval_metrics for s in ("_ci_low", "_ci_high")]
    columns = [
        *LINEAGE_COLUMNS,
        "task",
        "cot",
        "n_prompts",
        "n_samples",
        "samples_per_prompt",
        *(f"{m}{s}" for m in interval_metrics for s in ("", "_ci_low", "_ci_high")),
        *plain,
        *IFEVAL_COLUMNS,
    ]
    schema = {
        name: pl.Int64 if name in ("n_prompts", "n_samples", "samples_per_prompt") else pl.Float64
        for name in columns[columns.index("n_prompts") :]
    }
    # The plain means, exactly as quality_summary computes them (null-skipping).
    summary = prompts.group_by(RUN).agg(
        pl.col([*interval_metrics, *plain]).cast(pl.Float64).mean(),
        *ifeval_summary(),
        n_prompts=pl.len(),
        n_samples=pl.col("n").sum(),
        samples_per_prompt=pl.col("n").min(),
    )
    intervals: list[dict[str, object]] = []
    runs = prompts.sort([*RUN, "prompt_id"]).partition_by(RUN, as_dict=True, maintain_order=True)
    for (model, task, cot), group in runs.items():
        values = group.select(interval_metrics).cast(pl.Float64).to_numpy()
        result = bootstrap_mean(values, n_boot=n_boot, seed=seed, key=("quality", model, task, cot))
        low, high = result.interval(level)
        row: dict[str, object] = {"model": model, "task": task, "cot": cot}
        for j, metric in enumerate(interval_metrics):
            row[f"{metric}_ci_low"] = float(low[j])
            row[f"{metric}_ci_high"] = float(high[j])
        intervals.append(row)
    if intervals:
        summary = summary.join(
            pl.from_dicts(
                intervals,
                schema={**dict.fromkeys(RUN, pl.String), **dict.fromkeys(bounds, pl.Float64)},
            ),
            on=RUN,
            how="left",
        )
    table = with_lineage_columns(summary, lineage)
    return missing_as_null(finish(table, columns, lineage, ["task", "cot"], schema=schema))
