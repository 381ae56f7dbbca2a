"""Diversity at fixed set sizes: the per-run means of the rows ``divtrace diversity --k-grid``
writes (:mod:`divtrace.metrics.fixed_k`).

One row per checkpoint, task, CoT mode, subset, metric and k (per input only): ``value`` the mean
over the prompts with a value at k (a prompt with fewer than k usable outputs has none: counted in
``n_missing``), ``ci_low``/``ci_high`` the percentile bootstrap interval of that mean over prompts
(one resample matrix shared by the metrics of a run, subset and k), ``n_prompts``, ``n_missing``,
and ``se``: the root mean square of the prompts' Monte Carlo standard errors divided by
``sqrt(n_prompts)``, the error the subset sampling adds to the mean (null where every prompt's
value is exact). The curves over k of :mod:`divtrace.figures.fixed_k` are drawn from it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, bootstrap_mean
from divtrace.analysis.common import check_models, finish, missing_as_null, with_lineage_columns
from divtrace.errors import ContractError
from divtrace.lineage import Lineage
from divtrace.names import LINEAGE_COLUMNS

COLUMNS = [
    *LINEAGE_COLUMNS,
    "task",
    "cot",
    "subset",
    "metric",
    "k",
    "value",
    "ci_low",
    "ci_high",
    "se",
    "n_prompts",
    "n_missing",
]
_INTS = ("depth", "k", "n_prompts", "n_missing")
_FLOATS = ("value", "ci_low", "ci_high", "se")
SCHEMA = {c: pl.Int64 if c in _INTS else pl.Float64 if c in _FLOATS else pl.String for c in COLUMNS}
RUN = ["model", "task", "cot", "subset", "k"]


def k_rows(diversity: pl.DataFrame) -> pl.DataFrame:
    """The per-input rows at a fixed set size of a diversity frame (empty without a ``k``)."""
    if "k" not in diversity.columns:
        return pl.DataFrame()
    rows = diversity.filter(pl.col("k").is_not_null() & (pl.col("scope") == "per_input"))
    if "se" not in rows.columns:
        rows = rows.with_columns(se=pl.lit(None, dtype=pl.Float64))
    try:
        return rows.with_columns(
            pl.col("k").cast(pl.Int64),
            pl.col("value").cast(pl.Float64).fill_nan(None),
            pl.col("se").cast(pl.Float64).fill_nan(None),
        )
    except pl.exceptions.PolarsError as err:
        raise ContractError(f"diversity columns k, value, se must be numeric: {err}") from err


def fixed_k_table(
    diversity: pl.DataFrame,
    lineage: Lineage,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> pl.DataFrame:
    """The table of the module docstring from a diversity frame (its rows with a ``k``)."""
    rows = k_rows(diversity)
    if rows.is_empty():
        return finish([], COLUMNS, lineage, [], schema=SCHEMA)
    check_models(rows, lineage, "diversity")
    out: list[dict[str, object]] = []
    for key, block in rows.sort("prompt_id").group_by(RUN, maintain_order=True):
        model, task, cot, subset, k = key
        metrics = sorted(set(block.get_column("metric").to_list()))
        wide = block.pivot(on="metric", index="prompt_id", values="value").sort("prompt_id")
        values = wide.select(metrics).to_numpy().astype(float)
        result = bootstrap_mean(
            values, n_boot=n_boot, seed=seed, key=("diversity_k", model, task, cot, subset, k)
        )
        low, high = result.interval(level) if n_boot > 0 else (None, None)
        for j, metric in enumerate(metrics):
            column = values[:, j]
            have = np.isfinite(column)
            errors = block.filter(pl.col("metric") == metric).get_column("se").drop_nulls()
            se = (
                float(np.sqrt((errors.to_numpy() ** 2).sum()) / have.sum())
                if errors.len() and have.any()
                else None
            )
            out.append(
                {
                    "model": model,
                    "task": task,
                    "cot": cot,
                    "subset": subset,
                    "metric": metric,
                    "k": k,
                    "value": float(column[have].mean()) if have.any() else None,
                    "ci_low": None if low is None else float(low[j]),
                    "ci_high": None if high is None else float(high[j]),
                    "se": se,
                    "n_prompts": int(have.sum()),
                    "n_missing": int((~have).sum()),
                }
            )
    table = with_lineage_columns(pl.DataFrame(out, infer_schema_length=None), lineage)
    order = ["task", "cot", "subset", "metric", "k"]
    return missing_as_null(finish(table, COLUMNS, lineage, order, schema=SCHEMA))
