"""Quality metrics over a QUALITY table (docs/design.md §6): accuracy@1, majority@K, pass@k.

Per prompt, with n samples of which c are correct:

- ``accuracy_at_1``: whether the prompt's sample 0 (its lowest sample index) is correct;
- ``majority_at_k``: whether the majority answer among the prompt's samples is correct (the
  paper's rules, PAPER.md §6.1, with answers grouped by equivalence):

  * the votes are the ``extracted`` answers, surrounding whitespace stripped, grouped into
    classes by the task family's answer equivalence (:attr:`TaskFamily.equivalence
    <divtrace.tasks.base.TaskFamily>`: math-verify equivalence for GSM8K and MATH, so ``1,000``
    and ``1000``, ``18.00`` and ``18``, ``\\frac{1}{2}`` and ``0.5`` vote together; output
    equality for CRUXEval). The classes are built greedily (:func:`answer_classes`): the distinct
    answers in order of first occurrence (by sample index), each joining the first class whose
    first answer is equivalent to it (``same(first, answer)``, the first answer in the gold's
    place), else starting a new class;
  * samples with no extracted answer vote together, as one class that is never correct;
  * the class with the most votes wins; a tie for the top (the unparsed class included) counts as
    incorrect, and so does a win of the unparsed class;
  * the winner's correctness is that of its first (lowest-index) sample. Its answers are
    equivalent, so their ``correct`` values should agree; if the checker is not transitive (e.g.
    ``10\\%`` matches both ``10`` and ``0.1``) they can disagree, and the first sample decides;
  * a task whose family has no answer equivalence (HumanEval, MBPP, IFEval, TruthfulQA, or a task
    whose family is unknown): the vote has no meaning, ``majority_at_k`` is null (missing), and
    so is its average;

- ``pass_at_{k}`` for each k of :data:`PASS_KS` (1, 2, 4, 5, 8, 10, 16: the paper's 1, 5, 10, 16
  and the powers of two): the unbiased estimator ``1 - C(n - c, k) / C(n, k)`` (Chen et al.,
  2021), for k ≤ n only (null otherwise);
- ``extraction_rate``: the fraction of samples with an extracted answer;
- ``mean_score``: the mean graded score; ``unclosed_rate``: the fraction of samples whose
  reasoning trace never closed (judged incorrect, see :mod:`divtrace.quality.score`); null when
  the table has no ``score`` / ``detail`` column;
- IFEval tasks only (null for others; needs the ``detail`` column), on sample 0 as accuracy@1,
  from the per-instruction verdicts the IFEval judge writes in ``detail``
  (:mod:`divtrace.quality.ifeval`: the official strict check, and the official loose one, which
  also tries the response without its first and/or last line and without ``*``):
  ``n_instructions``, ``n_followed_strict``, ``n_followed_loose`` and ``ifeval_prompt_strict`` /
  ``ifeval_prompt_loose`` (1.0 when every instruction is followed). A sample 0 the judge did not
  see (an unclosed reasoning trace) followed nothing; the prompt's instruction count is then its
  other samples' (null if none was judged). ``ifeval_prompt_strict`` equals ``accuracy_at_1``:
  the judge's ``correct`` is strict prompt-level following (checked).

In the summary (:func:`quality_summary`) each metric is the mean over the prompts, except the
instruction-level IFEval accuracies ``ifeval_instruction_strict`` / ``ifeval_instruction_loose``:
instructions followed over all instructions, summed over the prompts (the official micro-average;
prompts with an unknown count left out).

A quality table names tasks, not families: ``families`` (task → family name; what ``divtrace
score`` records in each quality file's metadata) says which family a task is, and a task it does
not name is taken to be the family of the same name (the config's default).

:func:`per_prompt` computes them with polars group-bys. The answer classes come from the quality
table's ``vote`` column, which ``divtrace score`` writes (:mod:`divtrace.quality.votes`: the
equivalence runs once per run, in the parallel scoring jobs); only a table without it makes
per_prompt group the distinct answers itself (in Python, cached per prompt across models and CoT
modes). :func:`quality_summary` averages them over the prompts of each
(model, task, cot).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping, Sequence

import polars as pl

from divtrace.errors import ContractError
from divtrace.quality.score import UNCLOSED
from divtrace.quality.votes import (
    VOTE,
    WHITESPACE,
    Equivalence,
    answer_classes,
    class_lookup,
    family_equivalence,
)

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
#: Per prompt, of IFEval tasks only (null for others): sample 0's instruction counts and whether
#: it followed every instruction, strictly and loosely.
IFEVAL_PROMPT_COLUMNS: list[str] = [
    "n_instructions",
    "n_followed_strict",
    "n_followed_loose",
    "ifeval_prompt_strict",
    "ifeval_prompt_loose",
]
#: Per (model, task, cot), of IFEval tasks only: the official IFEval accuracies, on sample 0.
IFEVAL_COLUMNS: list[str] = [
    "ifeval_prompt_strict",
    "ifeval_prompt_loose",
    "ifeval_instruction_strict",
    "ifeval_instruction_loose",
]
PER_PROMPT_COLUMNS: list[str] = [*_PROMPT, "n", "c", *METRIC_COLUMNS, *IFEVAL_PROMPT_COLUMNS]
SUMMARY_COLUMNS: list[str] = [
    *_GROUP,
    "n_prompts",
    "n_samples",
    "samples_per_prompt",
    *METRIC_COLUMNS,
    *IFEVAL_COLUMNS,
]
_COUNTS = {
    "n",
    "c",
    "n_prompts",
    "n_samples",
    "samples_per_prompt",
    "n_instructions",
    "n_followed_strict",
    "n_followed_loose",
}
PER_PROMPT_SCHEMA: dict[str, type[pl.DataType]] = {
    name: pl.String if name in _PROMPT else pl.Int64 if name in _COUNTS else pl.Float64
    for name in PER_PROMPT_COLUMNS
}
SUMMARY_SCHEMA: dict[str, type[pl.DataType]] = {
    name: pl.String if name in _GROUP else pl.Int64 if name in _COUNTS else pl.Float64
    for name in SUMMARY_COLUMNS
}


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


def _missing(answer: object) -> bool:
    return answer is None or (isinstance(answer, float) and math.isnan(answer))


def majority_vote(
    samples: Sequence[int],
    extracted: Sequence[str | None],
    correct: Sequence[bool],
    same: Equivalence | None = None,
) -> tuple[str | None, bool]:
    """The majority answer of one prompt's samples and whether it is correct (rules above).

    ``same`` is the answer equivalence (None: the stripped strings must be equal). Returns the
    winning class's first answer (None when the unparsed class wins or the top is tied) and
    whether the vote is correct. The reference implementation of :func:`per_prompt`'s vote.
    """
    ordered = sorted(zip(samples, extracted, correct, strict=True), key=lambda t: t[0])
    parsed = [(str(a).strip(), bool(ok)) for _s, a, ok in ordered if not _missing(a)]
    unparsed = len(ordered) - len(parsed)
    distinct = list(dict.fromkeys(answer for answer, _ok in parsed))
    classes = answer_classes(distinct, same or operator.eq)
    class_of = dict(zip(distinct, classes, strict=True))
    votes: dict[int, int] = {}
    first_ok: dict[int, bool] = {}
    for answer, ok in parsed:
        index = class_of[answer]
        votes[index] = votes.get(index, 0) + 1
        first_ok.setdefault(index, ok)
    top = max(votes.values(), default=0)
    leaders = [index for index, count in votes.items() if count == top]
    if unparsed >= top or len(leaders) > 1:  # the unparsed class wins or ties, or a tie
        return None, False
    return distinct[classes.index(leaders[0])], first_ok[leaders[0]]


def family_of(task: str, families: Mapping[str, str] | None = None) -> str:
    """The family of ``task``: ``families[task]``, else the task's own name (the config default)."""
    return (families or {}).get(task, task)


