"""Quality table with lineage columns, bootstrap intervals and pass@k for k = 1, 2, 4, … K.

:func:`quality_table` extends :func:`divtrace.quality.metrics.quality_summary` (same numbers, same
rows: one per checkpoint, task and CoT mode) with

- the checkpoint's ``lineage``, ``stage``, ``parent`` and ``depth`` (as in the diversity summary);
- ``pass_at_{k}`` for every power of two up to the largest number of samples per prompt, and that
  number itself, besides the summary's k = 1, 4, 16 (NaN where a run has fewer samples), so that
  pass@k curves have a point per doubling of k;
- ``{metric}_ci_low`` / ``{metric}_ci_high`` for ``accuracy_at_1``, ``majority_at_k`` and every
  ``pass_at_{k}``: a percentile bootstrap over prompts, one resample shared by these metrics.

Columns: ``model, lineage, stage, parent, depth, task, cot, n_prompts, n_samples,
samples_per_prompt``, then each interval metric followed by its two bounds, then
``extraction_rate, mean_score, unclosed_rate``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from divtrace.analysis.bootstrap import DEFAULT_LEVEL, DEFAULT_N_BOOT, bootstrap_mean
from divtrace.analysis.common import LINEAGE_COLUMNS, finish, lineage_columns
from divtrace.analysis.cot import quality_per_prompt
from divtrace.lineage import Lineage

PASS_COLUMN = re.compile(r"^pass_at_(\d+)$")


def pass_ks(max_samples: int, base: tuple[int, ...] = (1, 4, 16)) -> list[int]:
    """Powers of two up to ``max_samples``, ``max_samples`` itself and ``base``, sorted."""
    ks = set(base)
    k = 1
    while k <= max_samples:
        ks.add(k)
        k *= 2
    if max_samples >= 1:
        ks.add(max_samples)
    return sorted(ks)


def _pass_at_k(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """Vectorised unbiased pass@k; NaN where k > n (as :func:`quality.metrics.pass_at_k`)."""
    from divtrace.quality.metrics import pass_at_k

    return np.array(
        [
            pass_at_k(int(ni), int(ci), k) if k <= ni else np.nan
            for ni, ci in zip(n, c, strict=True)
        ],
        dtype=float,
    )


def quality_table(
    quality: pd.DataFrame,
    lineage: Lineage,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """The quality summary per checkpoint, task and CoT mode (module docstring).

    ``quality`` is the quality contract (one row per sample) or its per-prompt table.
    """
    from divtrace.quality.metrics import METRIC_COLUMNS

    prompts = quality_per_prompt(quality, lineage)
    max_n = int(prompts["n"].max()) if len(prompts) else 0
    ks = pass_ks(max_n)
    for k in ks:
        if f"pass_at_{k}" not in prompts.columns:
            prompts[f"pass_at_{k}"] = _pass_at_k(
                prompts["n"].to_numpy(), prompts["c"].to_numpy(), k
            )
    interval_metrics = ["accuracy_at_1", "majority_at_k", *(f"pass_at_{k}" for k in ks)]
    plain = [m for m in METRIC_COLUMNS if m not in interval_metrics]
    columns = [
        *LINEAGE_COLUMNS,
        "task",
        "cot",
        "n_prompts",
        "n_samples",
        "samples_per_prompt",
        *(f"{m}{s}" for m in interval_metrics for s in ("", "_ci_low", "_ci_high")),
        *plain,
    ]
    rows: list[dict[str, object]] = []
    for (model, task, cot), group in prompts.groupby(["model", "task", "cot"], sort=True):
        group = group.sort_values("prompt_id", kind="mergesort")
        values = group[interval_metrics].to_numpy(dtype=float)
        result = bootstrap_mean(values, n_boot=n_boot, seed=seed, key=("quality", model, task, cot))
        low, high = result.interval(level)
        row: dict[str, object] = {
            "model": model,
            **lineage_columns(lineage, str(model)),
            "task": task,
            "cot": cot,
            "n_prompts": len(group),
            "n_samples": int(group["n"].sum()),
            "samples_per_prompt": int(group["n"].min()),
        }
        for j, metric in enumerate(interval_metrics):
            # The plain mean, exactly as quality_summary computes it (NaN-skipping).
            row[metric] = float(group[metric].mean())
            row[f"{metric}_ci_low"] = float(low[j])
            row[f"{metric}_ci_high"] = float(high[j])
        for metric in plain:
            row[metric] = float(group[metric].mean())
        rows.append(row)
    table = finish(rows, columns, lineage, ["task", "cot"])
    for name in ("depth", "n_prompts", "n_samples", "samples_per_prompt"):
        table[name] = table[name].astype("int64")
    for name in columns[columns.index("samples_per_prompt") + 1 :]:
        table[name] = table[name].astype(float)
    return table
