"""Expectation-Adjusted Distinct n-grams (EAD; Liu et al. 2022), docs/design.md §5.

For a set S of texts, each text is cut into tokens by one of two rules (``tokenize``, the config
key ``metrics.ead_tokenize``):

* ``"words"``: whitespace tokens (``str.split()``), so a newline separates two words like a space;
* ``"paper"``: the paper's code: every ``.`` and every newline is deleted, then ``str.split()``.
  Deleting (not replacing) the newline fuses the last word of a line with the first of the next
  (``"end\nStart"`` becomes one token ``"endStart"``), and ``3.5`` becomes ``35``; divtrace
  reproduces this on purpose, for comparison with the paper's numbers.

For each n in 1..n_max, U_n is the number of distinct n-grams and C_n the total number of
n-grams pooled over S (n-grams never span two texts), and

    EAD_n = U_n / (V * (1 - ((V - 1) / V) ** C_n))

clipped to [0, 1]; an n with C_n == 0 contributes 0. EAD is the mean of EAD_n over n = 1..n_max.
V defaults to 50257, the value the paper's code effectively used.

The batched :func:`ead_many` scores many sets at once without Python sets of tuples or Python
token lists: the texts are cut in polars (the same tokens as ``str.split()``, whitespace as Python
defines it, checked over every code point in the tests), each distinct token gets an exact integer
id, and for each n one polars group-by counts, per set, the n-grams and the distinct tuples of n
token ids (``n_unique`` of a struct: exact, hashed, on every core).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from divtrace.errors import MetricError

DEFAULT_VOCAB_SIZE = 50257
DEFAULT_N_MAX = 5


TOKENIZERS: tuple[str, ...] = ("words", "paper")
DEFAULT_TOKENIZE = "words"
_PAPER_DELETE = str.maketrans("", "", ".\n")


def tokenize(text: str, mode: str = DEFAULT_TOKENIZE) -> list[str]:
    """The EAD tokens of ``text`` under ``mode`` (``"words"`` or ``"paper"``, module docstring)."""
    if mode == "paper":
        text = text.translate(_PAPER_DELETE)
    elif mode != "words":
        raise MetricError(
            f"unknown EAD tokenisation {mode!r} (metrics.ead_tokenize, --ead-tokenize); "
            f"choose one of {', '.join(TOKENIZERS)}"
        )
    return text.split()


def _check_params(vocab_size: int, n_max: int) -> None:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)):
        raise TypeError(f"EAD vocab_size must be an integer, got {vocab_size!r}")
    if vocab_size < 1:
        raise MetricError(
            f"EAD vocab_size (metrics.ead_vocab_size, --ead-vocab-size) must be >= 1, "
            f"got {vocab_size}"
        )
    if isinstance(n_max, bool) or not isinstance(n_max, (int, np.integer)) or n_max < 1:
        raise ValueError(f"EAD n_max must be an integer >= 1, got {n_max!r}")


def ead_term(unique: np.ndarray, total: np.ndarray, vocab_size: int) -> np.ndarray:
    """Element-wise EAD_n from distinct counts ``unique`` and totals ``total`` (0 where total == 0)."""
    u = np.asarray(unique, dtype=np.float64)
    c = np.asarray(total, dtype=np.float64)
    positive = c > 0
    # V * (1 - ((V-1)/V) ** C), computed as -V * expm1(C * log1p(-1/V)) for accuracy at large V.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        expected = -vocab_size * np.expm1(np.where(positive, c, 1.0) * np.log1p(-1.0 / vocab_size))
        term = np.where(positive, u / expected, 0.0)
    return np.clip(term, 0.0, 1.0)


# Python's str.split() cuts at every character for which str.isspace() is true: the Unicode
# White_Space characters (the regex class \s) and the four ASCII separators \x1c-\x1f.
_SPACE_RUN = r"[\s\x1c-\x1f]+"
# A text that ``split(" ")`` would not cut like ``split()``: other whitespace, a double space, or a
# space at either end. Only these texts are rewritten (whitespace runs to one space) before the cut.
_ODD_SPACING = r"[^\S ]|[\x1c-\x1f]|  |^ | $"


def token_ids(texts: Sequence[str], mode: str = DEFAULT_TOKENIZE) -> tuple[np.ndarray, np.ndarray]:
    """The EAD tokens of every text in ``texts`` as exact integer ids, pooled in text order (one
    id per distinct token), and the number of tokens of each text: the tokens of
    :func:`tokenize`, cut in polars."""
    tokenize("", mode)  # an unknown mode fails even for empty input
    series = pl.Series(list(texts), dtype=pl.String)
    if mode == "paper":
        series = series.str.replace_all(r"[.\n]", "")
    odd = series.str.contains(_ODD_SPACING)
    if odd.any():
        cleaned = series.str.replace_all(_SPACE_RUN, " ").str.strip_chars(" ")
        series = pl.select(pl.when(odd).then(cleaned).otherwise(series)).to_series()
    pieces = series.str.split(" ")
    # An empty text splits into one empty piece; no other text has one (spacing is normal now).
    lengths = pl.select(pl.when(series == "").then(0).otherwise(pieces.list.len())).to_series()
    tokens = pieces.explode()
    tokens = tokens.filter(tokens.is_not_null() & (tokens != ""))
    ids = tokens.cast(pl.Categorical).to_physical().to_numpy()
    return ids, lengths.to_numpy().astype(np.int64)


def _check_groups(groups: Sequence[Sequence[str]]) -> None:
    for g, texts in enumerate(groups):
        if isinstance(texts, str):
            raise TypeError(f"EAD group {g} is a single string; expected a sequence of texts")
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"EAD group {g} holds a non-string text: {text!r}")


def ead_terms_many(
    groups: Sequence[Sequence[str]],
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    n_max: int = DEFAULT_N_MAX,
    *,
    tokenize_mode: str = DEFAULT_TOKENIZE,
) -> np.ndarray:
    """EAD_n of every set of texts in ``groups``: an array of shape (len(groups), n_max)."""
    _check_params(vocab_size, n_max)
    _check_groups(groups)
    n_groups = len(groups)
    out = np.zeros((n_groups, n_max), dtype=np.float64)
    texts = [text for group in groups for text in group]
    ids, lengths = token_ids(texts, tokenize_mode)
    n_tokens = ids.size
    if n_tokens == 0:
        return out
    # Narrow integer columns: the group-by hashes rows of them (UInt32 ids, as polars gives them).
    text_group = np.repeat(np.arange(n_groups, dtype=np.uint32), [len(g) for g in groups])
    token_group = np.repeat(text_group, lengths)
    # remaining[i]: tokens from position i to the end of its text, i included (>= 1); the n-gram
    # starting at i lies inside one text when remaining[i] >= n.
    remaining = np.repeat(np.cumsum(lengths), lengths) - np.arange(n_tokens, dtype=np.int64)
    id_series = pl.Series(ids)
    columns: dict[str, Any] = {"set": token_group}
    for offset in range(n_max):  # t{offset}: the token `offset` places after the start
        columns[f"t{offset}"] = id_series.shift(-offset) if offset else id_series
    frame = pl.DataFrame(columns)
    for n in range(1, n_max + 1):
        starts = frame if n == 1 else frame.filter(pl.Series(remaining >= n))
        if starts.height == 0:
            break
        counts = starts.group_by("set").agg(
            pl.len().alias("total"),
            pl.struct([f"t{offset}" for offset in range(n)]).n_unique().alias("unique"),
        )
        sets = counts["set"].to_numpy()
        out[sets, n - 1] = ead_term(
            counts["unique"].to_numpy(), counts["total"].to_numpy(), int(vocab_size)
        )
    return out


def ead_many(
    groups: Sequence[Sequence[str]],
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    n_max: int = DEFAULT_N_MAX,
    *,
    tokenize_mode: str = DEFAULT_TOKENIZE,
) -> np.ndarray:
    """EAD (mean of EAD_n over n = 1..n_max) of every set of texts in ``groups``."""
    terms = ead_terms_many(groups, vocab_size, n_max, tokenize_mode=tokenize_mode)
    return terms.mean(axis=1) if terms.size else np.zeros(len(groups), dtype=np.float64)


def ead(
    texts: Sequence[str],
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    n_max: int = DEFAULT_N_MAX,
    *,
    tokenize_mode: str = DEFAULT_TOKENIZE,
) -> float:
    """EAD of one set of texts."""
    return float(ead_many([texts], vocab_size, n_max, tokenize_mode=tokenize_mode)[0])
