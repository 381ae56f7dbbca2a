"""CoT on vs off: how switching the reasoning trace off changes answer diversity and accuracy.

For every checkpoint with runs in both CoT modes (the reasoning models), :func:`cot_table` compares
the two runs on the prompts both have, per task:

- ``kind = "diversity"``: each diversity metric (``scope``/``subset`` as in the diversity contract);
- ``kind = "quality"``: ``accuracy_at_1`` (sample 0 correct) and ``pass_at_1`` (mean correctness
  over the prompt's samples, the unbiased pass@1), from the per-prompt quality metrics
  (:func:`divtrace.quality.metrics.per_prompt`); ``scope`` is ``per_input`` and ``subset``
  ``all`` on these rows.

``difference = value_on − value_off`` (positive: the run with CoT is more diverse / more
accurate), where ``value_on`` and ``value_off`` are means over the ``n_prompts`` paired prompts.

Two tests per row, both on one paired percentile bootstrap of the mean per-prompt difference over
those prompts (:func:`divtrace.analysis.bootstrap.paired_bootstrap`; the same replicates):

- **difference**: ``ci_low``/``ci_high`` is the ``level`` (95 %) interval; ``significant`` is
  true when it excludes 0 (a two-sided test at alpha = 1 − level = 0.05).
- **equivalence** (TOST, two one-sided tests): with the margin ``margin = δ =
  equivalence_margin × |value_on|`` (a fraction of the CoT-on value, 5 % by default), the
  difference is equivalent to 0 at level alpha when both one-sided tests reject, H0: difference
  ≤ −δ and H0: difference ≥ +δ. A one-sided bootstrap percentile test rejects the first at alpha
  exactly when the alpha-quantile of the replicates is above −δ, the second when the
  (1 − alpha)-quantile is below +δ; so TOST passes exactly when the (1 − 2 alpha) percentile
  interval ``equiv_ci_low``/``equiv_ci_high`` (90 % for alpha = 0.05) lies inside (−δ, +δ):
  ``equivalent``. A 95 % interval that covers 0 says only that no difference was found; "CoT off
  leaves diversity unchanged" needs ``equivalent``.

``verdict`` combines them: ``"equivalent"`` when TOST passes (even when ``significant`` is true
as well: then the difference is real but smaller than the margin; both columns stay visible),
``"different"`` when the 95 % interval excludes 0 and equivalence is not shown, ``"undecided"``
otherwise (the data show neither). ``significant``, ``equivalent`` and ``verdict`` are null where
there is no interval (``across_input`` rows, which have one value per run, and ``n_boot = 0``);
``margin`` is filled wherever ``value_on`` is. A CoT-on mean of 0 gives δ = 0, with which
nothing is equivalent. Missing values are null.

Columns: ``model, lineage, stage, parent, depth, task, kind, scope, subset, metric, value_on,
value_off, difference, ci_low, ci_high, n_prompts, significant, margin, equiv_ci_low,
equiv_ci_high, equivalent, verdict``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, paired_bootstrap
from divtrace.analysis.common import (
    DiversityData,
    diversity_data,
    finish,
    missing_as_null,
    row_head,
)
from divtrace.analysis.quality import QUALITY_METRICS, quality_per_prompt
from divtrace.errors import AnalysisError
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
    "margin",
    "equiv_ci_low",
    "equiv_ci_high",
    "equivalent",
    "verdict",
]
_FLOATS = (
    "value_on",
    "value_off",
    "difference",
    "ci_low",
    "ci_high",
    "margin",
    "equiv_ci_low",
    "equiv_ci_high",
)
SCHEMA = {
    name: pl.Int64
    if name in ("depth", "n_prompts")
    else pl.Float64
    if name in _FLOATS
    else pl.Boolean
    if name in ("significant", "equivalent")
    else pl.String
    for name in COLUMNS
}
#: The equivalence margin as a fraction of the CoT-on value (``analysis.equivalence_margin``; the
#: config schema's default, which the command line takes too).
DEFAULT_EQUIVALENCE_MARGIN = 0.05
#: ``verdict`` values: TOST passed; the difference test rejected, TOST did not; neither.
VERDICTS: tuple[str, ...] = ("equivalent", "different", "undecided")


def equivalence_level(level: float) -> float:
    """The TOST interval's level for a difference test at ``level``: alpha = 1 − level, so
    1 − 2 alpha (0.90 for the default 0.95)."""
    return 1.0 - 2.0 * (1.0 - level)


def _significant(low: float, high: float) -> bool | None:
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    return bool(low > 0 or high < 0)


def _equivalent(low: float, high: float, margin: float) -> bool | None:
    """TOST: the (1 − 2 alpha) interval inside the open band (−δ, +δ); null without an interval."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    if not np.isfinite(margin):
        return None
    return bool(-margin < low and high < margin)


