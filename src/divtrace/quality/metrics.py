"""Quality metrics over a QUALITY table (docs/design.md §6): accuracy@1, majority@K, pass@k.

Per prompt, with n samples of which c are correct:

- ``accuracy_at_1``: whether the prompt's sample 0 (its lowest sample index) is correct;
- ``majority_at_k``: whether the most common ``extracted`` answer among the prompt's samples is
  correct. Answers are compared as strings after stripping surrounding whitespace; samples with no
  extracted answer do not vote; a tie goes to the answer whose first occurrence has the lowest
  sample index; a prompt whose samples extracted nothing is a miss. The winner's correctness is
  that of its first (lowest-index) sample;
- ``pass_at_{k}`` for each k of :data:`PASS_KS` (1, 2, 4, 5, 8, 10, 16: the paper's 1, 5, 10, 16
  and the powers of two): the unbiased estimator ``1 - C(n - c, k) / C(n, k)`` (Chen et al.,
  2021), for k ≤ n only (null otherwise);
- ``extraction_rate``: the fraction of samples with an extracted answer;
- ``mean_score``: the mean graded score; ``unclosed_rate``: the fraction of samples whose
  reasoning trace never closed (judged incorrect, see :mod:`divtrace.quality.score`); null when
  the table has no ``score`` / ``detail`` column.

:func:`per_prompt` computes them with polars group-bys (no loop over prompts);
:func:`quality_summary` averages them over the prompts of each (model, task, cot).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import polars as pl

from divtrace.errors import ContractError
from divtrace.quality.score import UNCLOSED

#: The k of the ``pass_at_{k}`` columns: the paper's k = 1, 5, 10, 16 (PAPER.md §6.2, for its
#: K = 16) and the powers of two up to 16.
PASS_KS: tuple[int, ...] = (1, 2, 4, 5, 8, 10, 16)

_GROUP = ["model", "task", "cot"]
_PROMPT = [*_GROUP, "prompt_id"]
METRIC_COLUMNS: list[str] = [
    "accuracy_at_1",
    "majority_at_k",
    *(f"pass_at_{k}" for k in PASS_KS),
    "extraction_rate",
    "mean_score",
    "unclosed_rate",
]
PER_PROMPT_COLUMNS: list[str] = [*_PROMPT, "n", "c", *METRIC_COLUMNS]
SUMMARY_COLUMNS: list[str] = [
    *_GROUP,
    "n_prompts",
    "n_samples",
    "samples_per_prompt",
    *METRIC_COLUMNS,
]
_COUNTS = {"n", "c", "n_prompts", "n_samples", "samples_per_prompt"}
PER_PROMPT_SCHEMA: dict[str, type[pl.DataType]] = {
    name: pl.String if name in _PROMPT else pl.Int64 if name in _COUNTS else pl.Float64
    for name in PER_PROMPT_COLUMNS
}
SUMMARY_SCHEMA: dict[str, type[pl.DataType]] = {
    name: pl.String if name in _GROUP else pl.Int64 if name in _COUNTS else pl.Float64
    for name in SUMMARY_COLUMNS
}

#: What :meth:`str.strip` strips (every character for which :meth:`str.isspace` holds).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: ``1 - C(n-c, k) / C(n, k)``."""
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def with_pass_at_k(prompts: pl.DataFrame, ks: Iterable[int]) -> pl.DataFrame:
    """``prompts`` (with integer columns ``n`` and ``c``) plus a ``pass_at_{k}`` column for each
    k (replacing one already there): :func:`pass_at_k` exactly, null where ``k > n``.

    Computed once per distinct ``(n, c)`` pair and joined, so the cost does not grow with the
    number of prompts.
    """
    ks = list(ks)
    if not ks:
        return prompts
    names = [f"pass_at_{k}" for k in ks]
    pairs = prompts.select(pl.col("n").cast(pl.Int64), pl.col("c").cast(pl.Int64))
    pairs = pairs.drop_nulls().unique().sort(["n", "c"])
    lookup = pairs.with_columns(
        pl.Series(
            name,
            [pass_at_k(n, c, k) if k <= n else None for n, c in pairs.iter_rows()],
            dtype=pl.Float64,
        )
        for name, k in zip(names, ks, strict=True)
    )
    base = prompts.drop([name for name in names if name in prompts.columns])
    keys = [pl.col("n").cast(pl.Int64).alias("_n"), pl.col("c").cast(pl.Int64).alias("_c")]
    joined = base.with_columns(keys).join(
        lookup.rename({"n": "_n", "c": "_c"}), on=["_n", "_c"], how="left", maintain_order="left"
    )
    return joined.drop("_n", "_c")


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


