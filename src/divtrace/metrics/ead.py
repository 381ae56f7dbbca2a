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

The batched :func:`ead_many` scores many sets at once without Python sets of tuples: tokens are
mapped to integer ids, and each n-gram is given an exact dense integer code built from the code of
its (n-1)-gram prefix and its last token (which also carries the set index), so every distinct count
is one ``np.unique`` over a 1-D int64 array per n.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from divtrace.errors import MetricError

DEFAULT_VOCAB_SIZE = 50257
DEFAULT_N_MAX = 5

_INT64_LIMIT = np.iinfo(np.int64).max


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


def _pack(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Exact injective int64 code of the pairs (high, low) of non-negative ints."""
    base = int(low.max()) + 1 if low.size else 1
    top = int(high.max()) if high.size else 0
    if top > (_INT64_LIMIT - base) // base:  # pragma: no cover - needs > 3e9 tokens
        raise OverflowError("too many tokens to encode n-grams exactly in int64")
    return high.astype(np.int64) * base + low.astype(np.int64)


def ead_terms_many(
    groups: Sequence[Sequence[str]],
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    n_max: int = DEFAULT_N_MAX,
    *,
    tokenize_mode: str = DEFAULT_TOKENIZE,
) -> np.ndarray:
    """EAD_n of every set of texts in ``groups``: an array of shape (len(groups), n_max)."""
    _check_params(vocab_size, n_max)
    tokenize("", tokenize_mode)  # an unknown mode fails even for empty input
    n_groups = len(groups)
    out = np.zeros((n_groups, n_max), dtype=np.float64)
    tokens: list[str] = []
    lengths: list[int] = []
    text_group: list[int] = []
    for g, texts in enumerate(groups):
        if isinstance(texts, str):
            raise TypeError(f"EAD group {g} is a single string; expected a sequence of texts")
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"EAD group {g} holds a non-string text: {text!r}")
            toks = tokenize(text, tokenize_mode)
            tokens.extend(toks)
            lengths.append(len(toks))
            text_group.append(g)
    n_tokens = len(tokens)
    if n_tokens == 0:
        return out

    # An exact integer id per distinct token: the physical code of a categorical (injective).
    ids = pl.Series(tokens, dtype=pl.String).cast(pl.Categorical).to_physical().to_numpy()
    ids = ids.astype(np.int64)
    length_arr = np.asarray(lengths, dtype=np.int64)
    token_group = np.repeat(np.asarray(text_group, dtype=np.int64), length_arr)
    text_end = np.repeat(np.cumsum(length_arr), length_arr)
    # remaining[i]: tokens from position i to the end of its text, i included (>= 1).
    remaining = text_end - np.arange(n_tokens, dtype=np.int64)

    positions = np.arange(n_tokens, dtype=np.int64)  # start positions of valid n-grams
    code = token_group  # code of the (n-1)-gram (with its group) at each start position
    for n in range(1, n_max + 1):
        if n > 1:
            keep = remaining[positions] >= n
            positions = positions[keep]
            code = code[keep]
            if positions.size == 0:
                break
        key = _pack(code, ids[positions + n - 1])
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        code = inverse.reshape(-1).astype(np.int64)
        grp = token_group[positions]
        total = np.bincount(grp, minlength=n_groups)
        unique = np.bincount(grp[first], minlength=n_groups)
        out[:, n - 1] = ead_term(unique, total, int(vocab_size))
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
