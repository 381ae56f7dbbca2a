"""Shared plumbing of the analysis tables: per-prompt lookups, references, lineage columns, order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from divtrace.lineage import Lineage

ALL_TASKS = "all tasks (mean)"
"""``task`` value of the rows that average over tasks (sorted after the tasks)."""

REFERENCES = ("base", "parent")
COT_ORDER = ("on", "off")
SCOPE_ORDER = ("per_input", "across_input")
SUBSET_ORDER = ("all", "correct")
METRIC_ORDER = ("ead", "sbert", "nli", "vendi")

Arm = tuple[str, str]  # (model, cot)

#: The leading columns of the per-checkpoint tables: the checkpoint and its place in the lineage.
LINEAGE_COLUMNS = ("model", "lineage", "stage", "parent", "depth")


def lineage_columns(lineage: Lineage, model: str) -> dict[str, object]:
    """The ``lineage``, ``stage``, ``parent`` and ``depth`` columns for one checkpoint."""
    from divtrace.analysis.aggregate import lineage_label

    checkpoint = lineage.checkpoints[model]
    return {
        "lineage": lineage_label(lineage, model),
        "stage": checkpoint.stage,
        "parent": checkpoint.parent,
        "depth": lineage.depth(model),
    }


def empty_table(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in columns})


def finish(
    rows: list[dict[str, object]],
    columns: Sequence[str],
    lineage: Lineage,
    order: Sequence[str],
    model_column: str = "model",
) -> pd.DataFrame:
    """Rows → table with ``columns``, sorted by lineage, depth, model, then ``order`` columns.

    Known categorical values sort in their conventional order (CoT on before off, per_input before
    across_input, all before correct, EAD/SBERT/NLI/Vendi, base before parent, the all-tasks row
    last); anything else alphabetically.
    """
    if not rows:
        return empty_table(columns)
    table = pd.DataFrame(rows)
    for name in columns:
        if name not in table.columns:
            table[name] = np.nan
    from divtrace.analysis.aggregate import lineage_rank

    ranks = lineage_rank(lineage)
    keys: list[str] = []
    if "lineage" in table.columns:
        table["_k_lineage"] = [ranks.get(str(v), len(ranks)) for v in table["lineage"]]
        keys += ["_k_lineage", "lineage"]
    if model_column in table.columns:
        table["_k_depth"] = [
            lineage.depth(m) if m in lineage.checkpoints else -1 for m in table[model_column]
        ]
        keys += ["_k_depth", model_column]
    conventions = {
        "task": {ALL_TASKS: 1},
        "cot": {v: i for i, v in enumerate(COT_ORDER)},
        "scope": {v: i for i, v in enumerate(SCOPE_ORDER)},
        "subset": {v: i for i, v in enumerate(SUBSET_ORDER)},
        "metric": {v: i for i, v in enumerate(METRIC_ORDER)},
        "reference": {v: i for i, v in enumerate(REFERENCES)},
    }
    for name in order:
        if name in conventions:
            default = 0 if name == "task" else len(conventions[name])
            table[f"_k_{name}"] = [conventions[name].get(str(v), default) for v in table[name]]
            keys.append(f"_k_{name}")
        keys.append(name)
    table = table.sort_values(keys, kind="mergesort")
    return table[list(columns)].reset_index(drop=True)


class DiversityData:
    """Lookups over a validated diversity frame (DESIGN §3 contract, many checkpoints)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        per_input = frame[frame["scope"] == "per_input"]
        across = frame[frame["scope"] == "across_input"]
        columns = ["model", "task", "cot", "scope", "subset", "metric"]
        distinct = frame[columns].drop_duplicates()
        self.keys: set[tuple[str, str, str, str, str, str]] = {
            (str(m), str(t), str(c), str(sc), str(s), str(x))
            for m, t, c, sc, s, x in zip(*(distinct[col].tolist() for col in columns), strict=True)
        }
        self.has_cot: set[Arm] = {(k[0], k[2]) for k in self.keys}
        self._metrics: dict[tuple[str, str, str, str, str], set[str]] = {}
        for m, t, c, sc, s, x in self.keys:
            self._metrics.setdefault((m, t, c, sc, s), set()).add(x)
        self.per_input: dict[tuple[str, str, str, str], pd.DataFrame] = {}
        if len(per_input):
            wide = per_input.pivot(
                index=["model", "task", "cot", "subset", "prompt_id"],
                columns="metric",
                values="value",
            ).sort_index()
            for key, group in wide.groupby(level=[0, 1, 2, 3], sort=True):
                model, task, cot, subset = (str(part) for part in key)
                block = group.droplevel([0, 1, 2, 3])
                block.index = block.index.astype(str)
                block.columns = block.columns.astype(str)
                self.per_input[(model, task, cot, subset)] = block.astype(float)
        self.across: dict[tuple[str, str, str, str, str], tuple[float, int]] = {
            (str(m), str(t), str(c), str(s), str(x)): (float(v), int(n))
            for m, t, c, s, x, v, n in zip(
                across["model"],
                across["task"],
                across["cot"],
                across["subset"],
                across["metric"],
                across["value"],
                across["n_outputs"],
                strict=True,
            )
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
    def prompts(self, arm: Arm, task: str, subset: str) -> pd.DataFrame | None:
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
        common = sorted(
            set.intersection(*(set(block.index) for block in blocks if block is not None))
        )
        arrays = [
            block.reindex(index=common, columns=list(metrics)).to_numpy(dtype=float)
            for block in blocks
            if block is not None
        ]
        return common, arrays

    def across_value(self, arm: Arm, task: str, subset: str, metric: str) -> tuple[float, int]:
        return self.across.get((arm[0], task, arm[1], subset, metric), (np.nan, 0))


def order_metrics(metrics: Iterable[str]) -> list[str]:
    present = set(metrics)
    known = [m for m in METRIC_ORDER if m in present]
    return known + sorted(present - set(METRIC_ORDER))


def model_cot_label(model: str, cot: str) -> str:
    """How figures name a run: the checkpoint, with " (CoT off)" for CoT-off runs."""
    return model if cot == "on" else f"{model} (CoT off)"
