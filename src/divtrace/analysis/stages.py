"""Stage attribution: the share of a lineage's total diversity loss that each stage accounts for.

For each lineage of :meth:`Lineage.lineages` (the path root → leaf that its ``parent`` links give),
each task, CoT mode, scope, subset and metric, with ``D(s)`` the diversity of checkpoint ``s``::

    loss(s)   = D(parent(s)) − D(s)            for every non-root stage s of the path
    total     = D(root) − D(final)             final: the deepest checkpoint of the path with data
    share(s)  = loss(s) / total

The losses of consecutive stages add up to the total, so the shares sum to 1. A loss can be
negative (a stage that *raises* diversity) and a share can then be negative or above 1; that is
kept, not clipped. When ``|total|`` is at most ``ZERO_TOTAL_RTOL × |D(root)|`` (no net loss) the
shares are null. A stage whose checkpoint (or whose parent) has no data has null loss and share.

``per_input`` rows compare the checkpoints of the path on the prompts that all of them have (a
finite value in every run), so the losses telescope exactly; ``value`` and ``value_parent`` are
means over those prompts and ``n_prompts`` counts them. The percentile interval of each share is a
bootstrap over those prompts with one resample shared by every stage of the path; in a resample
whose total is ≈ 0 the share is left out. ``across_input`` rows have one value per run and no
interval.

CoT: the ``on`` series uses every checkpoint's normal run. For a lineage with reasoning checkpoints
an ``off`` series uses their CoT-off runs and the normal run of checkpoints that have none (the
non-reasoning root), as the summary's ``ratio_to_parent`` does.

Rows with ``task`` = ``"all tasks (mean)"`` use the mean over tasks of each loss and of the total
(share = mean loss / mean total; a stratified bootstrap for the interval) for every task of that
scope, subset and metric. Where a task lacks a stage of the path (no finite value), the rows are
there with their values null (a mean over the other tasks would be another quantity) and
``missing_tasks`` names those tasks (comma-separated; null on every other row).

Columns: ``lineage, model, stage, parent, depth, final, task, cot, scope, subset, metric,
value_parent, value, loss, total_loss, share, share_ci_low, share_ci_high, n_prompts,
missing_tasks``.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl

from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, interval, paired_means
from divtrace.analysis.common import (
    DiversityData,
    diversity_data,
    finish,
    missing_as_null,
    order_metrics,
)
from divtrace.lineage import Lineage
from divtrace.names import ALL_TASKS, SCOPES, SUBSETS

ZERO_TOTAL_RTOL = 1e-6

COLUMNS = [
    "lineage",
    "model",
    "stage",
    "parent",
    "depth",
    "final",
    "task",
    "cot",
    "scope",
    "subset",
    "metric",
    "value_parent",
    "value",
    "loss",
    "total_loss",
    "share",
    "share_ci_low",
    "share_ci_high",
    "n_prompts",
    "missing_tasks",
]
SCHEMA = {
    name: pl.Int64
    if name in ("depth", "n_prompts")
    else pl.Float64
    if name in COLUMNS[COLUMNS.index("value_parent") : COLUMNS.index("n_prompts")]
    else pl.String
    for name in COLUMNS
}


def shares(losses: np.ndarray, total: np.ndarray, root_value: np.ndarray) -> np.ndarray:
    """``losses / total`` (broadcast over the last axis of ``losses``), NaN where total ≈ 0."""
    total = np.asarray(total, dtype=float)
    scale = np.maximum(np.abs(np.asarray(root_value, dtype=float)), np.finfo(float).tiny)
    flat = np.abs(total) <= ZERO_TOTAL_RTOL * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(losses, dtype=float) / total[..., None]
    return np.where(flat[..., None] | ~np.isfinite(out), np.nan, out)


# (lineage, cot, scope, subset, metric) -> task -> (values (k,), replicates (B, k) or empty, n)
_PerTask = dict[tuple[str, str, str, str, str], dict[str, tuple[np.ndarray, np.ndarray, int]]]


def stage_table(
    diversity: pl.DataFrame | DiversityData,
    lineage: Lineage,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    all_tasks: bool = True,
) -> pl.DataFrame:
    """Per lineage, the share of the total diversity loss of each stage (module docstring)."""
    data = diversity_data(diversity, lineage)
    rows: list[dict[str, object]] = []
    per_task: _PerTask = defaultdict(dict)
    tasks = sorted(
        {t for (_m, t, _c, _s) in data.groups("per_input")}
        | {t for (_m, t, _c, _s) in data.groups("across_input")}
    )
    for label, path in lineage.lineages().items():
        cots = ["on"] + (["off"] if any((m, "off") in data.has_cot for m in path[1:]) else [])
        for cot in cots:
            arms = [(m, data.cot_for(m, cot)) for m in path]
            for scope in SCOPES:
                for task in tasks:
                    for subset in SUBSETS:
                        series = _series(
                            data, lineage, label, arms, cot, scope, task, subset, n_boot, seed
                        )
                        for metric, (values, replicates, n) in series.items():
                            stop = len(values)
                            rows.extend(
                                _stage_rows(
                                    lineage,
                                    label,
                                    path[:stop],
                                    cot,
                                    task,
                                    scope,
                                    subset,
                                    metric,
                                    values,
                                    replicates,
                                    n,
                                    level,
                                )
                            )
                            per_task[(label, cot, scope, subset, metric)][task] = (
                                values,
                                replicates,
                                n,
                            )
    if all_tasks:
        rows.extend(_all_task_rows(data, lineage, per_task, level))
    order = ["cot", "task", "scope", "subset", "metric"]
    table = finish(rows, COLUMNS, lineage, order, schema=SCHEMA)
    return missing_as_null(table.with_columns(pl.col("n_prompts").fill_null(0)))


def _series(
    data: DiversityData,
    lineage: Lineage,
    label: str,
    arms: list[tuple[str, str]],
    cot: str,
    scope: str,
    task: str,
    subset: str,
    n_boot: int,
    seed: int,
) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """Per metric: the values of the path's runs (``(k,)``, NaN for a run without data; the path
    stops at the deepest run with data), their replicates ``(B, k)`` and the number of prompts."""
    present = [(m, c) for m, c in arms if data.metrics(m, task, c, scope, subset)]
    if len(present) < 2 or present[0][0] != lineage.root:
        return {}
    metrics = order_metrics(
        set.intersection(*(set(data.metrics(m, task, c, scope, subset)) for m, c in present))
    )
    if not metrics:
        return {}
    values, replicates, n = _values(data, present, task, scope, subset, metrics, n_boot, seed)
    path = [m for m, _c in arms]
    stop = path.index(present[-1][0]) + 1
    index = {m: i for i, (m, _c) in enumerate(present)}
    out: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    for j, metric in enumerate(metrics):
        full = np.array([values[index[m], j] if m in index else np.nan for m in path[:stop]])
        missing = np.full(len(replicates), np.nan)
        rep = (
            np.stack(
                [replicates[:, index[m], j] if m in index else missing for m in path[:stop]], axis=1
            )
            if len(replicates)
            else np.zeros((0, stop))
        )
        out[metric] = (full, rep, int(n[j]))
    return out


def _values(
    data: DiversityData,
    arms: list[tuple[str, str]],
    task: str,
    scope: str,
    subset: str,
    metrics: list[str],
    n_boot: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values ``(k, m)`` of the arms, replicates ``(B, k, m)`` (per_input only) and counts."""
    if scope == "per_input":
        _ids, arrays = data.aligned(arms, task, subset, metrics)
        key = ("stages", *(part for arm in arms for part in arm), task, subset)
        return paired_means(arrays, n_boot=n_boot, seed=seed, key=key)
    values = np.array(
        [[data.across_value(arm, task, subset, x)[0] for x in metrics] for arm in arms]
    )
    counts = np.array(
        [min(data.across_value(arm, task, subset, x)[1] for arm in arms) for x in metrics],
        dtype=np.int64,
    )
    return values, np.zeros((0, len(arms), len(metrics))), counts