def _majority(
    rows: pl.DataFrame, same_of: Mapping[str, Equivalence], classified: bool = False
) -> pl.DataFrame:
    """``majority_at_k`` per prompt of ``rows`` (the tasks of ``same_of`` only; columns
    ``_PROMPT, _pos, correct, extracted``, and :data:`~divtrace.quality.votes.VOTE` when
    ``classified``), by the rules of the module docstring. ``classified``: the answer classes are
    the ``vote`` column (as ``divtrace score`` wrote them), no equivalence is called."""
    first_correct = pl.col("correct").sort_by("_pos").first()
    vote = pl.col(VOTE) if classified else pl.col("extracted").str.strip_chars(WHITESPACE)
    answers = rows.with_columns(vote.alias("_answer"))
    distinct = (
        answers.filter(pl.col("_answer").is_not_null())
        .group_by([*_PROMPT, "_answer"])
        .agg(_votes=pl.len(), _first=pl.col("_pos").min(), _ok=first_correct)
    )
    # Only prompts with two or more distinct answers need the equivalence (class_lookup shares
    # the verdicts between the answers of one prompt across its models and CoT modes).
    several = (
        distinct.group_by(_PROMPT)
        .agg(pl.col("_answer").sort_by("_first"), _distinct=pl.len())
        .filter((pl.col("_distinct") > 1) & pl.lit(not classified))
    )
    classes = class_lookup(several, _PROMPT, same_of, "_class")
    voted = (
        distinct.join(classes, on=[*_PROMPT, "_answer"], how="left", nulls_equal=True)
        .with_columns(pl.col("_class").fill_null(pl.col("_answer")))
        .group_by([*_PROMPT, "_class"])
        .agg(_votes=pl.col("_votes").sum(), _ok=pl.col("_ok").sort_by("_first").first())
        .select(*_PROMPT, pl.col("_votes").cast(pl.Int64), pl.col("_ok").cast(pl.Boolean))
    )
    unparsed = (
        answers.filter(pl.col("_answer").is_null())
        .group_by(_PROMPT)
        .agg(_votes=pl.len().cast(pl.Int64))
        .with_columns(_ok=pl.lit(False))
    )
    top = pl.col("_votes") == pl.col("_votes").max()
    return (
        pl.concat([voted, unparsed.select(voted.columns)])
        .group_by(_PROMPT)
        .agg(_leaders=top.sum(), _leader_ok=pl.col("_ok").filter(top).first())
        .select(
            *_PROMPT,
            majority_at_k=((pl.col("_leaders") == 1) & pl.col("_leader_ok")).cast(pl.Float64),
        )
    )


