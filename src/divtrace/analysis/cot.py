"""CoT on vs off: how switching the reasoning trace off changes answer diversity and accuracy.

For every checkpoint with runs in both CoT modes (the reasoning models), :func:`cot_table` compares
the two runs on the prompts both have, per task:

- ``kind = "diversity"``: each diversity metric (``scope``/``subset`` as in the diversity contract);
- ``kind = "quality"``: ``accuracy_at_1`` (sample 0 correct) and ``pass_at_1`` (mean correctness
  over the prompt's samples, the unbiased pass@1), from the per-prompt quality metrics
  (:func:`divtrace.quality.metrics.per_prompt`); ``scope`` is ``per_input`` and ``subset``
  ``all`` on these rows.

``difference = value_on − value_off`` (positive: the run with CoT is more diverse / more
accurate), where ``value_on`` and ``value_off`` are means over the ``n_prompts`` paired prompts. The
interval is a paired percentile bootstrap of the mean per-prompt difference over those prompts
(:func:`divtrace.analysis.bootstrap.paired_bootstrap`); ``significant`` is true when the interval
excludes 0, false when it contains 0, and null where there is no interval (``across_input`` rows,
which have one value per run, and ``n_boot = 0``).

Columns: ``model, lineage, stage, parent, depth, task, kind, scope, subset, metric, value_on,
value_off, difference, ci_low, ci_high, n_prompts, significant``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from divtrace.analysis.aggregate import _validate
from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, paired_bootstrap
from divtrace.analysis.common import LINEAGE_COLUMNS, DiversityData, finish, lineage_columns
from divtrace.lineage import Lineage

QUALITY_METRICS = ("accuracy_at_1", "pass_at_1")
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
]


def quality_per_prompt(quality: pd.DataFrame, lineage: Lineage) -> pd.DataFrame:
    """Per-prompt quality metrics: ``quality`` itself if it already is a per-prompt table
    (:func:`divtrace.quality.metrics.per_prompt`), otherwise computed from the quality contract."""
    from divtrace.quality.metrics import per_prompt

    prompts = quality if "sample" not in quality.columns else per_prompt(quality)
    missing = [
        c for c in ("model", "task", "cot", "prompt_id", *QUALITY_METRICS) if c not in prompts
    ]
    if missing:
        raise ValueError(f"quality table lacks column(s) {missing}")
    unknown = sorted(set(prompts["model"].astype(str)) - set(lineage.checkpoints))
    if unknown:
        raise ValueError(
            f"quality column 'model' names model(s) {unknown} that are not in the lineage "
            f"(known: {sorted(lineage.checkpoints)})"
        )
    prompts = prompts.copy()
    pass_at_1 = prompts["c"] / prompts["n"] if {"c", "n"} <= set(prompts.columns) else None
    if pass_at_1 is not None:
        prompts["pass_at_1"] = prompts["pass_at_1"].fillna(pass_at_1)
    for column in ("model", "task", "cot", "prompt_id"):
        prompts[column] = prompts[column].astype(str)
    return prompts


def _significant(low: float, high: float) -> object:
    if not (np.isfinite(low) and np.isfinite(high)):
        return pd.NA
    return bool(low > 0 or high < 0)


def _row(
    lineage: Lineage, model: str, task: str, kind: str, scope: str, subset: str, metric: str
) -> dict[str, object]:
    return {
        "model": model,
        **lineage_columns(lineage, model),
        "task": task,
        "kind": kind,
        "scope": scope,
        "subset": subset,
        "metric": metric,
    }


def cot_table(
    diversity: pd.DataFrame,
    lineage: Lineage,
    quality: pd.DataFrame | None = None,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """Paired CoT on − off differences of diversity and (with ``quality``) accuracy.

    ``quality`` is the quality contract (one row per sample) or its per-prompt table.
    """
    data = DiversityData(_validate(diversity, lineage))
    rows: list[dict[str, object]] = []
    reasoning = sorted(m for m, c in data.has_cot if c == "off" and (m, "on") in data.has_cot)
    for model in reasoning:
        on, off = (model, "on"), (model, "off")
        tasks = sorted(
            {t for (m, t, c, _s) in data.groups("per_input") if m == model}
            | {t for (m, t, c, _s) in data.groups("across_input") if m == model}
        )
        for task in tasks:
            for subset in ("all", "correct"):
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
                            n_boot,
                            seed,
                            level,
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
                            "significant": pd.NA,
                        }
                    )
    if quality is not None and len(quality):
        prompts = quality_per_prompt(quality, lineage)
        for (q_model, q_task), group in prompts.groupby(["model", "task"], sort=True):
            runs = {
                str(cot): block.set_index("prompt_id")[list(QUALITY_METRICS)].astype(float)
                for cot, block in group.groupby("cot")
            }
            if "on" not in runs or "off" not in runs:
                continue
            common = sorted(set(runs["on"].index) & set(runs["off"].index))
            rows.extend(
                _paired_rows(
                    lineage,
                    str(q_model),
                    str(q_task),
                    "quality",
                    "per_input",
                    "all",
                    list(QUALITY_METRICS),
                    runs["on"].loc[common].to_numpy(),
                    runs["off"].loc[common].to_numpy(),
                    n_boot,
                    seed,
                    level,
                )
            )
    table = finish(rows, COLUMNS, lineage, ["task", "kind", "scope", "subset", "metric"])
    table["n_prompts"] = table["n_prompts"].fillna(0).astype("int64")
    for name in ("value_on", "value_off", "difference", "ci_low", "ci_high"):
        table[name] = table[name].astype(float)
    table["significant"] = table["significant"].astype("boolean")
    return table


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
    n_boot: int,
    seed: int,
    level: float,
) -> list[dict[str, object]]:
    key = ("cot", model, task, kind, subset)
    result = paired_bootstrap(on, off, statistic="difference", n_boot=n_boot, seed=seed, key=key)
    low, high = result.interval(level)
    both = np.isfinite(on) & np.isfinite(off)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_on = np.where(both, on, 0.0).sum(axis=0) / both.sum(axis=0)
        mean_off = np.where(both, off, 0.0).sum(axis=0) / both.sum(axis=0)
    rows = []
    for j, metric in enumerate(metrics):
        rows.append(
            {
                **_row(lineage, model, task, kind, scope, subset, metric),
                "value_on": float(mean_on[j]),
                "value_off": float(mean_off[j]),
                "difference": float(result.estimate[j]),
                "ci_low": float(low[j]),
                "ci_high": float(high[j]),
                "n_prompts": int(result.n[j]),
                "significant": _significant(float(low[j]), float(high[j])),
            }
        )
    return rows
