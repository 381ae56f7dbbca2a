"""Answer classes of a verifiable task's outputs: how many different final answers a prompt got.

The text metrics cannot tell sixteen wordings of one answer from sixteen answers. These metrics
partition a prompt's outputs into classes of the same final answer, from the task's own judge
(:func:`class_keys`, one key per sample; two samples are in one class when their keys are
equal):

* GSM8K, MATH and CRUXEval: the answer class ``divtrace score`` already built for majority@K
  (the quality files' ``vote`` column, :mod:`divtrace.quality.votes`): the checker's
  equivalence, applied greedily against each class's first answer in sample order (the checker
  need not be transitive, so this order decides), and value equality for CRUXEval;
* IFEval: the vector of the judge's strict per-instruction verdicts (two responses that follow
  and break the same instructions are the same answer);
* a sample without an answer (nothing extracted, an unjudged unclosed trace): one class of its
  own, shared by all such samples of the prompt, as in majority@K.

* HumanEval and MBPP: the program's behaviour (:mod:`divtrace.quality.behaviour`: what it
  returns or raises on the tests' inputs and inputs derived from them), which needs the prompts
  with the tests and runs the programs in the sandbox, so ``divtrace diversity`` computes it
  (``--prompts``) and puts it into the same ``answer_class`` column; :func:`class_keys` has no
  keys of its own for them. A problem without literal test inputs has null keys (missing
  values).

Per set of outputs (per input only; across inputs the answers are to different questions):
``distinct_answers`` the number of classes, ``distinct_correct`` the number of classes among the
correct outputs, ``mode_share`` the share of the set in its largest class. In subset ``correct``
the set is the correct outputs, so there ``distinct_answers`` equals ``distinct_correct``. For
code, ``behaviours`` (a code-only metric name) is the number of classes of the set, that is the
distinct behaviours among all programs (subset ``all``) or among the correct ones (``correct``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import polars as pl

from divtrace.errors import ContractError
from divtrace.metrics import fixed_k
from divtrace.names import BEHAVIOUR_FAMILIES, CLASS_FAMILIES

#: The quality column holding each sample's answer class key (added by ``divtrace diversity``).
CLASS = "answer_class"
#: The key of every sample without an answer.
UNPARSED = "\x00unparsed"
#: Quality columns the keys are built from (each optional).
SOURCE_COLUMNS = ("vote", "extracted", "detail")


def _verdicts(detail: str | None) -> str | None:
    if detail is None:
        return None
    try:
        parsed = json.loads(detail)
        return "".join("1" if item["strict"] else "0" for item in parsed["instructions"])
    except (ValueError, KeyError, TypeError) as err:
        raise ContractError(
            f"IFEval quality detail without strict verdicts: {detail[:80]!r}"
        ) from err


def class_keys(quality: pl.DataFrame, family: str) -> pl.Series | None:
    """The answer-class key of every row of ``quality`` (one family's rows, in its order), or
    None for a family without answer classes, and for the code families, whose behaviour keys
    come from :mod:`divtrace.quality.behaviour` (module docstring)."""
    if family not in CLASS_FAMILIES or family in BEHAVIOUR_FAMILIES:
        return None
    if family == "ifeval":
        if "detail" not in quality.columns:
            raise ContractError("quality table lacks column 'detail' (IFEval verdicts)")
        keys = [_verdicts(d) for d in quality.get_column("detail").cast(pl.String).to_list()]
        series = pl.Series(CLASS, keys, dtype=pl.String)
    elif "vote" in quality.columns:
        series = quality.get_column("vote").cast(pl.String).alias(CLASS)
    else:
        from divtrace.quality.votes import vote_column

        if "extracted" not in quality.columns:
            raise ContractError("quality table lacks columns 'vote' and 'extracted'")
        series = vote_column(quality, family).alias(CLASS)
    return series.fill_null(UNPARSED)


def class_values(keys: Sequence[str], correct: Sequence[bool] | None) -> dict[str, float]:
    """``distinct_answers``, ``distinct_correct`` (NaN without judgements), ``mode_share`` and
    ``behaviours`` (the same count as ``distinct_answers``) of one set whose outputs have class
    ``keys``."""
    if not keys:
        return {
            "distinct_answers": np.nan,
            "distinct_correct": np.nan,
            "mode_share": np.nan,
            "behaviours": np.nan,
        }
    _, counts = np.unique(np.asarray(keys, dtype=object).astype(str), return_counts=True)
    right = (
        len({k for k, c in zip(keys, correct, strict=True) if c}) if correct is not None else np.nan
    )
    return {
        "distinct_answers": float(len(counts)),
        "distinct_correct": float(right),
        "mode_share": float(counts.max() / len(keys)),
        "behaviours": float(len(counts)),
    }


def class_values_at_k(
    keys: Sequence[str], correct: Sequence[bool] | None, k: int, seed: int
) -> dict[str, tuple[float, float]]:
    """The class metrics averaged over the k-subsets of the set: the distinct counts by the
    rarefaction sum (exact), the mode share over the subsets (:func:`fixed_k.subsets`)."""
    n = len(keys)
    labels, codes = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    sizes = np.bincount(codes, minlength=len(labels))
    distinct = fixed_k.rarefaction(sizes.tolist(), n, k)
    out: dict[str, tuple[float, float]] = {
        "distinct_answers": (distinct, np.nan),
        "behaviours": (distinct, np.nan),
    }
    if correct is not None:
        right = np.bincount(codes, weights=np.asarray(correct, dtype=float), minlength=len(labels))
        out["distinct_correct"] = (fixed_k.rarefaction(right.astype(int).tolist(), n, k), np.nan)
    chosen = fixed_k.subsets(n, k, seed)
    onehot = np.eye(len(labels), dtype=np.int64)[codes]
    shares = onehot[chosen.index].sum(axis=1).max(axis=1) / k
    out["mode_share"] = fixed_k.summarise(shares, chosen.exact)
    return out
