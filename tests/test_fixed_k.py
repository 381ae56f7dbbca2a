"""Diversity at a fixed set size k (divtrace.metrics.fixed_k) against brute force over subsets."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import polars as pl
import pytest

from divtrace.errors import MetricError
from divtrace.metrics import compute_diversity, ead_many, fixed_k, sbert_diversity, vendi_score
from divtrace.metrics.code import distinct, mean_pairwise, presence, programs

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "dog",
    "ran",
    "far",
    "and",
    "then",
    "came",
    "back",
    "home",
    "quickly",
    "slowly",
]


def texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)]


def unit(n: int, dim: int, seed: int) -> np.ndarray:
    e = np.random.default_rng(seed).normal(size=(n, dim))
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def brute(n: int, k: int, fn) -> float:
    return float(np.mean([fn(list(c)) for c in itertools.combinations(range(n), k)]))


def renyi_vendi(emb: np.ndarray, q: float) -> float:
    """Vendi of order q written out: the Rényi entropy of K / n's eigenvalues, exponentiated."""
    lam = np.clip(np.linalg.eigvalsh(emb @ emb.T / len(emb)), 0, None)
    lam = lam[lam > 1e-12]
    if q == 1:
        return float(np.exp(-(lam * np.log(lam)).sum()))
    if math.isinf(q):
        return float(1 / lam.max())
    return float((lam**q).sum() ** (1 / (1 - q)))


@pytest.mark.parametrize("k", [2, 3, 5, 7])
def test_ead_at_k_equals_brute_force(k):
    outs = texts(8, k)
    grams = fixed_k.ngram_presence([t.split() for t in outs], 5)
    got, se = fixed_k.ead_at_k(grams, k, 50, seed=1)
    want = brute(8, k, lambda c: float(ead_many([[outs[i] for i in c]], 50)[0]))
    assert got == pytest.approx(want, rel=1e-12)
    assert math.isnan(se)  # C(8, k) <= 20,000: enumerated


def test_pooled_counts_without_bitmasks_agree(monkeypatch):
    outs = texts(9, 3)
    tokens = [t.split() for t in outs]
    want = fixed_k.ead_at_k(fixed_k.ngram_presence(tokens, 5), 4, 50, seed=1)[0]
    monkeypatch.setattr(fixed_k, "MAX_MASK_OUTPUTS", 2)
    got = fixed_k.ead_at_k(fixed_k.ngram_presence(tokens, 5), 4, 50, seed=1)[0]
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("q", [0.5, 1.0, 2.0, math.inf])
@pytest.mark.parametrize("k", [2, 4, 6])
def test_vendi_at_k_equals_brute_force(k, q):
    emb = unit(7, 5, 11)
    ((got, se),) = fixed_k.vendi_at_k(emb, k, [q], seed=3)
    assert got == pytest.approx(brute(7, k, lambda c: renyi_vendi(emb[c], q)), rel=1e-9)
    assert math.isnan(se)


def test_vendi_order_one_is_the_headline_vendi():
    emb = unit(9, 4, 2)
    assert fixed_k.vendi_orders(emb, [1.0])[0] == pytest.approx(vendi_score(emb), rel=1e-12)
    q = fixed_k.vendi_orders(emb, [0.5, 1.0, 2.0, math.inf])
    assert q[0] >= q[1] >= q[2] >= q[3]  # Rényi diversities fall with the order
    assert q[0] > q[3]


def test_monte_carlo_is_within_a_few_standard_errors_of_exact():
    emb = unit(22, 6, 5)  # C(22, 8) = 319,770 > 20,000
    ((mc, se),) = fixed_k.vendi_at_k(emb, 8, [1.0], seed=9)
    assert se > 0
    exact_subsets = fixed_k.Subsets(
        np.asarray(list(itertools.combinations(range(22), 8))[::7]), True
    )
    exact = np.mean([renyi_vendi(emb[list(c)], 1.0) for c in exact_subsets.index])
    assert abs(mc - exact) < 4 * se + 1e-3
    assert len(fixed_k.subsets(22, 8, 9).index) == fixed_k.N_MONTE_CARLO
    # seeded: the same subsets again, other ones with another seed
    assert np.array_equal(fixed_k.subsets(22, 8, 9).index, fixed_k.subsets(22, 8, 9).index)
    assert not np.array_equal(fixed_k.subsets(22, 8, 9).index, fixed_k.subsets(22, 8, 10).index)


@pytest.mark.parametrize("k", [2, 3, 6])
def test_mean_pairwise_is_the_same_at_every_k(k):
    emb = unit(6, 3, 4)
    full = sbert_diversity(emb)
    assert fixed_k.pairwise_at_k(full, 6, k) == pytest.approx(
        brute(6, k, lambda c: sbert_diversity(emb[c])), rel=1e-12
    )


def test_rarefaction_equals_the_mean_over_subsets():
    labels = ["a", "a", "a", "b", "b", "c", "d", "d"]
    sizes = list(Counter(labels).values())
    for k in range(1, 9):
        want = brute(8, k, lambda c: len({labels[i] for i in c}))
        assert fixed_k.rarefaction(sizes, 8, k) == pytest.approx(want, rel=1e-12)


