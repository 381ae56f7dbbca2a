"""Answer classes for majority@K: which extracted answers of a prompt are the same answer.

A task family whose vote has a meaning names an answer ``equivalence`` (:attr:`TaskFamily.equivalence
<divtrace.tasks.base.TaskFamily>`: math-verify equivalence for GSM8K and MATH, output equality for
CRUXEval). The classes of one prompt's answers are built greedily (:func:`answer_classes`).

``divtrace score`` computes them once per run, where the judge already runs (one job per model,
task and CoT mode, in parallel), and writes each sample's class as the column :data:`VOTE` of the
quality file: the first answer of its class, stripped (null for a sample with no extracted answer,
and for every sample of a family without votes). :func:`divtrace.quality.metrics.per_prompt` then
counts votes by that column with polars alone, and computes the classes itself only for a table
without it (a hand-made table, a file written before the column existed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import polars as pl

#: The quality column holding each sample's answer class (optional; see the module docstring).
VOTE = "vote"
#: What :meth:`str.strip` strips (every character for which :meth:`str.isspace` holds).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

#: Whether two extracted answers are the same answer (a family's ``equivalence``).
Equivalence = Callable[[str, str], bool]


def family_equivalence(family: str) -> Equivalence | None:
    """The answer equivalence of task family ``family`` (:attr:`TaskFamily.equivalence
    <divtrace.tasks.base.TaskFamily>`), imported; None where a vote has no meaning (the family has
    none, or is not a registered family)."""
    from divtrace.tasks import FAMILIES

    spec = FAMILIES.get(family)
    if spec is None or not spec.votes or spec.equivalence is None:
        return None
    module_name, _, attribute = spec.equivalence.partition(":")
    return cast(Equivalence, getattr(importlib.import_module(module_name), attribute))


def answer_classes(
    answers: Sequence[str],
    same: Equivalence,
    cache: dict[tuple[str, str], bool] | None = None,
) -> list[int]:
    """The class of each of ``answers`` (distinct, in order of first occurrence), built greedily:
    an answer joins the first class whose first answer ``r`` has ``same(r, answer)``, else starts
    a new class. Classes are numbered in order of creation. ``cache`` holds (and is filled with)
    verdicts of ``same`` already known."""
    firsts: list[str] = []
    classes: list[int] = []
    for answer in answers:
        for index, first in enumerate(firsts):
            key = (first, answer)
            if cache is None:
                match = first == answer or same(first, answer)
            elif key in cache:
                match = cache[key]
            else:
                match = cache[key] = first == answer or same(first, answer)
            if match:
                classes.append(index)
                break
        else:
            firsts.append(answer)
            classes.append(len(firsts) - 1)
    return classes


def vote_column(quality: pl.DataFrame, family: str) -> pl.Series:
    """The :data:`VOTE` column of ``quality`` (one family's rows; ``model, task, cot, prompt_id,
    sample, extracted``): each sample's answer class, in ``quality``'s row order."""
    same = family_equivalence(family)
    if same is None or quality.is_empty():
        return pl.Series(VOTE, [None] * quality.height, dtype=pl.String)
    keys = ["model", "task", "cot", "prompt_id"]
    rows = quality.with_row_index("_row").with_columns(
        pl.col("extracted").cast(pl.String).str.strip_chars(WHITESPACE).alias("_answer")
    )
    distinct = (
        rows.filter(pl.col("_answer").is_not_null())
        .group_by([*keys, "_answer"])
        .agg(_first=pl.col("sample").min())
        .sort([*keys, "_first"])
        .group_by(keys, maintain_order=True)
        .agg(pl.col("_answer"))
    )
    lookup = class_lookup(distinct, keys, {task: same for task in distinct["task"].unique()}, VOTE)
    joined = rows.with_columns(pl.col(keys).cast(pl.String)).join(
        lookup, on=[*keys, "_answer"], how="left", nulls_equal=False, maintain_order="left"
    )
    return joined.sort("_row").get_column(VOTE)


def class_lookup(
    distinct: pl.DataFrame, keys: Sequence[str], same_of: Mapping[str, Equivalence], name: str
) -> pl.DataFrame:
    """Each distinct answer's class, as the first answer of its class (:func:`answer_classes`).

    ``distinct``: one row per prompt, ``keys`` (with ``task`` and ``prompt_id``) and ``_answer``,
    the prompt's distinct answers in order of first occurrence; ``same_of``: the equivalence of
    each task. Returns ``keys, _answer, name`` (all strings), a row per answer. The verdicts of
    the equivalence are shared by the rows of one prompt (its models and CoT modes)."""
    mapped: dict[str, list[object]] = {column: [] for column in [*keys, "_answer", name]}
    caches: dict[tuple[object, object], dict[tuple[str, str], bool]] = {}
    for row in distinct.iter_rows(named=True):
        answers: list[str] = row["_answer"]
        if len(answers) > 1:
            cache = caches.setdefault((row["task"], row["prompt_id"]), {})
            classes = answer_classes(answers, same_of[row["task"]], cache)
        else:
            classes = [0] * len(answers)
        for answer, index in zip(answers, classes, strict=True):
            for column in keys:
                mapped[column].append(row[column])
            mapped["_answer"].append(answer)
            mapped[name].append(answers[classes.index(index)])
    return pl.DataFrame(mapped, schema=dict.fromkeys([*keys, "_answer", name], pl.String))