def _stage_rows(
    lineage: Lineage,
    label: str,
    path: list[str],
    cot: str,
    task: str,
    scope: str,
    subset: str,
    metric: str,
    values: np.ndarray,
    replicates: np.ndarray,
    n: int,
    level: float,
) -> list[dict[str, object]]:
    """Rows for the stages of one path; ``values`` ``(k,)`` and ``replicates`` ``(B, k)``."""
    losses = values[:-1] - values[1:]
    total = np.asarray(values[0] - values[-1])
    share = shares(losses, total, np.asarray(values[0]))
    if len(replicates):
        rep_total = replicates[:, 0] - replicates[:, -1]
        rep_share = shares(replicates[:, :-1] - replicates[:, 1:], rep_total, replicates[:, 0])
        low, high = interval(rep_share, level)
    else:
        low = high = np.full(len(losses), np.nan)
    rows: list[dict[str, object]] = []
    for i, model in enumerate(path[1:]):
        checkpoint = lineage.checkpoints[model]
        rows.append(
            {
                "lineage": label,
                "model": model,
                "stage": checkpoint.stage,
                "parent": checkpoint.parent,
                "depth": lineage.depth(model),
                "final": path[-1],
                "task": task,
                "cot": cot,
                "scope": scope,
                "subset": subset,
                "metric": metric,
                "value_parent": float(values[i]),
                "value": float(values[i + 1]),
                "loss": float(losses[i]),
                "total_loss": float(total),
                "share": float(share[i]),
                "share_ci_low": float(low[i]),
                "share_ci_high": float(high[i]),
                "n_prompts": n,
            }
        )
    return rows


def _all_task_rows(
    data: DiversityData, lineage: Lineage, per_task: _PerTask, level: float
) -> list[dict[str, object]]:
    paths = lineage.lineages()
    rows: list[dict[str, object]] = []
    for (label, cot, scope, subset, metric), entries in sorted(per_task.items()):
        tasks = data.tasks(scope, subset, metric)
        path = paths[label]
        found = [entries.get(task) for task in tasks]
        if len(tasks) < 2:
            continue
        missing = [
            t
            for t, e in zip(tasks, found, strict=True)
            if e is None or len(e[0]) != len(path) or not np.isfinite(e[0]).all()
        ]
        if missing:
            # A mean over the other tasks would be another quantity: the rows stay, without
            # values, naming the tasks that lack a stage.
            blank = _stage_rows(
                lineage, label, path, cot, ALL_TASKS, scope, subset, metric,
                np.full(len(path), np.nan), np.zeros((0, len(path))), 0, level,
            )  # fmt: skip
            rows.extend({**row, "missing_tasks": ", ".join(missing)} for row in blank)
            continue
        complete = [e for e in found if e is not None]
        values = np.mean(np.stack([e[0] for e in complete]), axis=0)
        if scope == "per_input" and all(len(e[1]) for e in complete):
            replicates = np.mean(np.stack([e[1] for e in complete]), axis=0)
        else:
            replicates = np.zeros((0, len(path)))
        rows.extend(
            _stage_rows(
                lineage,
                label,
                path,
                cot,
                ALL_TASKS,
                scope,
                subset,
                metric,
                values,
                replicates,
                int(sum(e[2] for e in complete)),
                level,
            )
        )
    return rows
