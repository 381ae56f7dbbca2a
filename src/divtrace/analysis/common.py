"""What every analysis table shares: input validation, lineage labels, orderings, per-prompt data.

* :func:`validate_diversity` checks a diversity frame (the contract of :mod:`divtrace.io`, many
  checkpoints) and returns it typed;
* :func:`lineage_label`, :func:`lineage_rank`, :func:`lineage_columns` give a checkpoint's place
  in the lineage tree as the tables show it;
* :func:`finish` turns a table's rows into a polars frame in the conventional order (lineage,
  depth, model, then CoT on before off, per_input before across_input, EAD/SBERT/NLI/Vendi, …,
  as :mod:`divtrace.names` spells them);
* :class:`DiversityData` holds the per-prompt values of every run as numpy arrays, the shape the
  bootstrap (:mod:`divtrace.analysis.bootstrap`) works on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import polars.selectors as cs

from divtrace import io
from divtrace.errors import AnalysisError, ContractError
from divtrace.lineage import Lineage
from divtrace.names import (
    ALL_TASKS,
    BASE_LABEL,
    COT_MODES,
    METRICS,
    REFERENCES,
    SCOPES,
    SUBSETS,
)

Arm = tuple[str, str]  # (model, cot)

#: The diversity contract's columns (what every diversity table reads).
DIVERSITY_COLUMNS = tuple(io.DIVERSITY.names)
#: Values a diversity frame may hold in its categorical columns.
ALLOWED: dict[str, tuple[str, ...]] = {"cot": COT_MODES, "scope": SCOPES, "subset": SUBSETS}
#: A row of a per-run table: the run and what is measured.
KEY = ("model", "task", "cot", "scope", "subset", "metric")

# The conventional order of each categorical column (anything else sorts after, by name).
CONVENTIONS: dict[str, tuple[str, ...]] = {
    "cot": COT_MODES,
    "scope": SCOPES,
    "subset": SUBSETS,
    "metric": METRICS,
    "reference": REFERENCES,
}


# --------------------------------------------------------------------------- validation
def whole_sets(diversity: pl.DataFrame) -> pl.DataFrame:
    """The rows of whole sets: without the rows at a fixed set size (``k`` not null, written by
    ``divtrace diversity --k-grid``) and their ``k`` and ``se`` columns."""
    if "k" not in diversity.columns:
        return diversity
    kept = diversity.filter(pl.col("k").is_null())
    return kept.drop([c for c in ("k", "se") if c in kept.columns])


def validate_diversity(diversity: pl.DataFrame, lineage: Lineage) -> pl.DataFrame:
    """``diversity`` checked and typed: key columns as strings, ``value`` float, counts integers.

    Raises :class:`ContractError` naming the column for a missing column or bad values and
    showing one duplicated row, and :class:`AnalysisError` naming the model for a model that is not
    in ``lineage`` (both ValueErrors).
    """
    missing = [name for name in DIVERSITY_COLUMNS if name not in diversity.columns]
    if missing:
        raise ContractError(f"diversity table lacks column(s) {missing}")
    diversity = whole_sets(diversity)
    for column in KEY:
        nulls = diversity.get_column(column).null_count()
        if nulls:
            raise ContractError(f"diversity column {column!r} has {nulls} null value(s)")
    numeric = ["value", "n_outputs", *(["n_dropped"] if "n_dropped" in diversity.columns else [])]
    try:
        frame = diversity.with_columns(
            *(pl.col(c).cast(pl.String) for c in [*KEY, "prompt_id"]),
            pl.col("value").cast(pl.Float64),
            *(pl.col(c).cast(pl.Int64) for c in numeric if c != "value"),
        )
    except pl.exceptions.PolarsError as err:
        raise ContractError(f"diversity columns {numeric} must be numeric: {err}") from err
    models = set(frame.get_column("model").unique().to_list())
    unknown = sorted(models - set(lineage.checkpoints))
    if unknown:
        raise AnalysisError(
            f"diversity column 'model' names model(s) {unknown} that are not in the lineage "
            f"(known: {sorted(lineage.checkpoints)})"
        )
    for column, allowed in ALLOWED.items():
        bad = sorted(set(frame.get_column(column).unique().to_list()) - set(allowed))
        if bad:
            raise ContractError(
                f"diversity column {column!r} has value(s) {bad}; allowed: {list(allowed)}"
            )
    per_input = frame.filter(pl.col("scope") == "per_input")
    no_prompt = per_input.get_column("prompt_id").null_count()
    if no_prompt:
        raise ContractError(f"diversity column 'prompt_id' is null in {no_prompt} per_input row(s)")
    for rows, key, what in (
        (per_input, [*KEY, "prompt_id"], "duplicate per_input rows"),
        (frame.filter(pl.col("scope") != "per_input"), list(KEY), "more than one across_input row"),
    ):
        repeated = rows.filter(pl.struct(key).is_duplicated())
        if len(repeated):
            row = repeated.row(0, named=True)
            raise ContractError(
                f"diversity table has {what}, e.g. " + ", ".join(f"{c}={row[c]!r}" for c in key)
            )
    return frame


def check_models(frame: pl.DataFrame, lineage: Lineage, what: str) -> None:
    """Raise :class:`AnalysisError` if ``frame['model']`` names a model that is not in the
    lineage."""
    unknown = sorted(
        set(frame.get_column("model").cast(pl.String).unique()) - set(lineage.checkpoints)
    )
    if unknown:
        raise AnalysisError(
            f"{what} column 'model' names model(s) {unknown} that are not in the lineage "
            f"(known: {sorted(lineage.checkpoints)})"
        )


# --------------------------------------------------------------------------- lineage labels
def lineage_label(lineage: Lineage, model: str) -> str:
    """The ``lineage`` column of a checkpoint: ``base`` for the root, else its own or an
    ancestor's label, else the label :meth:`Lineage.lineages` gives the path through it (the
    name of a leaf below it), so the labels match the lines of the trajectory figures."""
    if model == lineage.root:
        return BASE_LABEL
    label = lineage.lineage_of(model)
    if label is not None:
        return label
    for path_label, path in lineage.lineages().items():
        if model in path:
            return path_label
    return model


def lineage_rank(lineage: Lineage) -> dict[str, int]:
    """Sort rank of each lineage label: ``base`` first, then :meth:`Lineage.lineages` order."""
    ranks = {BASE_LABEL: 0}
    for label in lineage.lineages():
        ranks.setdefault(label, len(ranks))
    return ranks


def lineage_columns(lineage: Lineage, model: str) -> dict[str, object]:
    """The ``lineage``, ``stage``, ``parent`` and ``depth`` columns for one checkpoint."""
    checkpoint = lineage.checkpoints[model]
    return {
        "lineage": lineage_label(lineage, model),
        "stage": checkpoint.stage,
        "parent": checkpoint.parent,
        "depth": lineage.depth(model),
    }


def row_head(lineage: Lineage, model: str, task: str, **cells: object) -> dict[str, object]:
    """The leading cells of a table row: ``model``, its lineage columns, ``task``, then
    ``cells`` in the order given."""
    return {"model": model, **lineage_columns(lineage, model), "task": task, **cells}


def with_lineage_columns(frame: pl.DataFrame, lineage: Lineage) -> pl.DataFrame:
    """``frame`` (with a ``model`` column) plus the lineage columns, joined per checkpoint."""
    models = sorted(lineage.checkpoints)
    labels = pl.DataFrame(
        [{"model": m, **lineage_columns(lineage, m)} for m in models],
        schema={
            "model": pl.String,
            "lineage": pl.String,
            "stage": pl.String,
            "parent": pl.String,
            "depth": pl.Int64,
        },
    )
    return frame.join(labels, on="model", how="left", maintain_order="left")


# --------------------------------------------------------------------------- ordering
def order_metrics(metrics: Iterable[str]) -> list[str]:
    """Metrics in the conventional order (:data:`divtrace.names.METRICS`), others after by name."""
    present = set(metrics)
    known = [m for m in METRICS if m in present]
    return known + sorted(present - set(METRICS))


def model_cot_label(model: str, cot: str) -> str:
    """How figures name a run: the checkpoint, with " (CoT off)" for CoT-off runs."""
    return model if cot == "on" else f"{model} (CoT off)"


def missing_as_null(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with NaN in its float columns as null: a table holds a missing value as null,
    in memory as in its Parquet file (:func:`divtrace.io.write_frame`)."""
    return frame.with_columns(cs.float().fill_nan(None))