def test_ast_distinct_at_k_equals_brute_force():
    codes = [
        "def f(a):\n    return a + 1\n",
        "def g(x):\n    y = x * 2\n    return y\n",
        "def h(a, b):\n    for i in range(a):\n        b += i\n    return b\n",
        "def f(a):\n    return a + 2\n",
        "def k(s):\n    return sorted(s)[0]\n",
    ]
    p = programs(codes)
    items = fixed_k.PooledItems(*presence(p.plain))
    for k in (2, 3, 4):
        got, _ = fixed_k.distinct_ratio_at_k(items, k, seed=0)
        want = brute(len(p.plain), k, lambda c: distinct([p.plain[i] for i in c]))
        assert got == pytest.approx(want, rel=1e-12)
        assert fixed_k.pairwise_at_k(mean_pairwise(p.plain), len(p.plain), k) == pytest.approx(
            brute(len(p.plain), k, lambda c: mean_pairwise([p.plain[i] for i in c])), rel=1e-12
        )


def test_parse_k_grid():
    assert fixed_k.parse_k_grid("16, 2,4,8,4") == [2, 4, 8, 16]
    for bad in ("1,2", "a", ""):
        with pytest.raises(MetricError, match="--k-grid"):
            fixed_k.parse_k_grid(bad)


class HashEmbedder:
    def embed(self, items):
        return np.stack([unit(1, 8, sum(map(ord, t)))[0] for t in items])


def test_compute_diversity_adds_rows_at_each_k():
    outs = texts(6, 1)
    frame = pl.DataFrame(
        [
            {"model": "m", "task": "t", "cot": "on", "prompt_id": p, "sample": j, "answer": a}
            for p, n in (("p0", 6), ("p1", 3))
            for j, a in enumerate(outs[:n])
        ]
    )
    table = compute_diversity(
        frame, ["ead", "vendi", "vendi_q2", "nli"][:3], k_grid=[2, 4], embedder=HashEmbedder()
    )
    whole = table.filter(pl.col("k").is_null())
    assert whole.height == 2 * 3 + 3  # per prompt and across inputs
    rows = table.filter((pl.col("prompt_id") == "p0") & (pl.col("k") == 4))
    got = dict(zip(rows["metric"], rows["value"], strict=True))
    emb = HashEmbedder().embed(outs)
    assert got["vendi"] == pytest.approx(brute(6, 4, lambda c: vendi_score(emb[c])), rel=1e-9)
    assert got["vendi_q2"] == pytest.approx(brute(6, 4, lambda c: renyi_vendi(emb[c], 2)))
    assert got["ead"] == pytest.approx(
        brute(6, 4, lambda c: float(ead_many([[outs[i] for i in c]])[0])), rel=1e-12
    )
    # k larger than the set: a row with no value; no k rows across inputs
    small = table.filter((pl.col("prompt_id") == "p1") & (pl.col("k") == 4))
    assert small.height == 3 and small["value"].null_count() == 3
    assert table.filter(pl.col("k").is_not_null() & pl.col("prompt_id").is_null()).is_empty()
    assert table["se"].null_count() == table.height  # all exact here


def test_code_metrics_at_k_equal_brute_force_over_subsets():
    """code_vendi at k is the mean Vendi of the k-subsets of the extracted programs' embeddings;
    code_sbert and ast_parseable keep their whole-set values (closed forms), which brute force
    over the subsets confirms; blank code is left out of the code-embedding set, not of the
    parseability share."""
    from divtrace.metrics.code import extract_code

    answers = [
        "```python\ndef f(a):\n    return a + 1\n```",
        "def g(x):\n    y = x * 2\n    return y",
        "def h(a, b):\n    for i in range(a):\n        b += i\n    return b",
        "def broken(:\n    return",
        "```python\nprint(sorted([3, 1, 2]))\n```",
        "```python\n\n```",
    ]
    frame = pl.DataFrame(
        {
            "model": ["m"] * 6,
            "task": ["humaneval"] * 6,
            "cot": ["on"] * 6,
            "prompt_id": ["p"] * 6,
            "sample": list(range(6)),
            "answer": answers,
        }
    )
    names = ["code_sbert", "code_vendi", "ast_parseable"]
    table = compute_diversity(frame, names, k_grid=[2, 3, 5, 6], code_embedder=HashEmbedder())
    per = table.filter(pl.col("scope") == "per_input")
    value = {(m, k): v for m, k, v in per.select("metric", "k", "value").iter_rows()}
    codes = [c for c in (extract_code(a) for a in answers) if c.strip()]
    assert len(codes) == 5
    emb = HashEmbedder().embed(codes)
    parseable = [True, True, True, False, True, True]
    for k in (2, 3, 5):
        assert value[("code_vendi", k)] == pytest.approx(
            brute(5, k, lambda c: vendi_score(emb[c])), rel=1e-9
        )
        assert value[("code_sbert", k)] == pytest.approx(
            brute(5, k, lambda c: sbert_diversity(emb[c])), rel=1e-9
        )
        assert value[("ast_parseable", k)] == pytest.approx(
            brute(6, k, lambda c: float(np.mean([parseable[i] for i in c]))), rel=1e-12
        )
    assert value[("code_vendi", 5)] != pytest.approx(value[("code_vendi", 2)])
    # six answers but five programs to embed: no code_vendi at k = 6, a parseable share still
    assert value[("code_vendi", 6)] is None
    assert value[("ast_parseable", 6)] == pytest.approx(5 / 6)
