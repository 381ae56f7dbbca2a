"""Decomposition of a diversity loss into quality control and narrowing (docs/design.md §6).

Between a reference run ``r`` (the base model, or the parent stage) and a checkpoint's run ``m``,
per task and metric (SBERT by default), three numbers that add up::

    total_all    = D_all(r) − D_all(m)            on every paired prompt (both have a value)
    total        = D_all(r) − D_all(m)            on the covered prompts: both runs have at
                                                  least two correct outputs
    residual     = D_correct(r) − D_correct(m)    on the covered prompts: narrowing among
                                                  correct outputs
    quality      = total − residual               removal of incorrect outputs
    unattributed = total_all − total              the part of the loss on the prompts the split
                                                  cannot see, so total_all = quality + residual
                                                  + unattributed

``D`` is a mean over the prompts named. ``quality_share = quality / total`` (null where
``|total|`` is at most 1e-6 × ``|D_all(r)|``). Components may be negative (e.g. a model more
diverse than its reference among its correct outputs); nothing is clipped.

Coverage: ``n_prompts_paired`` prompts have a value in subset ``all`` for both runs; of them
``n_prompts`` are covered (``coverage = n_prompts / n_prompts_paired``) and the others are left out
because the reference (``n_left_out_reference``), the checkpoint (``n_left_out_checkpoint``) or
both (``n_left_out_both``) have fewer than two correct outputs there (0 or 1: no
``correct``-subset value). A verifiable task (one with ``correct`` rows for some run) where no
prompt qualifies gets a row with ``n_prompts = 0`` and null components, so a missing bar is
explained rather than silent.

Which tasks: every verifiable task has rows; ``paper_task`` is true for the paper's six
(:data:`divtrace.names.PAPER_DECOMPOSITION_TASKS`), the view to compare with the paper, and false
for divtrace's extras (TruthfulQA, CRUXEval), which the figure labels as such.

Metrics: SBERT's mean pairwise distance does not depend on the size of the set, so the split of
its loss compares like with like. Vendi (and EAD) grow with the number of outputs (Vendi of one
distribution is about 1.9 at k = 2 and 10 at k = 16), so on D_correct (a few correct outputs)
against D_all (all K) their "quality control" part would mostly measure the set sizes: they are
refused here (:data:`SIZE_DEPENDENT`) until size-matched diversity exists.

**Size-matched Vendi** (``metric = vendi``, ``matched_k`` set): from the rows at fixed set sizes
(``divtrace diversity --k-grid``), each covered prompt is compared at one k for all four
values: the largest k of the grid that both runs' correct outputs reach (at least 2), so
D_all(r), D_all(m), D_correct(r) and D_correct(m) are each Vendi's mean over k-subsets and
the split no longer measures set sizes. (The exact rule, k = the smaller correct count, would
need every k from 2 to K; the grid's 2, 4, 8, 16 round it down.) A prompt where either run has
fewer correct outputs than the grid's smallest k is left out and counted as above.
``matched_k`` is the mean k over the covered prompts. ``total_all`` and ``unattributed`` are
null here: the paired prompts the split cannot see have no matched k.

Intervals: one bootstrap resamples the paired prompts; each replicate recomputes ``total_all`` on
the whole resample and the four covered means on its covered prompts (paired), giving percentile
intervals of ``total_all``, ``total``, ``residual``, ``quality`` and ``unattributed``.

References: ``reference = "base"`` (the root, CoT on) and ``"parent"`` (the parent with the same CoT
mode if it has that run, otherwise CoT on), as in the summary table. The root has no rows.

Columns: ``model, lineage, stage, parent, depth, task, paper_task, cot, metric, reference,
reference_model, reference_cot, n_prompts, n_prompts_paired, coverage, n_left_out_reference,
n_left_out_checkpoint, n_left_out_both, d_all_ref, d_all, d_correct_ref, d_correct``, then each of
``total_all, total, residual, quality, unattributed`` with its ``_ci_low``/``_ci_high``, and
``quality_share``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, interval, paired_means
from divtrace.analysis.common import (
    Block,
    DiversityData,
    diversity_data,
    finish,
    missing_as_null,
    row_head,
)
from divtrace.analysis.stages import shares
from divtrace.errors import AnalysisError
from divtrace.lineage import Lineage
from divtrace.names import LINEAGE_COLUMNS, PAPER_DECOMPOSITION_TASKS, REFERENCES

DECOMPOSITION_METRICS: tuple[str, ...] = ("sbert",)
#: Metrics whose value grows with the number of outputs: no like-for-like split (docstring).
SIZE_DEPENDENT: frozenset[str] = frozenset({"vendi", "ead"})
COMPONENTS = ("total_all", "total", "residual", "quality", "unattributed")
_COUNTS = (
    "depth",
    "n_prompts",
    "n_prompts_paired",
    "n_left_out_reference",
    "n_left_out_checkpoint",
    "n_left_out_both",
)

COLUMNS = [
    *LINEAGE_COLUMNS,
    "task",
    "paper_task",
    "cot",
    "metric",
    "reference",
    "reference_model",
    "reference_cot",
    "n_prompts",
    "n_prompts_paired",
    "coverage",
    "n_left_out_reference",
    "n_left_out_checkpoint",
    "n_left_out_both",
    "d_all_ref",
    "d_all",
    "d_correct_ref",
    "d_correct",
    *(f"{c}{suffix}" for c in COMPONENTS for suffix in ("", "_ci_low", "_ci_high")),
    "quality_share",
    "matched_k",
]
SCHEMA = {
    name: pl.Int64
    if name in _COUNTS
    else pl.Boolean
    if name == "paper_task"
    else pl.Float64
    if name in ("coverage", "quality_share", "matched_k") or name.startswith(("d_", *COMPONENTS))
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
    fixed_k: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The docs/design.md §6 decomposition against the base model and the parent stage (module
    docstring). A size-dependent metric (:data:`SIZE_DEPENDENT`) is refused as a whole-set
    split; ``fixed_k`` (the per-input rows at fixed set sizes,
    :func:`divtrace.analysis.fixed_k.k_rows`) adds the size-matched Vendi rows."""
    refused = sorted(set(metrics) & SIZE_DEPENDENT)
    if refused:
        raise AnalysisError(
            f"the decomposition compares all K outputs with the few correct ones, so a metric "
            f"that grows with the set size cannot be split: {refused} (use sbert)"
        )
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
    if fixed_k is not None and not fixed_k.is_empty():
        rows.extend(_matched(data, lineage, fixed_k, verifiable, n_boot, seed, level))
    table = finish(rows, COLUMNS, lineage, ["task", "cot", "metric", "reference"], schema=SCHEMA)
    counts = (pl.col(name).fill_null(0) for name in _COUNTS if name != "depth")
    return missing_as_null(table.with_columns(counts))


