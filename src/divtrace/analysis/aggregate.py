"""Summary of the diversity scores: one row per checkpoint, task, CoT mode, scope, subset and metric.

:func:`summarize_diversity` turns the per-prompt rows of the ``diversity`` contract (DESIGN §3) into
the table behind ``results/tables/diversity.parquet``. Each row carries the checkpoint's place in
the lineage tree and its ratios to the base model and to its parent stage.

Columns of the summary (in this order):

``model``
    checkpoint name (a key of ``config.models``).
``lineage``
    lineage label from :meth:`Lineage.lineage_of`. The root checkpoint belongs to every lineage and
    is labelled ``"base"`` (:data:`BASE_LABEL`). A non-root checkpoint with no label on itself or on
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
    NaN, since the set has one value per prompt set and nothing to resample (and with
    ``n_boot = 0``).
``n_prompts``
    ``per_input``: number of prompts averaged; ``across_input``: number of outputs in the set, one
    per prompt (DESIGN §5), i.e. the row's ``n_outputs``.
``n_outputs``
    total number of outputs scored (sum over prompts).
``n_dropped``
    only if the input has that column: total outputs dropped before scoring (unclosed think blocks).
``value_base``, ``ratio_to_base``
    the root checkpoint's value for the same task, scope, subset and metric with CoT ``on``, and
    ``value / value_base``.
``value_parent``, ``ratio_to_parent``
    the parent's value for the same task, scope, subset and metric: with the same CoT mode if the
    parent has rows for it, otherwise with CoT ``on`` (a reasoning model's CoT-off run is compared to
    a non-reasoning parent's normal run); and ``value / value_parent``. Null for the root.

Missing references and division by zero give NaN, never ``inf``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from divtrace import io
from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, bootstrap_mean
from divtrace.analysis.common import LINEAGE_COLUMNS
from divtrace.lineage import Lineage

BASE_LABEL = "base"

INPUT_COLUMNS = tuple(io.DIVERSITY.names)  # the diversity contract (DESIGN §3)
ALLOWED = {
    "cot": ("on", "off"),
    "scope": ("per_input", "across_input"),
    "subset": ("all", "correct"),
}
METRIC_ORDER = ("ead", "sbert", "nli", "vendi")

KEY = ["model", "task", "cot", "scope", "subset", "metric"]
REF_KEY = ["task", "scope", "subset", "metric"]


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
        "n_outputs",
        *(["n_dropped"] if with_dropped else []),
        "value_base",
        "ratio_to_base",
        "value_parent",
        "ratio_to_parent",
    ]


def lineage_label(lineage: Lineage, model: str) -> str:
    """The ``lineage`` column of the summary for one checkpoint (see the module docstring)."""
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


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    num = numerator.to_numpy(dtype=float)
    den = denominator.to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where((den != 0) & np.isfinite(den), num / den, np.nan)
    return pd.Series(out, index=numerator.index, dtype=float)


def _validate(diversity: pd.DataFrame, lineage: Lineage) -> pd.DataFrame:
    missing = [name for name in INPUT_COLUMNS if name not in diversity.columns]
    if missing:
        raise ValueError(f"diversity table lacks column(s) {missing}")
    frame = diversity.copy()
    for column in ("model", "task", "cot", "scope", "subset", "metric"):
        nulls = int(frame[column].isna().sum())
        if nulls:
            raise ValueError(f"diversity column {column!r} has {nulls} null value(s)")
        frame[column] = frame[column].astype(str)
    unknown_models = sorted(set(frame["model"]) - set(lineage.checkpoints))
    if unknown_models:
        raise ValueError(
            f"diversity column 'model' names model(s) {unknown_models} that are not in the lineage "
            f"(known: {sorted(lineage.checkpoints)})"
        )
    for column, allowed in ALLOWED.items():
        bad = sorted(set(frame[column]) - set(allowed))
        if bad:
            raise ValueError(
                f"diversity column {column!r} has value(s) {bad}; allowed: {list(allowed)}"
            )
    numeric = ["value", "n_outputs", *(["n_dropped"] if "n_dropped" in frame.columns else [])]
    for column in numeric:
        try:
            frame[column] = pd.to_numeric(frame[column], errors="raise")
        except (TypeError, ValueError) as err:
            raise ValueError(f"diversity column {column!r} is not numeric: {err}") from err
    per_input = frame["scope"] == "per_input"
    no_prompt = int((per_input & frame["prompt_id"].isna()).sum())
    if no_prompt:
        raise ValueError(f"diversity column 'prompt_id' is null in {no_prompt} per_input row(s)")
    duplicated = frame[per_input].duplicated([*KEY, "prompt_id"]) if per_input.any() else None
    if duplicated is not None and duplicated.any():
        row = frame[per_input][duplicated].iloc[0]
        raise ValueError(
            "diversity table has duplicate per_input rows, e.g. "
            + ", ".join(f"{c}={row[c]!r}" for c in [*KEY, "prompt_id"])
        )
    across = frame[~per_input]
    if len(across) and across.duplicated(KEY).any():
        row = across[across.duplicated(KEY)].iloc[0]
        raise ValueError(
            "diversity table has more than one across_input row for "
            + ", ".join(f"{c}={row[c]!r}" for c in KEY)
        )
    return frame


def _intervals(
    frame: pd.DataFrame, n_boot: int, seed: int, level: float
) -> dict[tuple[str, str, str, str, str], tuple[float, float]]:
    """Bootstrap interval of each per_input mean, keyed by (model, task, cot, subset, metric)."""
    from divtrace.analysis.common import DiversityData

    out: dict[tuple[str, str, str, str, str], tuple[float, float]] = {}
    if n_boot <= 0:
        return out
    data = DiversityData(frame)
    for (model, task, cot, subset), block in data.per_input.items():
        result = bootstrap_mean(
            block.to_numpy(dtype=float),
            n_boot=n_boot,
            seed=seed,
            key=("diversity", model, task, cot, subset),
        )
        low, high = result.interval(level)
        for j, metric in enumerate(block.columns):
            out[(model, task, cot, subset, str(metric))] = (float(low[j]), float(high[j]))
    return out


def summarize_diversity(
    diversity: pd.DataFrame,
    lineage: Lineage,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """Aggregate diversity rows of many checkpoints into the summary table (module docstring).

    ``n_boot``, ``seed`` and ``level`` set the bootstrap intervals (``n_boot = 0``: none, NaN).
    Raises :class:`ValueError` naming the column for a missing column or bad values, and naming the
    model for a model that is not in ``lineage``.
    """
    frame = _validate(diversity, lineage)
    with_dropped = "n_dropped" in frame.columns
    columns = summary_columns(with_dropped)
    if frame.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})

    frame["_counted"] = frame["value"].notna()
    aggregations: dict[str, tuple[str, str]] = {
        "value": ("value", "mean"),
        "n_prompts": ("_counted", "sum"),
        "n_outputs": ("n_outputs", "sum"),
    }
    if with_dropped:
        aggregations["n_dropped"] = ("n_dropped", "sum")
    table = frame.groupby(KEY, sort=False, dropna=False).agg(**aggregations).reset_index()
    across = table["scope"] == "across_input"
    table.loc[across, "n_prompts"] = table.loc[across, "n_outputs"]
    table["n_prompts"] = table["n_prompts"].astype("int64")
    table["n_outputs"] = table["n_outputs"].astype("int64")
    if with_dropped:
        table["n_dropped"] = table["n_dropped"].astype("int64")

    checkpoints = lineage.checkpoints
    table["lineage"] = [lineage_label(lineage, m) for m in table["model"]]
    table["stage"] = [checkpoints[m].stage for m in table["model"]]
    table["parent"] = pd.Series([checkpoints[m].parent for m in table["model"]], dtype=object)
    table["depth"] = np.array([lineage.depth(m) for m in table["model"]], dtype="int64")

    values = table[[*KEY, "value"]]
    base = values[(values["model"] == lineage.root) & (values["cot"] == "on")]
    base = base[[*REF_KEY, "value"]].rename(columns={"value": "value_base"})
    table = table.merge(base, on=REF_KEY, how="left")

    parent_values = values.rename(columns={"model": "parent", "value": "_parent_same"})
    table = table.merge(
        parent_values, on=["parent", "task", "cot", "scope", "subset", "metric"], how="left"
    )
    parent_on = values[values["cot"] == "on"].drop(columns="cot")
    parent_on = parent_on.rename(columns={"model": "parent", "value": "_parent_on"})
    table = table.merge(parent_on, on=["parent", *REF_KEY], how="left")
    # "Same CoT if the parent has it": decided per parent and CoT mode, not per value.
    has_cot = set(zip(values["model"], values["cot"], strict=True))
    same = np.array(
        [(p, c) in has_cot for p, c in zip(table["parent"], table["cot"], strict=True)], dtype=bool
    )
    table["value_parent"] = np.where(same, table["_parent_same"], table["_parent_on"]).astype(float)

    table["ratio_to_base"] = _ratio(table["value"], table["value_base"])
    table["ratio_to_parent"] = _ratio(table["value"], table["value_parent"])

    intervals = _intervals(frame, n_boot, seed, level)
    bounds = [
        intervals.get((m, t, c, s, x), (np.nan, np.nan))
        if scope == "per_input"
        else (np.nan, np.nan)
        for m, t, c, scope, s, x in zip(
            table["model"],
            table["task"],
            table["cot"],
            table["scope"],
            table["subset"],
            table["metric"],
            strict=True,
        )
    ]
    table["ci_low"] = np.array([b[0] for b in bounds], dtype=float)
    table["ci_high"] = np.array([b[1] for b in bounds], dtype=float)

    ranks = lineage_rank(lineage)
    table["_k_lineage"] = [ranks.get(label, len(ranks)) for label in table["lineage"]]
    table["_k_cot"] = table["cot"].map({v: i for i, v in enumerate(ALLOWED["cot"])})
    table["_k_scope"] = table["scope"].map({v: i for i, v in enumerate(ALLOWED["scope"])})
    table["_k_subset"] = table["subset"].map({v: i for i, v in enumerate(ALLOWED["subset"])})
    metric_rank = {v: i for i, v in enumerate(METRIC_ORDER)}
    table["_k_metric"] = [metric_rank.get(m, len(metric_rank)) for m in table["metric"]]
    table = table.sort_values(
        [
            "_k_lineage",
            "lineage",
            "depth",
            "model",
            "task",
            "_k_cot",
            "_k_scope",
            "_k_subset",
            "_k_metric",
            "metric",
        ],
        kind="mergesort",
    )
    return table[columns].reset_index(drop=True)


def write_summary(
    table: pd.DataFrame,
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
