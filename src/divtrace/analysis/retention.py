"""Retention: how much of the base model's (and the parent stage's) diversity a checkpoint keeps.

:func:`retention_table` gives one row per checkpoint, task, CoT mode, scope, subset and metric,
with ``D(model) / D(base)`` and ``D(model) / D(parent)`` and paired bootstrap intervals of both.

``per_input`` rows are paired: the two runs are compared on the prompts both have (with a finite
value of the metric; their number is ``n_prompts_base``/``n_prompts_parent``), and the ratio is
the ratio of the two means over exactly those prompts. The bootstrap resamples those prompts once
and recomputes both means on the same resample (:func:`divtrace.analysis.bootstrap.paired_means`).
``value`` is the checkpoint's mean over all of its own prompts (as in the summary table) and
``value_base``/``value_parent`` the reference's mean over the paired prompts. Where both runs have
the same prompts with a value the ratio is ``value / value_base``, as in the summary table; where
they do not (subset ``correct``, or a prompt left with fewer than two usable outputs in one run:
its value is null) only the paired ratio is reported.
``across_input`` rows have one value per run: the ratio has no interval (null).

References as in the summary table: the base is the root checkpoint with CoT on; the parent is the
parent checkpoint with the same CoT mode if it has rows for it, otherwise with CoT on. The root's
own rows have ratio 1 to the base (an interval of exactly [1, 1]) and no parent.

Rows with ``task`` = ``"all tasks (mean)"`` (:data:`divtrace.names.ALL_TASKS`) average the
per-task ratios of a checkpoint over every task that has rows of that scope, subset and metric
(for any model). Their interval is a stratified bootstrap: the mean over tasks of the per-task
replicates (the tasks are resampled independently). ``value``/``value_*`` there are means over
tasks, ``n_prompts_*`` sums. A checkpoint without a finite ratio for one of those tasks still has
the row, with the ratio null (a mean over the other tasks would be another quantity) and the
tasks that lack it named in ``missing_tasks_base``/``missing_tasks_parent`` (comma-separated;
null on every other row).

Columns: ``model, lineage, stage, parent, depth, task, cot, scope, subset, metric, value,
value_base, ratio_to_base, ratio_to_base_ci_low, ratio_to_base_ci_high, n_prompts_base,
value_parent, ratio_to_parent, ratio_to_parent_ci_low, ratio_to_parent_ci_high, n_prompts_parent,
missing_tasks_base, missing_tasks_parent``.
``n_prompts_*`` is the number of paired prompts (``per_input``) or of prompts in the model's set
(``across_input``).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl

from divtrace.analysis.bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_N_BOOT,
    interval,
    paired_means,
    safe_ratio,
)
from divtrace.analysis.common import (
    DiversityData,
    diversity_data,
    finish,
    missing_as_null,
    row_head,
)
from divtrace.lineage import Lineage
from divtrace.names import ALL_TASKS, LINEAGE_COLUMNS, REFERENCES, SCOPES

COLUMNS = [
    *LINEAGE_COLUMNS,
    "task",
    "cot",
    "scope",
    "subset",
    "metric",
    "value",
    "value_base",
    "ratio_to_base",
    "ratio_to_base_ci_low",
    "ratio_to_base_ci_high",
    "n_prompts_base",
    "value_parent",
    "ratio_to_parent",
    "ratio_to_parent_ci_low",
    "ratio_to_parent_ci_high",
    "n_prompts_parent",
    "missing_tasks_base",
    "missing_tasks_parent",
]
SCHEMA = {
    name: pl.Int64
    if name == "depth" or name.startswith("n_prompts")
    else pl.Float64
    if name.startswith(("value", "ratio"))
    else pl.String
    for name in COLUMNS
}

# (model, cot, scope, subset, metric, reference) -> task -> (value, ref value, ratio, replicates, n)
_PerTask = dict[
    tuple[str, str, str, str, str, str], dict[str, tuple[float, float, float, np.ndarray, int]]
]


def retention_table(
    diversity: pl.DataFrame | DiversityData,
    lineage: Lineage,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    all_tasks: bool = True,
) -> pl.DataFrame:
    """Ratios to the base model and to the parent stage with paired bootstrap intervals.

    ``diversity`` follows the docs/design.md §3 contract (many checkpoints); see the module docstring for
    the columns. Raises :class:`ValueError` like :func:`summarize_diversity` for bad input.
    """
    data = diversity_data(diversity, lineage)
    rows: list[dict[str, object]] = []
    per_task: _PerTask = defaultdict(dict)
    for scope in SCOPES:
        for model, task, cot, subset in data.groups(scope):
            metrics = data.metrics(model, task, cot, scope, subset)
            head = row_head(lineage, model, task, cot=cot)
            block = [
                {**head, "scope": scope, "subset": subset, "metric": metric} for metric in metrics
            ]
            for ref in REFERENCES:
                arm = data.reference(lineage, model, cot, ref)
                if arm is None:
                    for row in block:
                        row[f"n_prompts_{ref}"] = 0
                    continue
                if scope == "per_input":
                    _per_input(
                        data,
                        (model, cot),
                        arm,
                        task,
                        subset,
                        metrics,
                        ref,
                        block,
                        n_boot,
                        seed,
                        level,
                        per_task,
                    )
                else:
                    for row in block:
                        metric = str(row["metric"])
                        value, n = data.across_value((model, cot), task, subset, metric)
                        ref_value, _ = data.across_value(arm, task, subset, metric)
                        ratio = float(safe_ratio(value, ref_value))  # NaN → null at the end
                        row.update(
                            {
                                "value": value,
                                f"value_{ref}": ref_value,
                                f"ratio_to_{ref}": ratio,
                                f"ratio_to_{ref}_ci_low": np.nan,
                                f"ratio_to_{ref}_ci_high": np.nan,
                                f"n_prompts_{ref}": n,
                            }
                        )
                        per_task[(model, cot, scope, subset, metric, ref)][task] = (
                            value,
                            ref_value,
                            ratio,
                            np.zeros(0),
                            n,
                        )
            rows.extend(block)
    if all_tasks:
        rows.extend(_all_task_rows(data, lineage, per_task, level))
    order = ["task", "cot", "scope", "subset", "metric"]
    table = finish(rows, COLUMNS, lineage, order, schema=SCHEMA)
    return missing_as_null(
        table.with_columns(pl.col(f"n_prompts_{r}").fill_null(0) for r in REFERENCES)
    )


def _per_input(
    data: DiversityData,
    run: tuple[str, str],
    reference: tuple[str, str],
    task: str,
    subset: str,
    metrics: list[str],
    ref: str,
    block: list[dict[str, object]],
    n_boot: int,
    seed: int,
    level: float,
    per_task: _PerTask,
) -> None:
    _ids, arrays = data.aligned([run, reference], task, subset, metrics)
    estimate, samples, n = paired_means(
        arrays, n_boot=n_boot, seed=seed, key=("retention", *run, *reference, task, subset)
    )
    ratio = safe_ratio(estimate[0], estimate[1])
    replicates = safe_ratio(samples[:, 0, :], samples[:, 1, :])
    low, high = interval(replicates, level)
    own = data.prompts(run, task, subset)
    for j, row in enumerate(block):
        metric = str(row["metric"])
        value = own.mean(metric) if own is not None else np.nan
        row.update(
            {
                "value": value,
                f"value_{ref}": float(estimate[1, j]),
                f"ratio_to_{ref}": float(ratio[j]),
                f"ratio_to_{ref}_ci_low": float(low[j]),
                f"ratio_to_{ref}_ci_high": float(high[j]),
                f"n_prompts_{ref}": int(n[j]),
            }
        )
        per_task[(run[0], run[1], "per_input", subset, metric, ref)][task] = (
            value,
            float(estimate[1, j]),
            float(ratio[j]),
            replicates[:, j],
            int(n[j]),
        )


def _all_task_rows(
    data: DiversityData, lineage: Lineage, per_task: _PerTask, level: float
) -> list[dict[str, object]]:
    combos = sorted({(m, c, sc, s, x) for (m, c, sc, s, x, _r) in per_task})
    rows: list[dict[str, object]] = []
    for model, cot, scope, subset, metric in combos:
        tasks = data.tasks(scope, subset, metric)
        if len(tasks) < 2:
            continue
        row = row_head(
            lineage, model, ALL_TASKS, cot=cot, scope=scope, subset=subset, metric=metric
        )
        for ref in REFERENCES:
            entries = per_task.get((model, cot, scope, subset, metric, ref), {})
            if not entries:  # no such reference (the root's parent): nothing is missing
                row[f"n_prompts_{ref}"] = 0
                continue
            found = [entries.get(task) for task in tasks]
            missing = [
                t for t, e in zip(tasks, found, strict=True) if e is None or not np.isfinite(e[2])
            ]
            if missing:
                # The mean over the other tasks would be another quantity: no value, and the
                # tasks that lack one named.
                row[f"n_prompts_{ref}"] = 0
                row[f"missing_tasks_{ref}"] = ", ".join(missing)
                continue
            values = [e for e in found if e is not None]
            row["value"] = float(np.mean([e[0] for e in values]))
            row[f"value_{ref}"] = float(np.mean([e[1] for e in values]))
            row[f"ratio_to_{ref}"] = float(np.mean([e[2] for e in values]))
            row[f"n_prompts_{ref}"] = int(sum(e[4] for e in values))
            if scope == "per_input" and all(len(e[3]) for e in values):
                replicates = np.mean(np.stack([e[3] for e in values]), axis=0)
                low, high = interval(replicates[:, None], level)
                row[f"ratio_to_{ref}_ci_low"] = float(low[0])
                row[f"ratio_to_{ref}_ci_high"] = float(high[0])
        rows.append(row)
    return rows