def _values(block: Block | None, ids: list[str], metrics: list[str]) -> np.ndarray:
    """``block``'s values on ``ids`` (NaN for a prompt or metric it lacks, or no block)."""
    out = np.full((len(ids), len(metrics)), np.nan)
    if block is None:
        return out
    have = set(block.ids)
    rows = [i for i, pid in enumerate(ids) if pid in have]
    if rows:
        out[rows] = block.select([ids[i] for i in rows], metrics)
    return out


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
    ids, _ = data.aligned([run, reference], task, "all", metrics)
    all_ref, all_run, correct_ref, correct_run = (
        _values(data.prompts(arm, task, subset), ids, metrics)
        for arm, subset in (
            (reference, "all"),
            (run, "all"),
            (reference, "correct"),
            (run, "correct"),
        )
    )
    # Both calls resample the same prompts (same count and key, so the same resamples): the
    # first averages over every paired prompt, the second over the covered ones.
    key = ("decomposition", *run, *reference, task)
    paired_est, paired_rep, n_paired = paired_means(
        [all_ref, all_run], n_boot=n_boot, seed=seed, key=key
    )
    estimate, samples, n = paired_means(
        [all_ref, all_run, correct_ref, correct_run], n_boot=n_boot, seed=seed, key=key
    )
    paired = np.isfinite(all_ref) & np.isfinite(all_run)
    ref_out = paired & ~np.isfinite(correct_ref)
    run_out = paired & ~np.isfinite(correct_run)
    total_all = paired_est[0] - paired_est[1]
    total = estimate[0] - estimate[1]
    residual = estimate[2] - estimate[3]
    components = {
        "total_all": total_all,
        "total": total,
        "residual": residual,
        "quality": total - residual,
        "unattributed": total_all - total,
    }
    rep_all = paired_rep[:, 0] - paired_rep[:, 1]
    rep_total = samples[:, 0] - samples[:, 1]
    rep_residual = samples[:, 2] - samples[:, 3]
    replicates = {
        "total_all": rep_all,
        "total": rep_total,
        "residual": rep_residual,
        "quality": rep_total - rep_residual,
        "unattributed": rep_all - rep_total,
    }
    bounds = {name: interval(values, level) for name, values in replicates.items()}
    share = shares(components["quality"][:, None], total, estimate[0])[:, 0]
    rows = []
    for j, metric in enumerate(metrics):
        n_pairs = int(n_paired[j])
        row: dict[str, object] = {
            **row_head(lineage, run[0], task),
            "paper_task": task in PAPER_DECOMPOSITION_TASKS,
            "cot": run[1],
            "metric": metric,
            "reference": ref,
            "reference_model": reference[0],
            "reference_cot": reference[1],
            "n_prompts": int(n[j]),
            "n_prompts_paired": n_pairs,
            "coverage": float(n[j] / n_pairs) if n_pairs else np.nan,
            "n_left_out_reference": int((ref_out[:, j] & ~run_out[:, j]).sum()),
            "n_left_out_checkpoint": int((run_out[:, j] & ~ref_out[:, j]).sum()),
            "n_left_out_both": int((ref_out[:, j] & run_out[:, j]).sum()),
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


def _matched(
    data: DiversityData,
    lineage: Lineage,
    rows_at_k: pl.DataFrame,
    verifiable: list[str],
    n_boot: int,
    seed: int,
    level: float,
) -> list[dict[str, object]]:
    """The size-matched Vendi rows (module docstring) of every run and reference."""
    vendi = rows_at_k.filter(pl.col("metric") == "vendi")
    if vendi.is_empty():
        return []
    # (model, task, cot, subset) -> {prompt: (n_outputs, {k: value})}
    sets: dict[tuple[str, str, str, str], dict[str, tuple[int, dict[int, float]]]] = {}
    for model, task, cot, subset, pid, k, value, n in vendi.select(
        "model", "task", "cot", "subset", "prompt_id", "k", "value", "n_outputs"
    ).iter_rows():
        entry = sets.setdefault((model, task, cot, subset), {})
        _size, by_k = entry.setdefault(pid, (int(n), {}))
        by_k[int(k)] = np.nan if value is None else float(value)
    grid = sorted({int(k) for k in vendi.get_column("k").to_list()})
    out: list[dict[str, object]] = []
    runs = sorted({(m, t, c) for (m, t, c, s) in sets if s == "all"})
    for model, task, cot in runs:
        if model == lineage.root or task not in verifiable:
            continue
        for ref in REFERENCES:
            arm = data.reference(lineage, model, cot, ref)
            if arm is None or (arm[0], task, arm[1], "all") not in sets:
                continue
            out.append(
                _matched_row(sets, grid, lineage, (model, cot), arm, ref, task, n_boot, seed, level)
            )
    return out


def _matched_row(
    sets: dict[tuple[str, str, str, str], dict[str, tuple[int, dict[int, float]]]],
    grid: list[int],
    lineage: Lineage,
    run: tuple[str, str],
    reference: tuple[str, str],
    ref: str,
    task: str,
    n_boot: int,
    seed: int,
    level: float,
) -> dict[str, object]:
    def of(arm: tuple[str, str], subset: str) -> dict[str, tuple[int, dict[int, float]]]:
        return sets.get((arm[0], task, arm[1], subset), {})

    all_ref, all_run = of(reference, "all"), of(run, "all")
    cor_ref, cor_run = of(reference, "correct"), of(run, "correct")
    ids = sorted(set(all_ref) & set(all_run))
    arrays = np.full((4, len(ids)), np.nan)
    ks = np.full(len(ids), np.nan)
    ref_out = np.zeros(len(ids), dtype=bool)
    run_out = np.zeros(len(ids), dtype=bool)
    for i, pid in enumerate(ids):
        c_ref = cor_ref.get(pid, (0, {}))[0]
        c_run = cor_run.get(pid, (0, {}))[0]
        ref_out[i] = c_ref < grid[0]
        run_out[i] = c_run < grid[0]
        fitting = [k for k in grid if k <= min(c_ref, c_run)]
        if not fitting:
            continue
        k = fitting[-1]
        ks[i] = k
        for j, source in enumerate((all_ref, all_run, cor_ref, cor_run)):
            arrays[j, i] = source[pid][1].get(k, np.nan)
    key = ("decomposition-matched", *run, *reference, task)
    estimate, samples, n = paired_means(
        [a[:, None] for a in arrays], n_boot=n_boot, seed=seed, key=key
    )
    covered = np.isfinite(arrays).all(axis=0)
    total = estimate[0] - estimate[1]
    residual = estimate[2] - estimate[3]
    rep_total = samples[:, 0] - samples[:, 1]
    rep_residual = samples[:, 2] - samples[:, 3]
    bounds = {
        name: interval(values, level)
        for name, values in (
            ("total", rep_total),
            ("residual", rep_residual),
            ("quality", rep_total - rep_residual),
        )
    }
    share = shares((total - residual)[:, None], total, estimate[0])[:, 0]
    n_pairs = len(ids)
    row: dict[str, object] = {
        **row_head(lineage, run[0], task),
        "paper_task": task in PAPER_DECOMPOSITION_TASKS,
        "cot": run[1],
        "metric": "vendi",
        "reference": ref,
        "reference_model": reference[0],
        "reference_cot": reference[1],
        "n_prompts": int(n[0]),
        "n_prompts_paired": n_pairs,
        "coverage": float(n[0] / n_pairs) if n_pairs else np.nan,
        "n_left_out_reference": int((ref_out & ~run_out).sum()),
        "n_left_out_checkpoint": int((run_out & ~ref_out).sum()),
        "n_left_out_both": int((ref_out & run_out).sum()),
        "d_all_ref": float(estimate[0, 0]),
        "d_all": float(estimate[1, 0]),
        "d_correct_ref": float(estimate[2, 0]),
        "d_correct": float(estimate[3, 0]),
        "quality_share": float(share[0]),
        "matched_k": float(ks[covered].mean()) if covered.any() else np.nan,
        "total": float(total[0]),
        "residual": float(residual[0]),
        "quality": float(total[0] - residual[0]),
    }
    for name, (low, high) in bounds.items():
        row[f"{name}_ci_low"] = float(low[0])
        row[f"{name}_ci_high"] = float(high[0])
    return row
