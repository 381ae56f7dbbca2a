"""Decomposition of a diversity loss into quality control and narrowing (docs/design.md §6).

Between a reference run ``r`` (the base model, or the parent stage) and a checkpoint's run ``m``,
per task and metric (SBERT and Vendi by default), on the prompts where *both* runs have at least
two correct outputs — exactly the prompts with a ``per_input`` value of subset ``correct`` for both —
and a finite value in all four cells::

    total      = D_all(r) − D_all(m)          on those prompts
    residual   = D_correct(r) − D_correct(m)  narrowing among correct outputs
    quality    = total − residual             removal of incorrect outputs

``D`` is a mean over those prompts. ``quality_share = quality / total`` (null where ``|total|`` is at
most 1e-6 × ``|D_all(r)|``). Components may be negative (e.g. a model more diverse than its
reference among its correct outputs); nothing is clipped.

Coverage: ``n_prompts`` is the number of prompts used, ``n_prompts_paired`` the number of prompts
both runs have a value for with subset ``all``, ``coverage = n_prompts / n_prompts_paired``. A verifiable task
(one with ``correct`` rows for some run) where no prompt qualifies gets a row with
``n_prompts = 0`` and null values, so a missing bar is explained rather than silent.

Intervals: one bootstrap of those prompts resamples all four means together (paired), giving
percentile intervals of ``total``, ``residual`` and ``quality``.

References: ``reference = "base"`` (the root, CoT on) and ``"parent"`` (the parent with the same CoT
mode if it has that run, otherwise CoT on), as in the summary table. The root has no rows.

Columns: ``model, lineage, stage, parent, depth, task, cot, metric, reference, reference_model,
reference_cot, n_prompts, n_prompts_paired, coverage, d_all_ref, d_all, d_correct_ref, d_correct,
total, total_ci_low, total_ci_high, residual, residual_ci_low, residual_ci_high, quality,
quality_ci_low, quality_ci_high, quality_share``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, interval, paired_means
from divtrace.analysis.common import (
    DiversityData,
    diversity_data,
    finish,
    lineage_columns,
    missing_as_null,
)
from divtrace.analysis.stages import shares
from divtrace.lineage import Lineage
from divtrace.names import LINEAGE_COLUMNS, REFERENCES

DECOMPOSITION_METRICS = ("sbert", "vendi")
COMPONENTS = ("total", "residual", "quality")

COLUMNS = [
    *LINEAGE_COLUMNS,
    "task",
    "cot",
    "metric",
    "reference",
    "reference_model",
    "reference_cot",
    "n_prompts",
    "n_prompts_paired",
    "coverage",
    "d_all_ref",
    "d_all",
    "d_correct_ref",
    "d_correct",
    *(f"{c}{suffix}" for c in COMPONENTS for suffix in ("", "_ci_low", "_ci_high")),
    "quality_share",
]
SCHEMA = {
    name: pl.Int64
    if name in ("depth", "n_prompts", "n_prompts_paired")
    else pl.Float64
    if name in COLUMNS[COLUMNS.index("coverage") :]
    else pl.String
    for name in COLUMNS
}


def decomposition_table(
    diversity: pl.DataFrame | DiversityData,
    lineage: Lineage,
    *,
    metrics: Sequence[str] = DECOMPOSITION_METRICS,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> pl.DataFrame:
    """The docs/design.md §6 decomposition against the base model and the parent stage (module docstring)."""
    data = diversity_data(diversity, lineage)
    verifiable = sorted({t for (_m, t, _c, _sc, s, _x) in data.keys if s == "correct"})
    rows: list[dict[str, object]] = []
    runs = sorted({(m, t, c) for (m, t, c, s) in data.groups("per_input") if s == "all"})
    for model, task, cot in runs:
        if model == lineage.root or task not in verifiable:
            continue
        wanted = [x for x in metrics if x in data.metrics(model, task, cot, "per_input", "all")]
        if not wanted:
            continue
        for ref in REFERENCES:
            arm = data.reference(lineage, model, cot, ref)
            if arm is None:
                continue
            rows.extend(
                _rows(data, lineage, (model, cot), arm, ref, task, wanted, n_boot, seed, level)
            )
    table = finish(rows, COLUMNS, lineage, ["task", "cot", "metric", "reference"], schema=SCHEMA)
    counts = (pl.col(name).fill_null(0) for name in ("n_prompts", "n_prompts_paired"))
    return missing_as_null(table.with_columns(counts))


def _rows(
    data: DiversityData,
    lineage: Lineage,
    run: tuple[str, str],
    reference: tuple[str, str],
    ref: str,
    task: str,
    metrics: list[str],
    n_boot: int,
    seed: int,
    level: float,
) -> list[dict[str, object]]:
    _paired, (all_run, all_ref) = data.aligned([run, reference], task, "all", metrics)
    # Per metric: the prompts both runs have a value for (a prompt with fewer than two usable
    # outputs has none).
    n_paired_of = (np.isfinite(all_run) & np.isfinite(all_ref)).sum(axis=0)
    arms = [
        (reference, "all"),
        (run, "all"),
        (reference, "correct"),
        (run, "correct"),
    ]
    blocks = [data.prompts(arm, task, subset) for arm, subset in arms]
    if any(block is None for block in blocks):
        common: list[str] = []
    else:
        common = sorted(set.intersection(*(set(b.ids) for b in blocks if b is not None)))
    arrays = [
        b.select(common, metrics) if b is not None else np.zeros((0, len(metrics))) for b in blocks
    ]
    estimate, samples, n = paired_means(
        arrays, n_boot=n_boot, seed=seed, key=("decomposition", *run, *reference, task)
    )
    total = estimate[0] - estimate[1]
    residual = estimate[2] - estimate[3]
    components = {"total": total, "residual": residual, "quality": total - residual}
    bounds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rep_total = samples[:, 0] - samples[:, 1]
    rep_residual = samples[:, 2] - samples[:, 3]
    for name, replicates in (
        ("total", rep_total),
        ("residual", rep_residual),
        ("quality", rep_total - rep_residual),
    ):
        bounds[name] = interval(replicates, level)
    share = shares(components["quality"][:, None], total, estimate[0])[:, 0]
    rows = []
    for j, metric in enumerate(metrics):
        n_paired = int(n_paired_of[j])
        row: dict[str, object] = {
            "model": run[0],
            **lineage_columns(lineage, run[0]),
            "task": task,
            "cot": run[1],
            "metric": metric,
            "reference": ref,
            "reference_model": reference[0],
            "reference_cot": reference[1],
            "n_prompts": int(n[j]),
            "n_prompts_paired": n_paired,
            "coverage": float(n[j] / n_paired) if n_paired else np.nan,
            "d_all_ref": float(estimate[0, j]),
            "d_all": float(estimate[1, j]),
            "d_correct_ref": float(estimate[2, j]),
            "d_correct": float(estimate[3, j]),
            "quality_share": float(share[j]),
        }
        for name, values in components.items():
            row[name] = float(values[j])
            row[f"{name}_ci_low"] = float(bounds[name][0][j])
            row[f"{name}_ci_high"] = float(bounds[name][1][j])
        rows.append(row)
    return rows