def per_prompt(quality: pl.DataFrame) -> pl.DataFrame:
    """One row per (model, task, cot, prompt_id): n, c, accuracy@1, majority@K, pass@k, extraction.

    Sorted by model, task, CoT mode and prompt id; the rules are those of the module docstring
    (:func:`majority_vote` for the majority answer, vectorised here).
    """
    missing = [c for c in [*_PROMPT, "sample", "correct", "extracted"] if c not in quality.columns]
    if missing:
        raise ContractError(f"quality table lacks column(s) {missing}")
    optional = [c for c in ("score", "detail") if c in quality.columns]
    # Each prompt's samples in sample order (ties: input order); ``_pos`` ranks them.
    rows = (
        quality.select(*_PROMPT, "sample", "correct", "extracted", *optional)
        .with_columns(pl.col("correct").cast(pl.Boolean), pl.col("extracted").cast(pl.String))
        .sort([*_PROMPT, "sample"], maintain_order=True, nulls_last=True)
        .with_row_index("_pos")
    )
    first_correct = pl.col("correct").sort_by("_pos").first()
    prompts = rows.group_by(_PROMPT).agg(
        n=pl.len().cast(pl.Int64),
        c=pl.col("correct").sum().cast(pl.Int64),
        accuracy_at_1=first_correct.cast(pl.Float64),
        extraction_rate=pl.col("extracted").is_not_null().mean().cast(pl.Float64),
        mean_score=(
            pl.col("score").cast(pl.Float64).fill_nan(None).mean()
            if "score" in optional
            else pl.lit(None, dtype=pl.Float64)
        ),
        unclosed_rate=(
            (pl.col("detail") == UNCLOSED).fill_null(False).cast(pl.Float64).mean()
            if "detail" in optional
            else pl.lit(None, dtype=pl.Float64)
        ),
    )
    # majority@K: tally the stripped answers; the winner has the most votes, then the earliest
    # first occurrence; its correctness is that of its first sample.
    votes = (
        rows.filter(pl.col("extracted").is_not_null())
        .with_columns(pl.col("extracted").str.strip_chars(WHITESPACE).alias("_answer"))
        .group_by([*_PROMPT, "_answer"])
        .agg(_votes=pl.len(), _first=pl.col("_pos").min(), _ok=first_correct)
    )
    winners = (
        votes.sort(["_votes", "_first"], descending=[True, False])
        .group_by(_PROMPT)
        .agg(majority_at_k=pl.col("_ok").first().cast(pl.Float64))
    )
    prompts = prompts.join(winners, on=_PROMPT, how="left", nulls_equal=True).with_columns(
        pl.col("majority_at_k").fill_null(0.0)
    )
    prompts = with_pass_at_k(prompts, PASS_KS)
    return (
        prompts.sort(_PROMPT, nulls_last=True)
        .select(PER_PROMPT_COLUMNS)
        .cast(dict(PER_PROMPT_SCHEMA))  # type: ignore[arg-type]
    )


def quality_summary(quality: pl.DataFrame) -> pl.DataFrame:
    """Per (model, task, cot): prompt and sample counts and the per-prompt metrics averaged.

    ``pass_at_k`` averages over the prompts with at least k samples and is null when none has;
    ``samples_per_prompt`` is the smallest n of the group. Sorted by model, task and CoT mode.
    """
    prompts = per_prompt(quality)
    summary = prompts.group_by(_GROUP).agg(
        pl.col(METRIC_COLUMNS).fill_nan(None).mean(),
        n_prompts=pl.len().cast(pl.Int64),
        n_samples=pl.col("n").sum(),
        samples_per_prompt=pl.col("n").min(),
    )
    return (
        summary.sort(_GROUP, nulls_last=True).select(SUMMARY_COLUMNS).cast(dict(SUMMARY_SCHEMA))  # type: ignore[arg-type]
    )