def per_prompt(quality: pl.DataFrame, families: Mapping[str, str] | None = None) -> pl.DataFrame:
    """One row per (model, task, cot, prompt_id): n, c, accuracy@1, majority@K, pass@k, extraction.

    Sorted by model, task, CoT mode and prompt id; the rules are those of the module docstring
    (:func:`majority_vote` for the majority answer, vectorised here). ``families``: task → task
    family (a task not in it is the family of its name).
    """
    missing = [c for c in [*_PROMPT, "sample", "correct", "extracted"] if c not in quality.columns]
    if missing:
        raise ContractError(f"quality table lacks column(s) {missing}")
    optional = [c for c in ("score", "detail", VOTE) if c in quality.columns]
    # Each prompt's samples in sample order (ties: input order); ``_pos`` ranks them.
    rows = (
        quality.select(*_PROMPT, "sample", "correct", "extracted", *optional)
        .with_columns(
            pl.col(_PROMPT).cast(pl.String),
            pl.col("correct").cast(pl.Boolean),
            pl.col("extracted").cast(pl.String),
        )
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
    same_of = {
        task: same
        for task in rows.get_column("task").drop_nulls().unique().to_list()
        if (same := family_equivalence(family_of(task, families))) is not None
    }
    votable = rows.filter(pl.col("task").is_in(list(same_of)))
    # The classes ``divtrace score`` wrote, where every voting row has them (a parsed answer
    # always has a class there); else computed here.
    classified = (
        VOTE in optional
        and votable.filter(pl.col("extracted").is_not_null() & pl.col(VOTE).is_null()).is_empty()
    )
    if VOTE in optional:
        rows = rows.with_columns(pl.col(VOTE).cast(pl.String))
        votable = votable.with_columns(pl.col(VOTE).cast(pl.String))
    majority = _majority(votable, same_of, classified)
    prompts = prompts.join(majority, on=_PROMPT, how="left", nulls_equal=True)
    ifeval = [
        task
        for task in rows.get_column("task").drop_nulls().unique().to_list()
        if family_of(task, families) == IFEVAL_FAMILY
    ]
    if ifeval and "detail" in optional:
        counts = _ifeval_counts(rows.filter(pl.col("task").is_in(ifeval)))
        prompts = prompts.join(counts, on=_PROMPT, how="left", nulls_equal=True)
    else:
        prompts = prompts.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(name) for name in IFEVAL_PROMPT_COLUMNS
        )
    prompts = with_pass_at_k(prompts, PASS_KS)
    return (
        prompts.sort(_PROMPT, nulls_last=True)
        .select(PER_PROMPT_COLUMNS)
        .cast(dict(PER_PROMPT_SCHEMA))  # type: ignore[arg-type]
    )


