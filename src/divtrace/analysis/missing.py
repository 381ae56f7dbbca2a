"""Cells that must not vanish: every expected run in the tables, and the ``missing`` table.

A run (model, task, CoT mode) of the study whose samples are all unusable used to leave no row:
a shard with no rows gives a diversity file with none, and a run whose every prompt was too long
for the context gives an empty quality file, so the summary and quality tables silently lacked
the cell. Given the study's runs (``runs``: (model, task, cot, verifiable)),
:func:`complete_diversity` and :func:`complete_quality` add a row with a null value for every
expected cell that has none (``n_prompts`` 0, ``n_missing`` the run's prompts; the retention
table likewise, ``n_prompts_base``/``n_prompts_parent`` 0, and an expected checkpoint with no rows
at all also gets the retention table's all-tasks rows, every task named missing;
:func:`complete_cot` does the same for the CoT table's comparisons), and
:func:`missing_table` lists every cell of the diversity and quality tables whose value is null,
with its reason and the counts behind it.

Columns of ``missing``: ``model, lineage, stage, parent, depth, task, cot, table`` (diversity |
quality), ``scope, subset, metric`` (the diversity cell; ``accuracy_at_1`` and null scope and
subset for quality), ``reason``, ``n_prompts`` (prompts of the run in its shards),
``n_prompt_too_long`` (of them, prompts whose every sample was too long for the context) and
``n_missing`` (prompts without a value in the cell). ``reason`` is the first that applies:
``no samples`` (the run's shards hold no rows), ``prompt too long`` (every prompt),
``fewer than two correct outputs`` (subset ``correct``), ``no judged samples`` (quality),
``fewer than two usable outputs`` (diversity: unclosed traces, prompts too long, blank answers),
``no scored pair`` (NLI: no pair of outputs with a sentence each); for the judge table (``table``
judge, ``metric`` its measure, null scope and subset): ``no judgements`` (no row for the cell) or
``no parsed verdict`` (every answer of the judge failed to parse), after ``no samples`` and
``prompt too long``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from divtrace.analysis.common import finish, row_head
from divtrace.generation.backend import PROMPT_TOO_LONG
from divtrace.lineage import Lineage
from divtrace.names import ALL_TASKS, LINEAGE_COLUMNS, SCOPES, metric_applies

#: One expected run: model, task, CoT mode, and whether the task is verifiable (scored).
Run = tuple[str, str, str, bool]
RUN = ["model", "task", "cot"]
COLUMNS = [
    *LINEAGE_COLUMNS,
    "task",
    "cot",
    "table",
    "scope",
    "subset",
    "metric",
    "reason",
    "n_prompts",
    "n_prompt_too_long",
    "n_missing",
]
_COUNTS = ("depth", "n_prompts", "n_prompt_too_long", "n_missing")
SCHEMA = {name: pl.Int64 if name in _COUNTS else pl.String for name in COLUMNS}


def run_counts(generations: pl.DataFrame | None) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(model, task, cot) → (prompts in the shards, prompts whose every sample was too long)."""
    if generations is None or generations.is_empty():
        return {}
    too_long = pl.col("finish_reason").eq_missing(PROMPT_TOO_LONG)
    per_prompt = generations.group_by([*RUN, "prompt_id"]).agg(too_long.all().alias("_long"))
    counts = per_prompt.group_by(RUN).agg(pl.len().alias("_n"), pl.col("_long").sum())
    return {
        (str(m), str(t), str(c)): (int(n), int(long))
        for m, t, c, n, long in counts.select(*RUN, "_n", "_long").iter_rows()
    }


def _present(table: pl.DataFrame, keys: Sequence[str]) -> set[tuple[object, ...]]:
    if table.is_empty():
        return set()
    return set(table.select(keys).iter_rows())