def diversity_data(diversity: pl.DataFrame | DiversityData, lineage: Lineage) -> DiversityData:
    """``diversity`` validated (:func:`validate_diversity`) as :class:`DiversityData`; an existing
    :class:`DiversityData` as it is (so that several tables can share one)."""
    if isinstance(diversity, DiversityData):
        check_models(diversity.frame, lineage, "diversity")
        return diversity
    return DiversityData(validate_diversity(diversity, lineage))


def empty_table(columns: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame(schema={name: pl.Null for name in columns})


def finish(
    rows: list[dict[str, object]] | pl.DataFrame,
    columns: Sequence[str],
    lineage: Lineage,
    order: Sequence[str],
    model_column: str = "model",
    schema: Mapping[str, Any] | None = None,
) -> pl.DataFrame:
    """Rows → table with ``columns``, sorted by lineage, depth, model, then ``order`` columns.

    Known categorical values sort in their conventional order (:data:`CONVENTIONS`; the
    all-tasks row after the tasks); anything else alphabetically. ``schema`` casts the named
    columns (e.g. counts to Int64) after missing columns are added as nulls.
    """
    if isinstance(rows, pl.DataFrame):
        table = rows
    elif rows:
        table = pl.from_dicts(rows, infer_schema_length=None, strict=False)
    else:
        table = pl.DataFrame()
    if table.is_empty() and not table.columns:
        table = empty_table(columns)
    table = table.with_columns(
        pl.lit(None).alias(name) for name in columns if name not in table.columns
    )
    if schema:
        table = table.with_columns(pl.col(name).cast(dtype) for name, dtype in schema.items())
    if table.is_empty():
        return table.select(columns)
    ranks = lineage_rank(lineage)
    keys: list[pl.Expr] = []
    if "lineage" in table.columns:
        keys += [_rank(pl.col("lineage"), ranks, len(ranks)), pl.col("lineage")]
    if model_column in table.columns:
        depths = {m: lineage.depth(m) for m in lineage.checkpoints}
        keys += [_rank(pl.col(model_column), depths, -1), pl.col(model_column)]
    for name in order:
        if name == "task":
            keys.append((pl.col(name) == ALL_TASKS).cast(pl.Int64))
        elif name in CONVENTIONS:
            values = CONVENTIONS[name]
            keys.append(_rank(pl.col(name), {v: i for i, v in enumerate(values)}, len(values)))
        keys.append(pl.col(name))
    return table.sort(keys, maintain_order=True, nulls_last=True).select(columns)


def _rank(column: pl.Expr, ranks: Mapping[str, int], default: int) -> pl.Expr:
    return (
        column.cast(pl.String)
        .replace_strict(dict(ranks), default=default, return_dtype=pl.Int64)
        .fill_null(default)
    )


# --------------------------------------------------------------------------- per-prompt data
@dataclass(frozen=True)
class Block:
    """The per-prompt values of one run, task and subset: ``values[i, j]`` is prompt ``ids[i]``
    (sorted) and metric ``metrics[j]``; NaN where the prompt has no value of that metric."""

    ids: list[str]
    metrics: list[str]
    values: np.ndarray

    def column(self, metric: str) -> np.ndarray:
        return self.values[:, self.metrics.index(metric)]

    def mean(self, metric: str) -> float:
        """The mean over the prompts that have a value (NaN if none, or no such metric)."""
        if metric not in self.metrics:
            return float("nan")
        column = self.column(metric)
        finite = column[~np.isnan(column)]
        return float(finite.mean()) if finite.size else float("nan")

    def select(self, ids: Sequence[str], metrics: Sequence[str]) -> np.ndarray:
        """``(len(ids), len(metrics))`` values; NaN for a metric the block lacks."""
        position = {pid: i for i, pid in enumerate(self.ids)}
        rows = np.array([position[pid] for pid in ids], dtype=np.intp)
        out = np.full((len(ids), len(metrics)), np.nan)
        for j, metric in enumerate(metrics):
            if metric in self.metrics:
                out[:, j] = self.column(metric)[rows]
        return out


class DiversityData:
    """Lookups over a validated diversity frame (:func:`validate_diversity`, many checkpoints)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        distinct = frame.select(KEY).unique()
        self.keys: set[tuple[str, str, str, str, str, str]] = set(distinct.iter_rows())
        self.has_cot: set[Arm] = {(k[0], k[2]) for k in self.keys}
        self._metrics: dict[tuple[str, str, str, str, str], set[str]] = {}
        for m, t, c, sc, s, x in self.keys:
            self._metrics.setdefault((m, t, c, sc, s), set()).add(x)
        self.per_input: dict[tuple[str, str, str, str], Block] = {}
        per_input = frame.filter(pl.col("scope") == "per_input")
        if len(per_input):
            wide = per_input.pivot(
                on="metric",
                index=["model", "task", "cot", "subset", "prompt_id"],
                values="value",
                aggregate_function="first",
                sort_columns=True,
            ).sort(["model", "task", "cot", "subset", "prompt_id"])
            metrics = [
                c for c in wide.columns if c not in ("model", "task", "cot", "subset", "prompt_id")
            ]
            for key, group in wide.partition_by(
                ["model", "task", "cot", "subset"], as_dict=True, maintain_order=True
            ).items():
                have = [m for m in metrics if group.get_column(m).null_count() < len(group)]
                model, task, cot, subset = (str(k) for k in key)
                self.per_input[(model, task, cot, subset)] = Block(
                    ids=group.get_column("prompt_id").to_list(),
                    metrics=have,
                    values=group.select(have).cast(pl.Float64).to_numpy().reshape(len(group), -1),
                )
        across = frame.filter(pl.col("scope") == "across_input")
        self.across: dict[tuple[str, str, str, str, str], tuple[float, int]] = {
            (m, t, c, s, x): (float("nan") if v is None else float(v), int(n))
            for m, t, c, s, x, v, n in across.select(
                "model", "task", "cot", "subset", "metric", "value", "n_outputs"
            ).iter_rows()
        }

    # ------------------------------------------------------------------ structure
    def groups(self, scope: str) -> list[tuple[str, str, str, str]]:
        """Sorted ``(model, task, cot, subset)`` combinations that have rows of ``scope``."""
        return sorted({(m, t, c, s) for (m, t, c, sc, s, _x) in self.keys if sc == scope})

    def metrics(self, model: str, task: str, cot: str, scope: str, subset: str) -> list[str]:
        return order_metrics(self._metrics.get((model, task, cot, scope, subset), set()))

    def tasks(self, scope: str, subset: str, metric: str) -> list[str]:
        """Every task with rows of this scope, subset and metric (any model)."""
        return sorted(
            {t for (_m, t, _c, sc, s, x) in self.keys if (sc, s, x) == (scope, subset, metric)}
        )

    def cot_for(self, model: str, cot: str) -> str:
        """``cot`` if the model has rows with that CoT mode, otherwise ``"on"``."""
        return cot if (model, cot) in self.has_cot else "on"

    def reference(self, lineage: Lineage, model: str, cot: str, which: str) -> Arm | None:
        """The reference run of ``(model, cot)``: base = root with CoT on; parent = the parent
        with the same CoT mode if it has rows for it, otherwise with CoT on (as in the summary)."""
        if which == "base":
            return (lineage.root, "on")
        if which == "parent":
            parent = lineage.checkpoints[model].parent
            return None if parent is None else (parent, self.cot_for(parent, cot))
        raise ValueError(f"reference must be one of {REFERENCES}, got {which!r}")

    # ------------------------------------------------------------------ values
    def prompts(self, arm: Arm, task: str, subset: str) -> Block | None:
        return self.per_input.get((arm[0], task, arm[1], subset))

    def aligned(
        self, arms: Sequence[Arm], task: str, subset: str, metrics: Sequence[str]
    ) -> tuple[list[str], list[np.ndarray]]:
        """Per-prompt values of every arm on the prompts they all have, sorted by prompt id.

        Returns the prompt ids and one ``(n, len(metrics))`` array per arm (NaN where an arm has no
        value of a metric). Prompts that one arm lacks are left out; an arm with no rows at all
        leaves nothing.
        """
        blocks = [self.prompts(arm, task, subset) for arm in arms]
        if any(block is None for block in blocks):
            return [], [np.zeros((0, len(metrics))) for _ in arms]
        present = [block for block in blocks if block is not None]
        common = sorted(set.intersection(*(set(block.ids) for block in present)))
        return common, [block.select(common, metrics) for block in present]

    def across_value(self, arm: Arm, task: str, subset: str, metric: str) -> tuple[float, int]:
        return self.across.get((arm[0], task, arm[1], subset, metric), (np.nan, 0))