IFEVAL_FAMILY = "ifeval"

#: What the IFEval judge writes in ``detail`` (quality.ifeval.judge_ifeval), as far as read here.
_IFEVAL_DETAIL = pl.Struct(
    {
        "instructions": pl.List(pl.Struct({"strict": pl.Boolean, "loose": pl.Boolean})),
        "follow_all_strict": pl.Boolean,
        "follow_all_loose": pl.Boolean,
    }
)


def _ifeval_counts(rows: pl.DataFrame) -> pl.DataFrame:
    """Per prompt of ``rows`` (IFEval tasks; ``_PROMPT, _pos, correct, detail``):
    :data:`IFEVAL_PROMPT_COLUMNS`.

    A sample whose ``detail`` is the judge's JSON gives its per-instruction strict and loose
    verdicts; an unclosed reasoning trace (judged incorrect without the judge) followed no
    instruction; a sample 0 with neither (a table without the judge's details) leaves the
    prompt-level columns null. A prompt's instruction count is sample 0's, or, when sample 0 has no
    verdicts, that of its other samples (null when none has any). Raises :class:`ContractError`
    where ``correct`` is not "every instruction followed, strictly" or the samples of a prompt
    disagree on the number of instructions.
    """
    try:
        judged = rows.filter(pl.col("detail").str.starts_with("{")).select(
            "_pos", _verdicts=pl.col("detail").str.json_decode(_IFEVAL_DETAIL)
        )
    except pl.exceptions.PolarsError as err:
        raise ContractError(
            f"an IFEval quality row's detail is not the judge's JSON: {err}"
        ) from err
    instructions = pl.col("_verdicts").struct.field("instructions")
    per_sample = rows.join(judged, on="_pos", how="left").with_columns(
        _n=instructions.list.len().cast(pl.Int64),
        _strict=instructions.list.eval(pl.element().struct.field("strict")).list.sum(),
        _loose=instructions.list.eval(pl.element().struct.field("loose")).list.sum(),
    )
    # A sample with the judge's verdicts is checked against them; an unclosed one (never
    # judged) cannot be correct; a row without any detail (a hand-made table) is not checked.
    bad = per_sample.filter(
        pl.when(pl.col("_n").is_not_null())
        .then((pl.col("_strict") == pl.col("_n")) != pl.col("correct"))
        .otherwise(pl.col("correct") & (pl.col("detail") == UNCLOSED).fill_null(False))
    )
    if bad.height:
        row = bad.row(0, named=True)
        raise ContractError(
            f"IFEval prompt {row['prompt_id']!r} ({row['model']}, cot {row['cot']}): a sample's "
            f"'correct' ({row['correct']}) is not whether it followed every instruction strictly"
        )
    counts = per_sample.group_by(_PROMPT).agg(
        _first_n=pl.col("_n").sort_by("_pos").first(),
        _any_n=pl.col("_n").drop_nulls().first(),
        _counts=pl.col("_n").drop_nulls().n_unique(),
        n_followed_strict=pl.col("_strict").sort_by("_pos").first().cast(pl.Int64),
        n_followed_loose=pl.col("_loose").sort_by("_pos").first().cast(pl.Int64),
        _first_unclosed=(pl.col("detail") == UNCLOSED).fill_null(False).sort_by("_pos").first(),
    )
    if (counts.get_column("_counts") > 1).any():
        row = counts.filter(pl.col("_counts") > 1).row(0, named=True)
        raise ContractError(
            f"IFEval prompt {row['prompt_id']!r}: its samples have different numbers of instructions"
        )
    n = pl.col("n_instructions")
    judged_first = pl.col("_first_n").is_not_null()
    return counts.with_columns(n_instructions=pl.coalesce("_first_n", "_any_n")).select(
        *_PROMPT,
        n,
        *(
            pl.when(judged_first).then(pl.col(name)).when(n.is_not_null()).then(0).alias(name)
            for name in ("n_followed_strict", "n_followed_loose")
        ),
        # sample 0 judged: its verdicts; an unclosed sample 0 followed nothing; otherwise (a row
        # without the judge's details) nothing is known: null
        *(
            pl.when(judged_first)
            .then((pl.col(f"n_followed_{kind}") == n).cast(pl.Float64))
            .when(pl.col("_first_unclosed"))
            .then(0.0)
            .alias(f"ifeval_prompt_{kind}")
            for kind in ("strict", "loose")
        ),
    )


