"""CoT on vs off: how switching the reasoning trace off changes answer diversity and accuracy.

For every checkpoint with runs in both CoT modes (the reasoning models), :func:`cot_table` compares
the two runs on the prompts both have, per task:

- ``kind = "diversity"``: each diversity metric (``scope``/``subset`` as in the diversity contract);
- ``kind = "quality"``: ``accuracy_at_1`` (sample 0 correct) and ``pass_at_1`` (mean correctness
  over the prompt's samples, the unbiased pass@1), from the per-prompt quality metrics
  (:func:`divtrace.quality.metrics.per_prompt`); ``scope`` is ``per_input`` and ``subset``
  ``all`` on these rows.

``difference = value_on − value_off`` (positive: the run with CoT is more diverse / more
accurate), where ``value_on`` and ``value_off`` are means over the ``n_prompts`` paired prompts. The
interval is a paired percentile bootstrap of the mean per-prompt difference over those prompts
(:func:`divtrace.analysis.bootstrap.paired_bootstrap`); ``significant`` is true when the interval
excludes 0, false when it contains 0, and null where there is no interval (``across_input`` rows,
which have one value per run, and ``n_boot = 0``). Missing values are null.

Columns: ``model, lineage, stage, parent, depth, task, kind, scope, subset, metric, value_on,
value_off, difference, ci_low, ci_high, n_prompts, significant``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, paired_bootstrap
from divtrace.analysis.common import (
    DiversityData,
    diversity_data,
    finish,
    lineage_columns,
    missing_as_null,
)
from divtrace.analysis.quality import QUALITY_METRICS, quality_per_prompt
from divtrace.lineage import Lineage
from divtrace.names import LINEAGE_COLUMNS, SUBSETS

COLUMNS = [
    *LINEAGE_COLUMNS,
    "task",
    "kind",
    "scope",
    "subset",
    "metric",
    "value_on",
    "value_off",
    "difference",
    "ci_low",
    "ci_high",
    "n_prompts",
    "significant",
]
SCHEMA = {
    name: pl.Int64
    if name in ("depth", "n_prompts")
    else pl.Float64
    if name in ("value_on", "value_off", "difference", "ci_low", "ci_high")
    else pl.Boolean
    if name == "significant"
    else pl.String
    for name in COLUMNS
}


def _significant(low: float, high: float) -> bool | None:
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    return bool(low > 0 or high < 0)


def _row(
    lineage: Lineage, model: str, task: str, kind: str, scope: str, subset: str, metric: str
) -> dict[str, object]:
    return {
        "model": model,
        **lineage_columns(lineage, model),
        "task": task,
        "kind": kind,
        "scope": scope,
        "subset": subset,
        "metric": metric,
    }


def cot_table(
    diversity: pl.DataFrame | DiversityData,
    lineage: Lineage,
    quality: pl.DataFrame | None = None,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> pl.DataFrame:
    """Paired CoT on − off differences of diversity and (with ``quality``) accuracy.

    ``quality`` is the quality contract (one row per sample) or its per-prompt table
    (:func:`divtrace.analysis.quality.quality_per_prompt`).
    """
    data = diversity_data(diversity, lineage)
    rows: list[dict[str, object]] = []
    reasoning = sorted(m for m, c in data.has_cot if c == "off" and (m, "on") in data.has_cot)
    for model in reasoning:
        on, off = (model, "on"), (model, "off")
        tasks = sorted(
            {t for (m, t, c, _s) in data.groups("per_input") if m == model}
            | {t for (m, t, c, _s) in data.groups("across_input") if m == model}
        )
        for task in tasks:
            for subset in SUBSETS:
                metrics = [
                    x
                    for x in data.metrics(model, task, "on", "per_input", subset)
                    if x in data.metrics(model, task, "off", "per_input", subset)
                ]
                if metrics:
                    _ids, (a, b) = data.aligned([on, off], task, subset, metrics)
                    rows.extend(
                        _paired_rows(
                            lineage,
                            model,
                            task,
                            "diversity",
                            "per_input",
                            subset,
                            metrics,
                            a,
                            b,
                            n_boot,
                            seed,
                            level,
                        )
                    )
                for metric in data.metrics(model, task, "on", "across_input", subset):
                    value_on, n_on = data.across_value(on, task, subset, metric)
                    value_off, n_off = data.across_value(off, task, subset, metric)
                    if (model, task, "off", "across_input", subset, metric) not in data.keys:
                        continue
                    rows.append(
                        {
                            **_row(
                                lineage, model, task, "diversity", "across_input", subset, metric
                            ),
                            "value_on": value_on,
                            "value_off": value_off,
                            "difference": value_on - value_off,
                            "ci_low": np.nan,
                            "ci_high": np.nan,
                            "n_prompts": min(n_on, n_off),
                            "significant": None,
                        }
                    )
    if quality is not None and len(quality):
        prompts = quality_per_prompt(quality, lineage)
        metrics = list(QUALITY_METRICS)
        values = prompts.select("model", "task", "cot", "prompt_id", *metrics).with_columns(
            pl.col(metrics).cast(pl.Float64)
        )
        on_runs = values.filter(pl.col("cot") == "on").drop("cot")
        off_runs = values.filter(pl.col("cot") == "off").drop("cot")
        # Per (model, task) with both runs: the prompts both have, sorted by prompt id.
        both = sorted(
            set(on_runs.select("model", "task").unique().iter_rows())
            & set(off_runs.select("model", "task").unique().iter_rows())
        )
        paired = on_runs.join(
            off_runs, on=["model", "task", "prompt_id"], how="inner", suffix="_off"
        ).sort("model", "task", "prompt_id")
        groups = paired.partition_by(["model", "task"], as_dict=True, maintain_order=True)
        for q_model, q_task in both:
            group = groups.get((q_model, q_task), paired.clear())
            rows.extend(
                _paired_rows(
                    lineage,
                    str(q_model),
                    str(q_task),
                    "quality",
                    "per_input",
                    "all",
                    metrics,
                    group.select(metrics).to_numpy(),
                    group.select(f"{m}_off" for m in metrics).to_numpy(),
                    n_boot,
                    seed,
                    level,
                )
            )
    order = ["task", "kind", "scope", "subset", "metric"]
    table = finish(rows, COLUMNS, lineage, order, schema=SCHEMA)
    return missing_as_null(table.with_columns(pl.col("n_prompts").fill_null(0)))


def _paired_rows(
    lineage: Lineage,
    model: str,
    task: str,
    kind: str,
    scope: str,
    subset: str,
    metrics: list[str],
    on: np.ndarray,
    off: np.ndarray,
    n_boot: int,
    seed: int,
    level: float,
) -> list[dict[str, object]]:
    key = ("cot", model, task, kind, subset)
    result = paired_bootstrap(on, off, statistic="difference", n_boot=n_boot, seed=seed, key=key)
    low, high = result.interval(level)
    both = np.isfinite(on) & np.isfinite(off)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_on = np.where(both, on, 0.0).sum(axis=0) / both.sum(axis=0)
        mean_off = np.where(both, off, 0.0).sum(axis=0) / both.sum(axis=0)
    rows = []
    for j, metric in enumerate(metrics):
        rows.append(
            {
                **_row(lineage, model, task, kind, scope, subset, metric),
                "value_on": float(mean_on[j]),
                "value_off": float(mean_off[j]),
                "difference": float(result.estimate[j]),
                "ci_low": float(low[j]),
                "ci_high": float(high[j]),
                "n_prompts": int(result.n[j]),
                "significant": _significant(float(low[j]), float(high[j])),
            }
        )
    return rows
