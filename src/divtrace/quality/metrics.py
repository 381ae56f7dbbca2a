"""Quality metrics over a QUALITY table (DESIGN §6): accuracy@1, majority@K, pass@k.

Per prompt, with n samples of which c are correct:

- ``accuracy_at_1``: whether the prompt's sample 0 (its lowest sample index) is correct;
- ``majority_at_k``: whether the most common ``extracted`` answer among the prompt's samples is
  correct. Answers are compared as strings after stripping surrounding whitespace; samples with no
  extracted answer do not vote; a tie goes to the answer whose first occurrence has the lowest
  sample index; a prompt whose samples extracted nothing is a miss. The winner's correctness is
  that of its first (lowest-index) sample;
- ``pass_at_k``: the unbiased estimator ``1 - C(n - c, k) / C(n, k)`` (Chen et al., 2021), for
  k ≤ n only;
- ``extraction_rate``: the fraction of samples with an extracted answer;
- ``mean_score``: the mean graded score; ``unclosed_rate``: the fraction of samples whose
  reasoning trace never closed (judged incorrect, see :mod:`divtrace.quality.score`).

:func:`quality_summary` averages these over the prompts of each (model, task, cot).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from divtrace.quality.score import UNCLOSED

PASS_KS: tuple[int, ...] = (1, 4, 16)

_GROUP = ["model", "task", "cot"]
METRIC_COLUMNS: list[str] = [
    "accuracy_at_1",
    "majority_at_k",
    *(f"pass_at_{k}" for k in PASS_KS),
    "extraction_rate",
    "mean_score",
    "unclosed_rate",
]
PER_PROMPT_COLUMNS: list[str] = [*_GROUP, "prompt_id", "n", "c", *METRIC_COLUMNS]
SUMMARY_COLUMNS: list[str] = [
    *_GROUP,
    "n_prompts",
    "n_samples",
    "samples_per_prompt",
    *METRIC_COLUMNS,
]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: ``1 - C(n-c, k) / C(n, k)``."""
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority_vote(
    samples: Sequence[int], extracted: Sequence[str | None], correct: Sequence[bool]
) -> tuple[str | None, bool]:
    """The majority answer of one prompt's samples and whether it is correct (rules above)."""
    counts: dict[str, int] = {}
    first: dict[str, tuple[int, bool]] = {}
    for sample, answer, ok in sorted(
        zip(samples, extracted, correct, strict=True), key=lambda t: t[0]
    ):
        if answer is None or (isinstance(answer, float) and math.isnan(answer)):
            continue
        key = str(answer).strip()
        counts[key] = counts.get(key, 0) + 1
        if key not in first:
            first[key] = (sample, bool(ok))
    if not counts:
        return None, False
    winner = min(counts, key=lambda a: (-counts[a], first[a][0]))
    return winner, first[winner][1]


def per_prompt(quality: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, task, cot, prompt_id): n, c, accuracy@1, majority@K, pass@k, extraction."""
    missing = [
        c for c in [*_GROUP, "prompt_id", "sample", "correct", "extracted"] if c not in quality
    ]
    if missing:
        raise ValueError(f"quality table lacks column(s) {missing}")
    rows: list[dict[str, object]] = []
    for (model, task, cot, prompt_id), group in quality.groupby(
        [*_GROUP, "prompt_id"], sort=True, dropna=False
    ):
        group = group.sort_values("sample", kind="stable")
        samples = [int(s) for s in group["sample"]]
        correct = [bool(c) for c in group["correct"]]
        extracted = [None if pd.isna(e) else str(e) for e in group["extracted"]]
        n, c = len(samples), sum(correct)
        _, majority_ok = majority_vote(samples, extracted, correct)
        row: dict[str, object] = {
            "model": model,
            "task": task,
            "cot": cot,
            "prompt_id": prompt_id,
            "n": n,
            "c": c,
            "accuracy_at_1": float(correct[0]),
            "majority_at_k": float(majority_ok),
            "extraction_rate": sum(e is not None for e in extracted) / n,
        }
        for k in PASS_KS:
            row[f"pass_at_{k}"] = pass_at_k(n, c, k) if k <= n else np.nan
        row["mean_score"] = (
            float(group["score"].astype(float).mean()) if "score" in group else np.nan
        )
        row["unclosed_rate"] = (
            float((group["detail"] == UNCLOSED).mean()) if "detail" in group else np.nan
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=PER_PROMPT_COLUMNS)


def quality_summary(quality: pd.DataFrame) -> pd.DataFrame:
    """Per (model, task, cot): prompt and sample counts and the per-prompt metrics averaged.

    ``pass_at_k`` averages over the prompts with at least k samples and is NaN when none has;
    ``samples_per_prompt`` is the smallest n of the group.
    """
    prompts = per_prompt(quality)
    if prompts.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    summary = prompts.groupby(_GROUP, sort=True, dropna=False).agg(
        n_prompts=("prompt_id", "size"),
        n_samples=("n", "sum"),
        samples_per_prompt=("n", "min"),
        **{column: (column, "mean") for column in METRIC_COLUMNS},
    )
    return summary.reset_index()[SUMMARY_COLUMNS]