def verdict(significant: bool | None, equivalent: bool | None) -> str | None:
    """``"equivalent"`` (TOST passed), ``"different"`` (95 % interval excludes 0, TOST failed),
    ``"undecided"`` (neither); None where either test has no interval."""
    if significant is None or equivalent is None:
        return None
    if equivalent:
        return "equivalent"
    return "different" if significant else "undecided"


def _row(
    lineage: Lineage, model: str, task: str, kind: str, scope: str, subset: str, metric: str
) -> dict[str, object]:
    return row_head(lineage, model, task, kind=kind, scope=scope, subset=subset, metric=metric)


def cot_table(
    diversity: pl.DataFrame | DiversityData,
    lineage: Lineage,
    quality: pl.DataFrame | None = None,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    equivalence_margin: float = DEFAULT_EQUIVALENCE_MARGIN,
) -> pl.DataFrame:
    """Paired CoT on − off differences of diversity and (with ``quality``) accuracy, each with a
    difference test and an equivalence test (TOST with margin ``equivalence_margin × |value_on|``).

    ``quality`` is the quality contract (one row per sample) or its per-prompt table
    (:func:`divtrace.analysis.quality.quality_per_prompt`).
    """
    margin = float(equivalence_margin)
    if not (np.isfinite(margin) and margin > 0):
        raise AnalysisError(
            "equivalence margin (analysis.equivalence_margin, --equivalence-margin) must be a "
            f"number > 0, got {equivalence_margin}"
        )
    if not 0.5 < level < 1:
        raise ValueError(f"need 0.5 < level < 1 (alpha = 1 − level below 0.5), got {level}")
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
                            n_boot=n_boot,
                            seed=seed,
                            level=level,
                            margin=margin,
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
                            "margin": margin * abs(value_on),
                            "equivalent": None,
                            "verdict": None,
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
                    n_boot=n_boot,
                    seed=seed,
                    level=level,
                    margin=margin,
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
    *,
    n_boot: int,
    seed: int,
    level: float,
    margin: float,
) -> list[dict[str, object]]:
    key = ("cot", model, task, kind, subset)
    result = paired_bootstrap(on, off, statistic="difference", n_boot=n_boot, seed=seed, key=key)
    # Both intervals from the same replicates: the difference test and TOST.
    low, high = result.interval(level)
    equiv_low, equiv_high = result.interval(equivalence_level(level))
    both = np.isfinite(on) & np.isfinite(off)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_on = np.where(both, on, 0.0).sum(axis=0) / both.sum(axis=0)
        mean_off = np.where(both, off, 0.0).sum(axis=0) / both.sum(axis=0)
    rows = []
    for j, metric in enumerate(metrics):
        delta = margin * abs(float(mean_on[j]))
        significant = _significant(float(low[j]), float(high[j]))
        equivalent = _equivalent(float(equiv_low[j]), float(equiv_high[j]), delta)
        rows.append(
            {
                **_row(lineage, model, task, kind, scope, subset, metric),
                "value_on": float(mean_on[j]),
                "value_off": float(mean_off[j]),
                "difference": float(result.estimate[j]),
                "ci_low": float(low[j]),
                "ci_high": float(high[j]),
                "n_prompts": int(result.n[j]),
                "significant": significant,
                "margin": delta,
                "equiv_ci_low": float(equiv_low[j]),
                "equiv_ci_high": float(equiv_high[j]),
                "equivalent": equivalent,
                "verdict": verdict(significant, equivalent),
            }
        )
    return rows