def ifeval_summary() -> list[pl.Expr]:
    """Aggregations (over a group of per-prompt rows) giving :data:`IFEVAL_COLUMNS`.

    Prompt level: the fraction of prompts whose sample 0 followed every instruction. Instruction
    level: the instructions sample 0 followed over all instructions, summed over the prompts
    (a micro-average, as the official IFEval's). Null for a group with no IFEval prompt.
    """
    known = pl.col("n_instructions").is_not_null()
    total = pl.col("n_instructions").filter(known).sum()
    return [
        pl.col("ifeval_prompt_strict").cast(pl.Float64).mean(),
        pl.col("ifeval_prompt_loose").cast(pl.Float64).mean(),
        *(
            pl.when(total > 0)
            .then(pl.col(f"n_followed_{kind}").filter(known).sum() / total)
            .otherwise(None)
            .cast(pl.Float64)
            .alias(f"ifeval_instruction_{kind}")
            for kind in ("strict", "loose")
        ),
    ]


def quality_summary(
    quality: pl.DataFrame, families: Mapping[str, str] | None = None
) -> pl.DataFrame:
    """Per (model, task, cot): prompt and sample counts and the per-prompt metrics averaged.

    ``pass_at_k`` averages over the prompts with at least k samples and is null when none has;
    ``majority_at_k`` is null for a task without a meaningful vote; ``samples_per_prompt`` is the
    smallest n of the group. Sorted by model, task and CoT mode. ``families`` as in
    :func:`per_prompt`.
    """
    prompts = per_prompt(quality, families)
    summary = prompts.group_by(_GROUP).agg(
        pl.col(METRIC_COLUMNS).fill_nan(None).mean(),
        *ifeval_summary(),
        n_prompts=pl.len().cast(pl.Int64),
        n_samples=pl.col("n").sum(),
        samples_per_prompt=pl.col("n").min(),
    )
    return (
        summary.sort(_GROUP, nulls_last=True).select(SUMMARY_COLUMNS).cast(dict(SUMMARY_SCHEMA))  # type: ignore[arg-type]
    )