def complete_diversity(
    table: pl.DataFrame,
    runs: Sequence[Run],
    lineage: Lineage,
    counts: dict[tuple[str, str, str], tuple[int, int]],
    metrics: Sequence[str],
    order: Sequence[str],
    retention: bool = False,
    families: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """The diversity summary (or, ``retention``, the retention table) with a null row for every
    expected cell it lacks (each scope, subset ``all`` and, for a verifiable task, ``correct``,
    each metric that applies to the task's family: ``families`` maps a task to its family, a task
    not in it is the family of its name; a code metric expects no cell of another task)."""
    keys = ["model", "task", "cot", "scope", "subset", "metric"]
    present = _present(table, keys)
    rows: list[dict[str, object]] = []
    for model, task, cot, verifiable in runs:
        if model not in lineage.checkpoints:
            continue
        n_prompts = counts.get((model, task, cot), (0, 0))[0]
        for scope in SCOPES:
            for subset in ("all", "correct") if verifiable else ("all",):
                for metric in metrics:
                    if (model, task, cot, scope, subset, metric) in present:
                        continue
                    if not metric_applies(metric, (families or {}).get(task, task), scope):
                        continue
                    rows.append(
                        {
                            **row_head(
                                lineage,
                                model,
                                task,
                                cot=cot,
                                scope=scope,
                                subset=subset,
                                metric=metric,
                            ),
                            **(
                                {"n_prompts_base": 0, "n_prompts_parent": 0}
                                if retention
                                else {"n_prompts": 0, "n_missing": n_prompts, "n_outputs": 0}
                            ),
                        }
                    )
    if retention:
        rows.extend(_all_task_rows(table, runs, lineage))
    if not rows:
        return table
    added = finish(rows, table.columns, lineage, order, schema=table.schema)
    return finish(pl.concat([table, added]), table.columns, lineage, order, schema=table.schema)


def _all_task_rows(
    table: pl.DataFrame, runs: Sequence[Run], lineage: Lineage
) -> list[dict[str, object]]:
    """The retention table's all-tasks rows that an expected checkpoint lacks (it has no rows
    at all, so :func:`~divtrace.analysis.retention.retention_table` never saw it): null ratios,
    every task of the row's scope, subset and metric named as missing where the reference
    exists (the root has no parent)."""
    if table.is_empty():
        return []
    is_all = pl.col("task") == ALL_TASKS
    combos = set(table.filter(is_all).select("scope", "subset", "metric").iter_rows())
    if not combos:
        return []
    present = _present(table.filter(is_all), ["model", "cot", "scope", "subset", "metric"])
    tasks: dict[tuple[object, ...], str] = {
        combo: ", ".join(sorted(group.get_column("task").unique().to_list()))
        for combo, group in table.filter(~is_all).group_by(
            ["scope", "subset", "metric"], maintain_order=True
        )
    }
    rows: list[dict[str, object]] = []
    for model, cot in sorted({(m, c) for m, _t, c, _v in runs if m in lineage.checkpoints}):
        references = {"base": True, "parent": lineage.checkpoints[model].parent is not None}
        for scope, subset, metric in sorted(combos):
            if (model, cot, scope, subset, metric) in present:
                continue
            row = row_head(
                lineage, model, ALL_TASKS, cot=cot, scope=scope, subset=subset, metric=metric
            )
            for ref, exists in references.items():
                row[f"n_prompts_{ref}"] = 0
                if exists:
                    row[f"missing_tasks_{ref}"] = tasks.get((scope, subset, metric))
            rows.append(row)
    return rows


def complete_quality(
    table: pl.DataFrame, runs: Sequence[Run], lineage: Lineage, order: Sequence[str]
) -> pl.DataFrame:
    """The quality table with a null row for every expected (verifiable) run it lacks."""
    present = _present(table, RUN)
    rows = [
        row_head(lineage, m, t, cot=c, n_prompts=0)
        for m, t, c, verifiable in runs
        if verifiable and m in lineage.checkpoints and (m, t, c) not in present
    ]
    if not rows:
        return table
    rows = [{**row, "n_samples": 0} for row in rows]
    added = finish(rows, table.columns, lineage, order, schema=table.schema)
    return finish(pl.concat([table, added]), table.columns, lineage, order, schema=table.schema)


def complete_cot(
    table: pl.DataFrame,
    runs: Sequence[Run],
    lineage: Lineage,
    metrics: Sequence[str],
    quality_metrics: Sequence[str],
) -> pl.DataFrame:
    """The CoT table with a null row (``n_prompts`` 0) for every comparison it lacks: each
    checkpoint and task with an expected run in both CoT modes gets its diversity rows (each
    scope, subset ``all`` and, for a verifiable task, ``correct``, each metric) and, for a
    verifiable task, its quality rows (``quality_metrics``), whichever side has no values."""
    modes: dict[tuple[str, str], set[str]] = {}
    verifiable: dict[tuple[str, str], bool] = {}
    for model, task, cot, scored in runs:
        if model in lineage.checkpoints:
            modes.setdefault((model, task), set()).add(cot)
            verifiable[(model, task)] = scored
    present = _present(table, ["model", "task", "kind", "scope", "subset", "metric"])
    rows: list[dict[str, object]] = []
    for (model, task), cots in sorted(modes.items()):
        if not {"on", "off"} <= cots:
            continue
        subsets = ("all", "correct") if verifiable[(model, task)] else ("all",)
        cells = [
            ("diversity", scope, subset, metric)
            for scope in SCOPES
            for subset in subsets
            for metric in metrics
        ]
        if verifiable[(model, task)]:
            cells += [("quality", "per_input", "all", metric) for metric in quality_metrics]
        for kind, scope, subset, metric in cells:
            if (model, task, kind, scope, subset, metric) in present:
                continue
            rows.append(
                row_head(
                    lineage,
                    model,
                    task,
                    kind=kind,
                    scope=scope,
                    subset=subset,
                    metric=metric,
                    n_prompts=0,
                )
            )
    if not rows:
        return table
    order = ["task", "kind", "scope", "subset", "metric"]
    added = finish(rows, table.columns, lineage, order, schema=table.schema)
    return finish(pl.concat([table, added]), table.columns, lineage, order, schema=table.schema)


def _reason(
    table: str, subset: str | None, metric: str, n_prompts: int, n_long: int, judged: int = 0
) -> str:
    if n_prompts == 0:
        return "no samples"
    if n_long == n_prompts:
        return "prompt too long"
    if subset == "correct":
        return "fewer than two correct outputs"
    if table == "quality":
        return "no judged samples"
    if table == "judge":
        return "no judgements" if judged == 0 else "no parsed verdict"
    return "no scored pair" if metric == "nli" else "fewer than two usable outputs"


def missing_table(
    diversity: pl.DataFrame,
    quality: pl.DataFrame | None,
    lineage: Lineage,
    counts: dict[tuple[str, str, str], tuple[int, int]],
    judge: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every cell of the diversity summary, the quality table and the judge table whose value
    is null."""
    rows: list[dict[str, object]] = []
    cells = [
        ("diversity", row)
        for row in diversity.filter(pl.col("value").is_null()).iter_rows(named=True)
    ]
    if quality is not None and not quality.is_empty():
        cells += [
            ("quality", {**row, "scope": None, "subset": None, "metric": "accuracy_at_1"})
            for row in quality.filter(pl.col("accuracy_at_1").is_null()).iter_rows(named=True)
        ]
    if judge is not None and not judge.is_empty():
        cells += [
            ("judge", {**row, "scope": None, "subset": None, "metric": row["measure"]})
            for row in judge.filter(pl.col("value").is_null()).iter_rows(named=True)
        ]
    for name, row in cells:
        run = (str(row["model"]), str(row["task"]), str(row["cot"]))
        n_prompts, n_long = counts.get(run, (0, 0))
        if name == "diversity":
            n_missing = int(row["n_missing"] or 0)
        else:  # the run's prompts without a judged sample (or a parsed judge verdict)
            n_missing = n_prompts - int(row["n_prompts"] or 0)
        judged = int(row.get("n_judged") or 0)
        rows.append(
            {
                **row_head(lineage, run[0], run[1], cot=run[2]),
                "table": name,
                "scope": row["scope"],
                "subset": row["subset"],
                "metric": row["metric"],
                "reason": _reason(
                    name, row["subset"], str(row["metric"]), n_prompts, n_long, judged
                ),
                "n_prompts": n_prompts,
                "n_prompt_too_long": n_long,
                "n_missing": n_missing,
            }
        )
    return finish(
        rows,
        COLUMNS,
        lineage,
        ["task", "cot", "table", "scope", "subset", "metric"],
        schema=SCHEMA,
    )
