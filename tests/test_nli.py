"""Tests of the NLI diversity metric (divtrace.metrics.nli) and its use in compute_diversity."""

from __future__ import annotations

import itertools
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from divtrace.errors import DivtraceError, MetricError
from divtrace.io import DIVERSITY, read_table, write_table
from divtrace.metrics.api import check_metrics, compute_diversity, nli_seed
from divtrace.metrics.nli import (
    MAX_SENTENCE_PAIRS,
    HFNLIScorer,
    choose_positions,
    label_indices,
    nli_diversity,
    nli_many,
    set_seed,
    split_sentences,
)
from tests.test_metrics import FakeEmbedder, generations, quality_for

# --------------------------------------------------------------------------------------------
# A fake scorer with known probabilities


Probs = Callable[[str, str], tuple[float, float]]


class FakeScorer:
    """[P(entail), P(contradict)] from a table, else from ``default``; records every call."""

    def __init__(
        self,
        table: dict[tuple[str, str], tuple[float, float]] | None = None,
        default: Probs | None = None,
    ) -> None:
        self.table = table or {}
        self.default = default or (lambda p, h: (0.5, 0.25))
        self.calls: list[list[tuple[str, str]]] = []

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [pair for call in self.calls for pair in call]

    def score(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        pairs = list(zip(premises, hypotheses, strict=True))
        self.calls.append(pairs)
        rows = [self.table.get(pair) or self.default(*pair) for pair in pairs]
        return np.asarray(rows, dtype=np.float64).reshape(len(pairs), 2)


def numbered(prefix: str, n: int) -> str:
    """'a0. a1. ... a{n-1}.': n sentences, each naming its position."""
    return " ".join(f"{prefix}{i}." for i in range(n))


def position(sentence: str) -> int:
    return int(sentence[1:].rstrip("."))


def test_split_sentences() -> None:
    text = "Hello world. How are you?  Fine!!! e.g.x\n\nNew line\r\n  last one.  "
    # The punctuation run and the whitespace after it are the boundary: both are removed.
    assert split_sentences(text) == ["Hello world", "How are you", "Fine", "e.g.x", "New line",
                                     "last one"]  # fmt: skip
    assert split_sentences("A. B") == ["A", "B"]
    assert split_sentences("A. B.") == ["A", "B."]  # a final "." without whitespace after stays
    assert split_sentences("Why?! Because... So.") == ["Why", "Because", "So."]
    assert split_sentences("") == []
    assert split_sentences(" \n\t\n ") == []
    assert split_sentences("No terminal punctuation") == ["No terminal punctuation"]
    assert split_sentences("3.14 is pi. Yes") == ["3.14 is pi", "Yes"]
    assert split_sentences("one line\ntwo line") == ["one line", "two line"]
    # \r and \t are spaces, not boundaries (a lone \r does not split) ...
    assert split_sentences("one\rtwo\tthree") == ["one two three"]
    assert split_sentences("one.\rtwo.\tthree") == ["one", "two", "three"]
    # ... and a text of boundaries only is one sentence, its stripped self.
    assert split_sentences("... ") == ["..."]
    assert split_sentences(" !?\n") == ["!?"]
    assert split_sentences("\n\n") == []


def test_set_seed_is_stable() -> None:
    a = set_seed("m", "t", "on", "per_input", "p1")
    assert a == set_seed("m", "t", "on", "per_input", "p1")
    assert 0 <= a < 2**64
    assert a != set_seed("m", "t", "on", "per_input", "p2")
    assert set_seed("m", None) != set_seed("m", "None") != set_seed("m", "")
    # Not Python's randomised hash(): the same value in a fresh interpreter.
    code = "from divtrace.metrics.nli import set_seed; print(set_seed('m', 't', 'on', 'x', None))"
    env = {
        **os.environ,
        "PYTHONHASHSEED": "123",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    assert int(out.stdout) == set_seed("m", "t", "on", "x", None)


def test_both_directions_by_hand() -> None:
    table = {("A.", "B."): (0.9, 0.0), ("B.", "A."): (0.1, 0.5)}
    fake = FakeScorer(table)
    # ((0.9 - 0) + (0.1 - 0.5)) / 2 = 0.25
    assert nli_diversity(["A.", "B."], fake) == pytest.approx(0.75)
    assert sorted(fake.pairs) == [("A.", "B."), ("B.", "A.")]
    # The pair is symmetric: the order of the two outputs does not matter.
    assert nli_diversity(["B.", "A."], FakeScorer(table)) == pytest.approx(0.75)


def test_position_alignment() -> None:
    fake = FakeScorer()
    nli_diversity(["A1. A2.", "B1. B2. B3."], fake)
    assert sorted(fake.pairs) == sorted([("A1", "B1"), ("B1", "A1"), ("A2.", "B2"), ("B2", "A2.")])
    # Newlines split sentences too.
    fake = FakeScorer()
    nli_diversity(["x\ny", "u. v"], fake)
    assert sorted(fake.pairs) == sorted([("x", "u"), ("u", "x"), ("y", "v"), ("v", "y")])


def test_mean_over_pairs_by_hand() -> None:
    # Similarities: (a, b) 0.8, (a, c) -0.4, (b, c) 0.2 (same in both directions).
    sims = {
        frozenset({"a.", "b."}): 0.8,
        frozenset({"a.", "c."}): -0.4,
        frozenset({"b.", "c."}): 0.2,
    }

    def probs(p: str, h: str) -> tuple[float, float]:
        s = sims[frozenset({p, h})]
        return (s, 0.0) if s >= 0 else (0.0, -s)

    fake = FakeScorer(default=probs)
    assert nli_diversity(["a.", "b.", "c."], fake) == pytest.approx(1 - (0.8 - 0.4 + 0.2) / 3)
    assert len(fake.calls) == 1 and len(fake.pairs) == 6


def test_three_position_cap_and_choice() -> None:
    # Aligned sentence i scores P(entail) = i / 10 both ways, so the value reveals the positions.
    def probs(p: str, h: str) -> tuple[float, float]:
        assert position(p) == position(h), "only position-aligned sentences are compared"
        return position(p) / 10, 0.0

    a, b = numbered("a", 8), numbered("b", 6)
    chosen_sets = set()
    for seed in range(40):
        fake = FakeScorer(default=probs)
        value = nli_diversity([a, b], fake, seed=seed)
        positions = sorted({position(p) for p, _ in fake.pairs})
        assert len(positions) == MAX_SENTENCE_PAIRS and len(fake.pairs) == 2 * MAX_SENTENCE_PAIRS
        assert all(0 <= i < 6 for i in positions)
        assert positions == choose_positions(6, seed, a, b, MAX_SENTENCE_PAIRS)
        assert value == pytest.approx(1 - sum(positions) / 10 / 3)
        chosen_sets.add(tuple(positions))
    assert len(chosen_sets) > 5  # the choice really is random across seeds
    # At most 3 aligned positions: all of them, no randomness.
    assert choose_positions(3, 7, a, b, 3) == [0, 1, 2]
    assert choose_positions(2, 7, a, b, 3) == [0, 1]
    # max_pairs is a parameter.
    fake = FakeScorer(default=probs)
    nli_diversity([a, b], fake, max_pairs=5)
    assert len({position(p) for p, _ in fake.pairs}) == 5


def test_choice_is_symmetric_and_keyed_by_seed_and_texts() -> None:
    a, b, c = numbered("a", 9), numbered("b", 9), numbered("c", 9)
    assert choose_positions(9, 1, a, b, 3) == choose_positions(9, 1, b, a, 3)
    by_seed = {tuple(choose_positions(9, s, a, b, 3)) for s in range(30)}
    by_text = {tuple(choose_positions(9, 1, a, t, 3)) for t in [b, c, a, b + " x", c + " y"]}
    assert len(by_seed) > 1 and len(by_text) > 1


def random_sets(rng: random.Random, n_sets: int) -> list[list[str]]:
    pool = [numbered(p, n) for p in "abcdefgh" for n in (1, 2, 4, 7)] + ["", "  "]
    return [[rng.choice(pool) for _ in range(rng.randint(0, 6))] for _ in range(n_sets)]


def varied(p: str, h: str) -> tuple[float, float]:
    """Deterministic but different probabilities for every directed pair."""
    r = np.random.default_rng([set_seed(p, h) % 2**32])
    e, c = r.dirichlet([1, 1, 1])[:2]
    return float(e), float(c)


def test_independent_of_processing_and_output_order() -> None:
    rng = random.Random(0)
    sets = random_sets(rng, 40)
    seeds = [rng.randrange(2**64) for _ in sets]
    base = nli_many(sets, seeds, FakeScorer(default=varied))
    # Each set alone gives the same value as in the batch.
    alone = [
        nli_diversity(s, FakeScorer(default=varied), seed)
        for s, seed in zip(sets, seeds, strict=True)
    ]
    assert base == pytest.approx(alone, rel=1e-12, abs=1e-12, nan_ok=True)
    assert 0 < np.isnan(base).sum() < len(sets) / 2  # some sets have no scorable pair
    for trial in range(5):
        order = list(range(len(sets)))
        rng.shuffle(order)
        shuffled = [rng.sample(sets[i], len(sets[i])) for i in order]
        fake = FakeScorer(default=varied)
        again = nli_many(shuffled, [seeds[i] for i in order], fake)
        assert again == pytest.approx(base[order], rel=1e-12, abs=1e-12, nan_ok=True)
        # The scorer sees the distinct directed pairs, once each, in a canonical order.
        assert len(fake.calls) == 1
        assert fake.calls[0] == sorted(set(fake.calls[0]))
        if trial == 0:
            first_call = fake.calls[0]
        else:
            assert fake.calls[0] == first_call
    # The seed matters (for sets with more than three aligned sentences).
    other = nli_many(sets, [s + 1 for s in seeds], FakeScorer(default=varied))
    assert np.array_equal(np.isnan(other), np.isnan(base))
    assert not np.allclose(other[~np.isnan(base)], base[~np.isnan(base)])


def test_dedup_within_and_across_sets() -> None:
    a, b = numbered("a", 5), numbered("b", 5)
    fake = FakeScorer(default=varied)
    stats: dict[str, int] = {}
    values = nli_many([[a, b, a, a], [b, a], [a, a]], [7, 7, 7], fake, stats=stats)
    # Distinct (seed, text, text) pairs: (a, b) and (a, a); 3 positions each; (a, a) has both
    # directions equal, so 3 + 3 directed pairs for (a, a) collapse to 3.
    assert len(fake.pairs) == len(set(fake.pairs)) == 6 + 3
    assert stats == {
        "n_sets": 3,
        "n_sets_without_pairs": 0,
        "n_output_pairs": 6 + 1 + 1,
        "n_skipped_pairs": 0,
        "n_distinct_output_pairs": 2,
        "n_sentence_pairs": 8 * 6,
        "n_sentence_pairs_scored": 9,
    }
    sim_ab = 1 - nli_diversity([a, b], FakeScorer(default=varied), 7)
    sim_aa = 1 - nli_diversity([a, a], FakeScorer(default=varied), 7)
    # Set 0: pairs ab, aa, aa, ba, ba, aa -> 3 x ab + 3 x aa.
    assert values[0] == pytest.approx(1 - (3 * sim_ab + 3 * sim_aa) / 6)
    assert values[1] == pytest.approx(1 - sim_ab) and values[2] == pytest.approx(1 - sim_aa)
    # Stats accumulate over calls.
    nli_many([[a, b]], [7], FakeScorer(), stats=stats)
    assert stats["n_sets"] == 4 and stats["n_output_pairs"] == 9


def test_small_sets_and_empty_outputs() -> None:
    fake = FakeScorer()
    stats: dict[str, int] = {}
    sets = [[], ["x."], ["", ""], ["", "x"], [" \n", "a."], ["\t", "\r\n"]]
    values = nli_many(sets, [0] * 6, fake, stats=stats)
    # Fewer than 2 outputs, or only pairs with an output without a sentence: no value.
    assert np.isnan(values).all()
    assert fake.calls == []  # nothing to score
    assert stats["n_sets_without_pairs"] == 6
    assert stats["n_output_pairs"] == stats["n_skipped_pairs"] == 4
    assert np.isnan(nli_diversity(["one output. Two sentences."], FakeScorer()))


def test_pairs_with_an_empty_output_are_skipped() -> None:
    table = {("a", "c"): (0.9, 0.1), ("c", "a"): (0.7, 0.1), ("b.", "d."): (0.2, 0.6),
             ("d.", "b."): (0.0, 0.4)}  # fmt: skip
    fake = FakeScorer(table)
    stats: dict[str, int] = {}
    value = nli_diversity(["", "a. b.", "c. d."], fake)
    # Only ("a. b.", "c. d.") is scored; the two pairs with "" neither count as neutral (0) nor
    # enter the mean at all.
    want = 1 - ((0.8 + 0.6) / 2 + (-0.4 - 0.4) / 2) / 2
    assert value == pytest.approx(want)
    assert sorted(fake.pairs) == sorted(table)
    nli_many([["", "a. b.", "c. d."], ["a. b.", "c. d."]], [0, 0], FakeScorer(table), stats=stats)
    assert stats["n_output_pairs"] == 4 and stats["n_skipped_pairs"] == 2
    assert stats["n_sets_without_pairs"] == 0
    assert list(nli_many([], [], FakeScorer())) == []


def test_pooled_over_sentence_pairs_not_a_mean_of_pair_means() -> None:
    # (x, y) has three aligned sentences of similarity 1 each; (x, z) and (y, z) one each, of
    # similarity 0. Pooled: 3 terms of 1 and 2 terms of 0 -> mean 3/5. A mean of the three
    # pairs' means would give 1/3.
    x, y, z = "s1. s2. s3.", "t1. t2. t3.", "u1."

    def probs(p: str, h: str) -> tuple[float, float]:
        return (1.0, 0.0) if "u" not in p + h else (0.5, 0.5)

    assert nli_diversity([x, y, z], FakeScorer(default=probs)) == pytest.approx(1 - 3 / 5)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="seeds"):
        nli_many([["a"], ["b"]], [1], FakeScorer())
    with pytest.raises(TypeError, match="single string"):
        nli_many(["a b"], [1], FakeScorer())
    with pytest.raises(ValueError, match="max_pairs"):
        nli_many([["a", "b"]], [1], FakeScorer(), max_pairs=0)

    class Wrong:
        def score(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
            return np.zeros((len(premises), 3))

    with pytest.raises(ValueError, match=r"expected \(n, 2\)") as err:
        nli_many([["a.", "b."]], [1], Wrong())
    assert not isinstance(err.value, DivtraceError)  # the scorer's bug, not the user's input


def test_label_indices() -> None:
    assert label_indices({0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}) == (2, 0)
    assert label_indices({0: "entailment", 1: "neutral", 2: "contradiction"}) == (0, 2)
    assert label_indices({"0": "Entails", "1": "Contradicts"}) == (0, 1)
    with pytest.raises(MetricError, match=r"'LABEL_0'.*'LABEL_2'"):
        label_indices({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    # 'not_entailment' is not an entailment label, and contradiction is missing.
    with pytest.raises(MetricError, match="not_entailment"):
        label_indices({0: "entailment", 1: "not_entailment"})
    with pytest.raises(MetricError, match="exactly one"):
        label_indices({0: "entailment", 1: "entailment_2", 2: "contradiction"})


# --------------------------------------------------------------------------------------------
# compute_diversity with a fake scorer


def test_metric_nli_is_available() -> None:
    assert check_metrics(["NLI", "ead", "nli"]) == ["nli", "ead"]


def test_compute_diversity_nli_with_fake_scorer() -> None:
    # p2's sample 0 kept, so the across-input set of subset all has two outputs (p1's, p2's).
    gen = generations().with_columns(think_closed=pl.col("prompt_id") != "p3")
    gen = gen.with_columns(
        answer=pl.Series(
            [
                f"Prompt {p}. Sample {s}. " + " ".join(f"Line {i}." for i in range(s + 2))
                for p, s in gen.select("prompt_id", "sample").iter_rows()
            ]
        )
    )
    fake = FakeScorer(default=varied)
    stats: dict[str, int] = {}
    out = compute_diversity(
        gen,
        ["ead", "sbert", "nli"],
        quality=quality_for(gen),
        embedder=FakeEmbedder(),
        nli_scorer=fake,
        nli_stats=stats,
    )
    assert len(fake.calls) == 1  # every set of the file in one scorer call
    assert stats["n_sets"] == 4  # sets of 2+ outputs: all: p1, p2, across; correct: p1
    assert stats["n_sets_without_pairs"] == 0
    nli = out.filter(metric="nli")
    assert len(nli) == 8  # p1, p2, p3, across in both subsets
    valued = nli.filter(pl.col("value").is_not_null())
    assert len(valued) == 4 and valued["value"].is_between(0, 2).all()
    # correct: p2 has 1 correct output, p3 none, across 1 (only p1's sample 0 is correct).
    assert (nli.filter(pl.col("value").is_null())["n_outputs"] < 2).all()
    # Values are nli_diversity of the set with the seed of (model, task, cot, scope, prompt_id).
    kept = gen.filter(pl.col("think_closed")).join(
        quality_for(gen), on=["model", "task", "cot", "prompt_id", "sample"], how="left"
    )
    for row in valued.iter_rows(named=True):
        if row["scope"] == "per_input":
            texts = kept.filter(prompt_id=row["prompt_id"])
            if row["subset"] == "correct":
                texts = texts.filter(pl.col("sample") != 1)
            texts = texts.sort("sample")
        else:
            pool = kept.filter(correct=True) if row["subset"] == "correct" else kept
            texts = pool.filter(sample=0).sort("prompt_id")  # each prompt's sample 0
        seed = set_seed(row["model"], row["task"], row["cot"], row["scope"], row["prompt_id"])
        want = nli_diversity(texts["answer"].to_list(), FakeScorer(default=varied), seed)
        assert row["value"] == pytest.approx(want, rel=1e-12), row

    # The other metrics are unchanged by asking for NLI too.
    without = compute_diversity(
        gen, ["ead", "sbert"], quality=quality_for(gen), embedder=FakeEmbedder()
    )
    assert_frame_equal(out.filter(pl.col("metric") != "nli"), without)
    # Row order of the input does not matter.
    shuffled = gen.sample(fraction=1.0, shuffle=True, seed=5)
    again = compute_diversity(
        shuffled,
        ["ead", "sbert", "nli"],
        quality=quality_for(gen),
        embedder=FakeEmbedder(),
        nli_scorer=FakeScorer(default=varied),
    )
    assert_frame_equal(out, again)


def test_nli_seed_ignores_subset() -> None:
    base = {"model": "m", "task": "t", "cot": "on", "scope": "per_input", "prompt_id": "p"}
    assert nli_seed({**base, "subset": "all"}) == nli_seed({**base, "subset": "correct"})
    assert nli_seed(base) != nli_seed({**base, "scope": "across_input", "prompt_id": None})


def test_import_is_cheap() -> None:
    code = (
        "import sys, divtrace.metrics.nli, divtrace.metrics.api; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# --------------------------------------------------------------------------------------------
# A tiny random BERT classifier with its own tokenizer

CORPUS = [
    "The cat sat on the mat.",
    "A dog runs in the park!",
    "Is it raining today?",
    "The answer is 42.",
    "We add the two numbers and get the result.",
    "Prompt p1. Sample 0. Line 0. Line 1.",
]
STANDARD = {0: "entailment", 1: "neutral", 2: "contradiction"}
ROBERTA_ORDER = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}


def build_tokenizer(directory: Path) -> int:
    from divtrace.metrics.testing import word_level_pair_tokenizer

    return len(word_level_pair_tokenizer(CORPUS, directory))


def build_model(directory: Path, vocab_size: int, id2label: dict[int, str], rows: list[int]):
    """A 1-layer BERT whose classifier rows are the base rows permuted by ``rows``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        initializer_range=0.5,
        num_labels=3,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        # Spread the logits so the three probabilities differ clearly.
        weight = torch.randn(3, 16, generator=torch.Generator().manual_seed(1)) * 0.5
        bias = torch.tensor([1.0, 0.0, -1.0])
        model.classifier.weight.copy_(weight[rows])
        model.classifier.bias.copy_(bias[rows])
    model.save_pretrained(directory)
    tok_files = directory.parent / "tokenizer"
    for f in tok_files.iterdir():
        (directory / f.name).write_bytes(f.read_bytes())
    return model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("nli")
    (root / "tokenizer").mkdir()
    vocab = build_tokenizer(root / "tokenizer")
    # Base row r means: 0 = entailment, 1 = neutral, 2 = contradiction.
    paths = {
        "standard": (STANDARD, [0, 1, 2]),
        "roberta": (ROBERTA_ORDER, [2, 1, 0]),
        "unlabelled": ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, [0, 1, 2]),
    }
    out: dict[str, Path] = {}
    for name, (id2label, rows) in paths.items():
        directory = root / name
        directory.mkdir()
        build_model(directory, vocab, id2label, rows)
        out[name] = directory
    return out


PREMISES = ["The cat sat on the mat.", "A dog runs in the park!", "Is it raining today?", "x"]
HYPOTHESES = ["A dog runs.", "The cat sat on the mat and the dog runs in the park.", "Yes.", "y"]


def direct_scores(path: Path, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
    """One unpadded forward pass per pair; entail/contradict read from the label names."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    names = {v.lower(): k for k, v in model.config.id2label.items()}
    rows = []
    with torch.no_grad():
        for p, h in zip(premises, hypotheses, strict=True):
            probs = torch.softmax(model(**tok(p, h, return_tensors="pt")).logits[0], -1)
            rows.append([float(probs[names["entailment"]]), float(probs[names["contradiction"]])])
    return np.asarray(rows)


def test_hf_scorer_matches_direct_forward(tiny: dict[str, Path]) -> None:
    scorer = HFNLIScorer(str(tiny["standard"]), device="cpu", batch_size=2, progress=False)
    got = scorer.score(PREMISES, HYPOTHESES)
    assert got.shape == (4, 2) and got.dtype == np.float64
    want = direct_scores(tiny["standard"], PREMISES, HYPOTHESES)
    assert got == pytest.approx(want, abs=1e-5)
    assert (scorer.entail_index, scorer.contradict_index) == (0, 2)
    assert np.ptp(got[:, 0] - got[:, 1]) > 1e-3  # the inputs really change the scores
    assert abs(got[0, 0] - got[0, 1]) > 0.05  # swapped labels would be noticed


def test_hf_scorer_reads_labels_through_id2label(tiny: dict[str, Path]) -> None:
    standard = HFNLIScorer(str(tiny["standard"]), device="cpu", progress=False)
    permuted = HFNLIScorer(str(tiny["roberta"]), device="cpu", progress=False)
    a = standard.score(PREMISES, HYPOTHESES)
    b = permuted.score(PREMISES, HYPOTHESES)
    assert (permuted.entail_index, permuted.contradict_index) == (2, 0)
    assert b == pytest.approx(a, abs=1e-6)
    assert not np.allclose(a[:, ::-1], a, atol=1e-3)


def test_hf_scorer_dedups_and_caches(tiny: dict[str, Path]) -> None:
    scorer = HFNLIScorer(str(tiny["standard"]), device="cpu", batch_size=3, progress=False)
    assert scorer.score([], []).shape == (0, 2)
    assert scorer._model is None  # nothing to score: the model is not even loaded
    premises = ["a.", "b.", "a.", "a.", "b."]
    hypotheses = ["x.", "y.", "x.", "y.", "y."]
    got = scorer.score(premises, hypotheses)
    assert scorer.stats == {"n_requested": 5, "n_scored": 3}
    assert np.array_equal(got[0], got[2]) and np.array_equal(got[1], got[4])
    again = scorer.score(["b.", "c."], ["y.", "z."])
    assert scorer.stats == {"n_requested": 7, "n_scored": 4} and scorer.n_saved == 3
    assert np.array_equal(again[0], got[1])
    with pytest.raises(ValueError, match="premises"):
        scorer.score(["a."], [])


def test_a_fresh_scorer_shares_the_model_not_the_cache(tiny: dict[str, Path]) -> None:
    """Several runs in one process (``divtrace diversity`` with several --out): one model load,
    and each run's pairs scored in the batches of a run scored alone."""
    path = str(tiny["standard"])
    assert HFNLIScorer(path, progress=False).fresh()._model is None  # not loaded: loads its own
    scorer = HFNLIScorer(path, device="cpu", batch_size=3, max_length=16, progress=False)
    scorer.score(["a.", "b."], ["x.", "y."])
    fresh = scorer.fresh()
    assert fresh._model is scorer._model and fresh._tokenizer is scorer._tokenizer
    assert (fresh.batch_size, fresh.max_length, fresh.device) == (3, 16, "cpu")
    assert fresh.stats == {"n_requested": 0, "n_scored": 0}
    premises, hypotheses = ["b.", "c.", "a b c."], ["y.", "z.", "x y."]
    got = fresh.score(premises, hypotheses)
    assert fresh.stats["n_scored"] == 3  # nothing taken from the first run's cache
    alone = HFNLIScorer(path, device="cpu", batch_size=3, max_length=16, progress=False)
    assert np.array_equal(got, alone.score(premises, hypotheses))


def test_hf_scorer_from_loaded_dtype_and_progress(
    tiny: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = tiny["roberta"]
    ref = HFNLIScorer(str(tiny["standard"]), device="cpu", progress=False)
    want = ref.score(PREMISES, HYPOTHESES)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    loaded = HFNLIScorer.from_loaded(
        model, AutoTokenizer.from_pretrained(path), device="cpu", progress=False
    )
    assert loaded.score(PREMISES, HYPOTHESES) == pytest.approx(want, abs=1e-6)
    double = HFNLIScorer(str(path), device="cpu", dtype="float64", progress=True)
    capsys.readouterr()
    assert double.score(PREMISES, HYPOTHESES) == pytest.approx(want, abs=1e-5)
    assert "NLI" in capsys.readouterr().err  # tqdm progress on stderr
    with pytest.raises(ValueError, match="dtype"):
        HFNLIScorer(str(path), device="cpu", dtype="int8", progress=False).score(["a."], ["b."])


def test_hf_scorer_missing_labels(tiny: dict[str, Path]) -> None:
    scorer = HFNLIScorer(str(tiny["unlabelled"]), device="cpu", progress=False)
    with pytest.raises(MetricError, match=r"unlabelled.*'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2'"):
        scorer.score(["a."], ["b."])


def test_hf_scorer_names_a_directory_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    scorer = HFNLIScorer(str(tmp_path / "empty"), device="cpu", progress=False)
    with pytest.raises(MetricError, match=r"NLI model '.*empty'.*cannot be loaded"):
        scorer.score(["a."], ["b."])


def test_compute_diversity_with_tiny_model(tiny: dict[str, Path], tmp_path: Path) -> None:
    gen = generations().with_columns(
        answer=pl.format(
            "The answer is {}. {}",
            "sample",
            pl.lit("The cat sat on the mat.").repeat_by(pl.col("sample") + 1).list.join(" "),
        )
    )
    assert gen["answer"][1] == "The answer is 1. The cat sat on the mat. The cat sat on the mat."
    out = compute_diversity(gen, ["nli", "ead"], nli_model=str(tiny["roberta"]))
    assert out.columns[: len(DIVERSITY.names)] == DIVERSITY.names
    nli = out.filter(metric="nli")
    assert len(nli) == 4  # p1, p2, p3 per input; across inputs
    # p3 has no kept output and the across-input set only p1's sample 0: no value.
    assert nli["value"].is_null().to_list() == [False, False, True, True]
    assert nli["value"].drop_nulls().is_between(0, 2).all()
    assert set(nli["scope"]) == {"per_input", "across_input"}
    assert out["metric"][:2].to_list() == ["nli", "ead"]
    back = read_table(write_table(out, tmp_path / "cot-on.parquet", "diversity"), "diversity")
    assert len(back) == len(out)
    # Same result with the labels in the other order, and with an injected scorer.
    standard = compute_diversity(gen, ["nli"], nli_model=str(tiny["standard"]))
    assert standard["value"].to_numpy() == pytest.approx(
        nli["value"].to_numpy(), abs=1e-6, nan_ok=True
    )
    scorer = HFNLIScorer(str(tiny["standard"]), device="cpu", progress=False)
    injected = compute_diversity(gen, ["nli"], nli_scorer=scorer, nli_model="not/used")
    assert_frame_equal(injected, standard)
    assert scorer.stats["n_requested"] == scorer.stats["n_scored"]  # deduplicated upstream


def test_every_pair_combination_is_aligned_hand_check() -> None:
    # A brute-force restatement of the definition for random small sets, with more than three
    # aligned sentences too (divtrace's own seeded choice of positions).
    rng = random.Random(3)
    n_nan = 0
    for _ in range(30):
        texts = random_sets(rng, 1)[0]
        seed = rng.randrange(2**64)
        sims = []
        for x, y in itertools.combinations(texts, 2):
            sx, sy = split_sentences(x), split_sentences(y)
            n = min(len(sx), len(sy))
            for i in choose_positions(n, seed, x, y, 3) if n else []:
                forward, backward = varied(sx[i], sy[i]), varied(sy[i], sx[i])
                sims.append(((forward[0] - forward[1]) + (backward[0] - backward[1])) / 2)
        got = nli_diversity(texts, FakeScorer(default=varied), seed)
        if sims:
            assert got == pytest.approx(1 - float(np.mean(sims)), rel=1e-12, abs=1e-12)
        else:
            assert np.isnan(got)
            n_nan += 1
    assert 0 < n_nan < 15


# --------------------------------------------------------------------------------------------
# The paper's procedure, transcribed, against a text-sensitive classifier

NEGATIONS = frozenset({"not", "no", "never", "nobody", "nothing", "none"})


def lexical_nli(premise: str, hypothesis: str) -> tuple[float, float]:
    """A deterministic stand-in for MNLI that reads the texts (and is asymmetric).

    Entailment grows with the share of the hypothesis's words found in the premise, contradiction
    with a negation on one side only; a longer hypothesis or a question mark in it lowers
    entailment. Softmax over (entail, neutral, contradict) logits.
    """
    p_words = re.findall(r"[a-z0-9']+", premise.lower())
    h_words = re.findall(r"[a-z0-9']+", hypothesis.lower())
    p_set, h_set = set(p_words), set(h_words)
    covered = len(h_set & p_set) / len(h_set) if h_set else 0.0
    negation_mismatch = float(bool(p_set & NEGATIONS) != bool(h_set & NEGATIONS))
    longer = float(len(h_words) > len(p_words))
    entail = 3.0 * covered - 2.0 * negation_mismatch - 0.7 * longer - 0.8 * ("?" in hypothesis)
    contradict = 2.5 * negation_mismatch + 1.2 * (1.0 - covered) - 0.3 * ("." in premise)
    logits = np.array([entail, 0.5, contradict])
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    return float(probs[0]), float(probs[2])


def paper_sentences(text: str) -> list[str]:
    """The paper's split: \\r, \\t to spaces; split; strip; drop blanks; else the whole text."""
    cleaned = text.replace("\r", " ").replace("\t", " ")
    kept = []
    for part in re.split(r"[.!?]+\s+|\n+", cleaned):
        if part.strip():
            kept.append(part.strip())
    if not kept and cleaned.strip():
        kept = [cleaned.strip()]
    return kept


def paper_nli(texts: Sequence[str], probs: Probs, *, pooled: bool = True) -> float:
    """The paper's D_NLI for outputs of at most 3 sentences (so every position is used).

    ``pooled=False`` is the variant this test must tell apart: a mean of per-output-pair means.
    The paper returns 0.0 when no pair is scored.
    """

    def s(premise: str, hypothesis: str) -> float:
        entail, contradict = probs(premise, hypothesis)
        return entail - contradict

    all_sims: list[float] = []
    pair_means: list[float] = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            sent_i, sent_j = paper_sentences(texts[i]), paper_sentences(texts[j])
            min_len = min(len(sent_i), len(sent_j))
            if len(sent_i) == 0 or len(sent_j) == 0:
                continue
            assert min_len <= 3, "the transcription covers min_len <= 3 only (no random draw)"
            sims = [
                0.5 * (s(sent_i[idx], sent_j[idx]) + s(sent_j[idx], sent_i[idx]))
                for idx in range(min_len)
            ]
            all_sims.extend(sims)
            pair_means.append(sum(sims) / len(sims))
    if not all_sims:
        return 0.0
    return 1.0 - (sum(all_sims) / len(all_sims) if pooled else sum(pair_means) / len(pair_means))


POOL = [
    "The cat sat on the mat. It was not happy!",
    "The cat sat on the mat.",
    "A dog ran in the park? No dog ran.",
    "The cat did not sit on the mat...\nIt was happy",
    "Nobody sat on the mat!!! The dog slept.\tThe cat slept.",
    "Birds fly south.\r\nBirds never fly north",
    "The answer is 42.The answer is not 41.",
    "It rained\rIt poured. Then it stopped",
    "",
    "   \n\t ",
    "... ",
    "?!",
    "The dog slept?! The cat sat on the mat. Nothing happened",
    "It rained\n\nIt did not rain.",
    "e.g. the cat. the dog",
    "The cat sat on the mat",
    "No. The cat sat on the mat. The dog did not",
    "Why did the cat sit?\n\n\nBecause the mat was warm!",
    "The park was empty.\r\n\r\nNo birds flew.\t",
    "\tThe dog ran in the park!!!   ",
]


def paper_sets() -> list[list[str]]:
    rng = random.Random(11)
    sets = [[rng.choice(POOL) for _ in range(rng.randint(2, 6))] for _ in range(80)]
    sets += [[], [POOL[0]], ["", "  "], ["", "x"], ["", "a. b", "c. d"], POOL, POOL[:3] * 2]
    return sets


def test_nli_many_matches_the_papers_procedure() -> None:
    counts = {len(paper_sentences(t)) for t in POOL}
    assert counts == {0, 1, 2, 3}  # varied sentence counts, none above 3
    sets = paper_sets()
    fake = FakeScorer(default=lexical_nli)
    got = nli_many(sets, [set_seed("paper", g) for g in range(len(sets))], fake)
    want = np.array([paper_nli(t, lexical_nli) for t in sets])
    scored = [
        any(paper_sentences(a) and paper_sentences(b) for a, b in itertools.combinations(t, 2))
        for t in sets
    ]
    # Where the paper scores no pair it returns 0.0; divtrace leaves the value missing.
    assert np.isnan(got[~np.array(scored)]).all() and (want[~np.array(scored)] == 0.0).all()
    assert scored[-7:] == [False] * 4 + [True] * 3 and sum(scored) > 60
    assert got[scored] == pytest.approx(want[scored], abs=1e-4)
    # The data discriminates: the stand-in classifier spreads the values, and pooling over
    # sentence pairs differs from a mean of the output pairs' means.
    assert np.ptp(want[scored]) > 0.1
    means_of_means = np.array([paper_nli(t, lexical_nli, pooled=False) for t in sets])
    assert np.abs(means_of_means - want).max() > 0.02
    # Each distinct directed sentence pair went to the scorer once.
    assert len(fake.calls) == 1 and len(fake.pairs) == len(set(fake.pairs))


def test_lexical_stand_in_reads_the_texts() -> None:
    same = lexical_nli("The cat sat on the mat.", "The cat sat on the mat.")
    negated = lexical_nli("The cat sat on the mat.", "The cat did not sit.")
    assert same[0] > 0.8 > negated[0] and negated[1] > same[1]
    forward = lexical_nli("The cat sat on the mat", "The cat sat")
    backward = lexical_nli("The cat sat", "The cat sat on the mat")
    assert abs(forward[0] - backward[0]) > 0.1  # asymmetric in premise and hypothesis


# --------------------------------------------------------------------------------------------
# The tiny classifier: the paper's procedure end to end, and the token limit

LONG_PREMISE = " ".join(["The cat sat on the mat and a dog runs in the park."] * 3)
SHORT_HYPOTHESIS = "Is it raining today?"


def direct_probs(path: Path) -> Probs:
    """[P(entail), P(contradict)] of one pair by one unpadded forward pass, labels by name."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    names = {v.lower(): k for k, v in model.config.id2label.items()}

    def probs(premise: str, hypothesis: str) -> tuple[float, float]:
        with torch.no_grad():
            row = torch.softmax(
                model(**tok(premise, hypothesis, return_tensors="pt")).logits[0], -1
            )
        return float(row[names["entailment"]]), float(row[names["contradiction"]])

    return probs


def test_tiny_model_matches_the_papers_procedure(tiny: dict[str, Path]) -> None:
    rng = random.Random(5)
    sets = [[rng.choice(POOL) for _ in range(rng.randint(2, 5))] for _ in range(12)]
    scorer = HFNLIScorer(str(tiny["roberta"]), device="cpu", batch_size=7, progress=False)
    got = nli_many(sets, [set_seed("tiny", g) for g in range(len(sets))], scorer)
    probs = direct_probs(tiny["standard"])
    want = np.array([paper_nli(t, probs) for t in sets])
    finite = ~np.isnan(got)
    assert finite.sum() >= 10 and (want[~finite] == 0.0).all()
    assert got[finite] == pytest.approx(want[finite], abs=1e-4)
    assert np.ptp(want[finite]) > 1e-3  # the model's scores really move the values


class RecordingTokenizer:
    """A tokenizer that records the keyword arguments of every call."""

    def __init__(self, tokenizer: object) -> None:
        self.tokenizer = tokenizer
        self.calls: list[dict[str, object]] = []

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls.append(kwargs)
        return self.tokenizer(*args, **kwargs)  # type: ignore[operator]


def test_hf_scorer_max_length_defaults_to_512(tiny: dict[str, Path]) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from divtrace.cli.common import schema_default
    from divtrace.metrics.nli import DEFAULT_NLI_MAX_LENGTH

    assert HFNLIScorer().max_length == DEFAULT_NLI_MAX_LENGTH == 512
    assert schema_default("metrics.nli_max_length") == DEFAULT_NLI_MAX_LENGTH
    path = tiny["standard"]
    spy = RecordingTokenizer(AutoTokenizer.from_pretrained(path))
    model = AutoModelForSequenceClassification.from_pretrained(path)
    scorer = HFNLIScorer.from_loaded(model, spy, device="cpu", batch_size=2, progress=False)
    scorer.score(PREMISES, HYPOTHESES)
    assert len(spy.calls) == 2
    for call in spy.calls:
        assert (call["max_length"], call["truncation"], call["padding"]) == (512, True, True)
    for bad in (1, 0, True, 2.5, "512"):
        with pytest.raises(MetricError, match="max_length"):
            HFNLIScorer(str(path), max_length=bad)  # type: ignore[arg-type]


def test_hf_scorer_truncates_at_max_length(tiny: dict[str, Path]) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = tiny["standard"]
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    n_tokens = len(tok(LONG_PREMISE, SHORT_HYPOTHESIS)["input_ids"])
    assert 16 < n_tokens <= 64  # fits the tiny model's positions, longer than the limit below

    def truncated(max_length: int) -> list[float]:
        enc = tok(LONG_PREMISE, SHORT_HYPOTHESIS, truncation=True, max_length=max_length,
                  return_tensors="pt")  # fmt: skip
        assert enc["input_ids"].shape[1] == min(max_length, n_tokens)
        with torch.no_grad():
            probs = torch.softmax(model(**enc).logits[0], -1)
        return [float(probs[0]), float(probs[2])]

    short = HFNLIScorer(str(path), device="cpu", max_length=16, progress=False)
    full = HFNLIScorer(str(path), device="cpu", progress=False)
    got_short = short.score([LONG_PREMISE], [SHORT_HYPOTHESIS])[0]
    got_full = full.score([LONG_PREMISE], [SHORT_HYPOTHESIS])[0]
    assert got_short == pytest.approx(truncated(16), abs=1e-5)
    assert got_full == pytest.approx(truncated(512), abs=1e-5)
    assert np.abs(got_short - got_full).max() > 1e-3  # the limit changed what the model saw


def test_diversity_command_passes_nli_max_length(tiny: dict[str, Path], tmp_path: Path) -> None:
    from divtrace import io
    from divtrace.cli import main

    gen = generations().with_columns(
        answer=pl.format("{} {}. The cat sat on the mat.", pl.lit(LONG_PREMISE), "sample")
    )
    rows = gen.with_columns(
        raw=pl.col("answer"), prompt_text=pl.lit("q"), reasoning=pl.lit(None, pl.String),
        n_tokens=pl.lit(8), finish_reason=pl.lit("stop"), backend=pl.lit("transformers"),
    )  # fmt: skip
    schema = io.empty_frame("generations").schema
    path = tmp_path / "gen.parquet"
    io.write_table(rows.select(schema.names()).cast(dict(schema)), path, "generations")

    def run(*extra: str) -> pl.DataFrame:
        out = tmp_path / f"div{len(extra)}.parquet"
        argv = ["diversity", "--generations", str(path), "--out", str(out), "--metrics", "nli",
                "--nli-model", str(tiny["standard"]), "--device", "cpu", *extra]  # fmt: skip
        assert main(argv) == 0
        meta = io.read_metadata(out)
        assert meta["nli_max_length"] == (int(extra[-1]) if extra else 512)
        return read_table(out, "diversity")

    default, limited = run(), run("--nli-max-length", "12")
    want = compute_diversity(gen, ["nli"], nli_model=str(tiny["standard"]), nli_max_length=12)
    got = limited["value"].to_numpy()
    assert got == pytest.approx(want["value"].to_numpy(), abs=1e-6, nan_ok=True)
    scored = ~np.isnan(got)
    assert scored.sum() >= 2  # p1 and p2 per input (the other sets have fewer than 2 outputs)
    assert np.abs(got[scored] - default["value"].to_numpy()[scored]).max() > 1e-4
