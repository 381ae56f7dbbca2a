"""NLI diversity (Stasaski & Hearst 2022, as the paper computes it), docs/design.md §5.

This follows the paper's released implementation step by step, except for how the sentence
positions are drawn (see *Seeding*). For a set S of outputs:

1. Each output is cut into sentences by :func:`split_sentences`: carriage returns and tabs become
   spaces, the text is split wherever a run of ``.``, ``!`` or ``?`` is followed by whitespace
   (the run and the whitespace are removed) or at a run of newlines, every piece is stripped and
   blank pieces are dropped. A text whose pieces are all blank but which is not blank itself
   (e.g. ``"... "``) counts as one sentence, its stripped self; a blank text has no sentence.
2. Every unordered pair of outputs (a, b) of S is considered (duplicated outputs count as
   separate outputs; a pair of identical texts is scored by the model like any other). A pair in
   which either output has no sentence is skipped: it contributes nothing.
3. Sentence i of a is aligned with sentence i of b, for i < n = min(#a, #b). If n exceeds
   ``max_pairs`` (3), ``max_pairs`` of the n positions are drawn without replacement; otherwise
   all n are used.
4. Each chosen aligned pair is scored in both directions by an MNLI classifier, with premise a_i
   and hypothesis b_i and the other way round; one direction scores P(entailment) −
   P(contradiction) (softmax over the model's labels), and the sentence pair's similarity is the
   mean of its two directions.
5. **NLI diversity = 1 − the mean similarity of all chosen sentence pairs of all scored output
   pairs of S**, pooled: an output pair contributes one term per chosen position, so a pair with
   three aligned sentences weighs three times as much as a pair with one. The value lies in
   [0, 2]; contradictions push it above 1.

A set with no scored output pair (fewer than two outputs, or every pair skipped) has no NLI
diversity: its value is NaN, a missing value (a null row in the diversity table), where the
paper's code returns 0.0.

Seeding (a deliberate departure from the paper, whose code draws the positions from a single
``random.Random(1234)`` shared by the whole run, so a set's value depends on which sets were
processed before it): the draw for an output pair is a pure function of (the set's seed, the two
texts). The generator is ``np.random.default_rng([seed, h_lo, h_hi])`` with h_lo <= h_hi the 64-bit
SHA-1 prefixes of the two texts. Results therefore depend neither on the order in which sets are
processed nor on the order of outputs inside a set, identical output pairs make identical choices
(and are scored once), and reruns are reproducible (for a given NumPy ``Generator`` stream). The
table-level API seeds each set with :func:`set_seed` of its (model, task, cot, scope, prompt_id).
In a set where no output pair has more than three aligned sentences nothing is drawn, and the
value is the paper's (up to floating-point rounding).

Tokenisation, as in the paper: premise and hypothesis are encoded as one pair, with padding and
truncation to ``max_length`` tokens (default 512, :data:`DEFAULT_NLI_MAX_LENGTH`; config key
``metrics.nli_max_length``).

Speed: :func:`nli_many` takes all sets of a file at once, scores each distinct unordered pair of
texts once per seed, and sends every distinct directed sentence pair of the whole file to the
scorer exactly once, in a canonical (sorted) order. :class:`HFNLIScorer` additionally caches
scores across calls, batches by length and runs on CUDA when available. torch and transformers
are imported only when the model is first loaded.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from divtrace.errors import MetricError

DEFAULT_NLI_MODEL = "FacebookAI/roberta-large-mnli"
MAX_SENTENCE_PAIRS = 3
#: Tokens of an encoded (premise, hypothesis) pair, as in the paper (config
#: ``metrics.nli_max_length``).
DEFAULT_NLI_MAX_LENGTH = 512

# The paper's sentence boundary: a run of terminal punctuation followed by whitespace, or a run
# of newlines; the boundary itself is removed.
_SENTENCE_BREAK = re.compile(r"[.!?]+\s+|\n+")
_UINT64 = (1 << 64) - 1


class PairScorer(Protocol):
    """An NLI classifier: one row ``[P(entailment), P(contradiction)]`` per (premise, hypothesis).

    ``score(premises, hypotheses)`` gets two equally long lists and returns an array of shape
    ``(n, 2)``.
    """

    def score(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray: ...


# --------------------------------------------------------------------------------------------
# Sentences, seeds


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, split as the paper's code splits them (see the module docstring).

    ``\\r`` and ``\\t`` become spaces; the text is split at ``[.!?]+\\s+`` (the punctuation is
    dropped with the whitespace) and at ``\\n+``; pieces are stripped and blank ones dropped. If
    no piece is left, the stripped text is the only sentence, unless it is blank: a blank text
    has no sentence.
    """
    text = text.replace("\r", " ").replace("\t", " ")
    sentences = [piece.strip() for piece in _SENTENCE_BREAK.split(text)]
    sentences = [piece for piece in sentences if piece]
    if sentences:
        return sentences
    whole = text.strip()
    return [whole] if whole else []


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()[:8], "big")


def set_seed(*keys: object) -> int:
    """A deterministic 64-bit seed from ``keys`` (``None`` is distinct from ``"None"``/``""``).

    Independent of ``PYTHONHASHSEED``, the platform and the order in which sets are processed.
    """
    parts = ["\x00" if k is None else "s" + str(k) for k in keys]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def choose_positions(
    n_aligned: int, seed: int, text_a: str, text_b: str, max_pairs: int
) -> list[int]:
    """The aligned sentence positions scored for the pair (text_a, text_b), in increasing order.

    All positions when there are at most ``max_pairs``; otherwise ``max_pairs`` distinct ones
    drawn with a generator seeded by (seed, the texts' hashes in sorted order), so the choice is
    symmetric in the two texts and independent of processing order.
    """
    return _choose(n_aligned, seed, _hash64(text_a), _hash64(text_b), max_pairs)


def _choose(n_aligned: int, seed: int, hash_a: int, hash_b: int, max_pairs: int) -> list[int]:
    if n_aligned <= max_pairs:
        return list(range(n_aligned))
    lo, hi = (hash_a, hash_b) if hash_a <= hash_b else (hash_b, hash_a)
    rng = np.random.default_rng([int(seed) & _UINT64, lo, hi])
    return sorted(int(p) for p in rng.choice(n_aligned, size=max_pairs, replace=False))


# --------------------------------------------------------------------------------------------
# The batched metric


def _check_scores(scores: Any, n: int) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.shape != (n, 2):
        raise ValueError(
            f"NLI scorer returned shape {arr.shape} for {n} sentence pairs; expected (n, 2) "
            "holding [P(entailment), P(contradiction)]"
        )
    if not np.isfinite(arr).all():
        raise ValueError("NLI scorer returned non-finite probabilities")
    return arr


def nli_many(
    sets: Sequence[Sequence[str]],
    seeds: Sequence[int],
    scorer: PairScorer,
    *,
    max_pairs: int = MAX_SENTENCE_PAIRS,
    stats: dict[str, int] | None = None,
) -> np.ndarray:
    """NLI diversity of every set of texts in ``sets`` (one seed per set), in one scorer call.

    A set without a scored output pair (fewer than two outputs, or every pair has an output with
    no sentence) gets NaN. Every distinct directed sentence pair of all sets together is scored
    once. ``stats``, when given, is updated with counts: ``n_sets``; ``n_sets_without_pairs``
    (sets whose value is NaN); ``n_output_pairs`` (unordered pairs of outputs over all sets),
    ``n_skipped_pairs`` (those of them skipped because an output has no sentence) and
    ``n_distinct_output_pairs`` (distinct (seed, text, text) pairs actually evaluated);
    ``n_sentence_pairs`` (directed sentence pairs the definition asks for, over all output
    pairs) and ``n_sentence_pairs_scored`` (distinct ones sent to the scorer).
    """
    if isinstance(sets, str):
        raise TypeError("nli_many expects a sequence of sets of texts, not a string")
    if len(seeds) != len(sets):
        raise ValueError(f"nli_many got {len(seeds)} seeds for {len(sets)} sets")
    if isinstance(max_pairs, bool) or not isinstance(max_pairs, (int, np.integer)) or max_pairs < 1:
        raise ValueError(f"NLI max_pairs must be an integer >= 1, got {max_pairs!r}")

    # Distinct texts -> codes; each text split once.
    text_code: dict[str, int] = {}
    texts: list[str] = []
    set_codes: list[list[int]] = []
    for g, members in enumerate(sets):
        if isinstance(members, str):
            raise TypeError(f"NLI set {g} is a single string; expected a sequence of texts")
        codes: list[int] = []
        for text in members:
            if not isinstance(text, str):
                raise TypeError(f"NLI set {g} holds a non-string text: {text!r}")
            code = text_code.get(text)
            if code is None:
                code = text_code[text] = len(texts)
                texts.append(text)
            codes.append(code)
        set_codes.append(codes)
    split = [split_sentences(t) for t in texts]
    hashes = [_hash64(t) for t in texts]
    # Sentence ids in sorted order, so sorting packed (premise, hypothesis) ids sorts the strings.
    sentences = sorted({s for sents in split for s in sents})
    if len(sentences) > 0xFFFFFFFF:  # pragma: no cover - ids are packed in 32 bits below
        raise OverflowError("too many distinct sentences for one nli_many call")
    sentence_id = {s: i for i, s in enumerate(sentences)}
    text_sentences = [[sentence_id[s] for s in sents] for sents in split]

    # Distinct unordered output pairs per seed; each set keeps the pair ids of all its pairs.
    pair_id: dict[tuple[int, int, int], int] = {}
    pair_keys: list[tuple[int, int, int]] = []
    set_pairs: list[np.ndarray] = []
    for codes, seed in zip(set_codes, seeds, strict=True):
        seed = int(seed) & _UINT64
        ids: list[int] = []
        for i in range(len(codes)):
            for j in range(i + 1, len(codes)):
                a, b = codes[i], codes[j]
                key = (seed, a, b) if a <= b else (seed, b, a)
                pid = pair_id.get(key)
                if pid is None:
                    pid = pair_id[key] = len(pair_keys)
                    pair_keys.append(key)
                ids.append(pid)
        set_pairs.append(np.asarray(ids, dtype=np.int64))

    n_pairs = len(pair_keys)
    skipped = np.zeros(n_pairs, dtype=bool)  # an output without a sentence: not scored
    owner: list[int] = []
    premise: list[int] = []
    hypothesis: list[int] = []
    for pid, (seed, a, b) in enumerate(pair_keys):
        sa, sb = text_sentences[a], text_sentences[b]
        n_aligned = min(len(sa), len(sb))
        if n_aligned == 0:
            skipped[pid] = True
            continue
        for p in _choose(n_aligned, seed, hashes[a], hashes[b], int(max_pairs)):
            owner.append(pid)
            premise.append(sa[p])
            hypothesis.append(sb[p])

    # Both directions of every chosen sentence pair, deduplicated over the whole call.
    owner_arr = np.asarray(owner + owner, dtype=np.int64)
    prem = np.asarray(premise + hypothesis, dtype=np.int64)
    hyp = np.asarray(hypothesis + premise, dtype=np.int64)
    packed = (prem << 32) | hyp
    unique_keys, inverse = np.unique(packed, return_inverse=True)
    inverse = inverse.reshape(-1)
    # Per output pair: the sum of its sentence-pair similarities (each the mean of its two
    # directions) and the number of its chosen sentence pairs.
    similarity_sum: np.ndarray = np.zeros(n_pairs, dtype=np.float64)
    if unique_keys.size:
        scores = _check_scores(
            scorer.score(
                [sentences[int(k) >> 32] for k in unique_keys],
                [sentences[int(k) & 0xFFFFFFFF] for k in unique_keys],
            ),
            unique_keys.size,
        )
        directed = scores[:, 0] - scores[:, 1]
        similarity_sum = 0.5 * np.bincount(owner_arr, weights=directed[inverse], minlength=n_pairs)
    n_chosen = np.bincount(np.asarray(owner, dtype=np.int64), minlength=n_pairs)

    # Pooled over the sentence pairs of all output pairs of the set (not a mean of pair means).
    out = np.full(len(sets), np.nan, dtype=np.float64)
    for g, pair_ids in enumerate(set_pairs):
        count = int(n_chosen[pair_ids].sum())
        if count:
            out[g] = 1.0 - float(similarity_sum[pair_ids].sum()) / count

    if stats is not None:
        for name, value in (
            ("n_sets", len(sets)),
            ("n_sets_without_pairs", int(np.isnan(out).sum())),
            ("n_output_pairs", sum(int(ids.size) for ids in set_pairs)),
            ("n_skipped_pairs", sum(int(skipped[ids].sum()) for ids in set_pairs)),
            ("n_distinct_output_pairs", n_pairs),
            ("n_sentence_pairs", 2 * sum(int(n_chosen[ids].sum()) for ids in set_pairs)),
            ("n_sentence_pairs_scored", int(unique_keys.size)),
        ):
            stats[name] = stats.get(name, 0) + value
    return out


def nli_diversity(
    texts: Sequence[str], scorer: PairScorer, seed: int = 0, *, max_pairs: int = MAX_SENTENCE_PAIRS
) -> float:
    """NLI diversity of one set of texts (see the module docstring); NaN without a scored pair."""
    return float(nli_many([texts], [seed], scorer, max_pairs=max_pairs)[0])


# --------------------------------------------------------------------------------------------
# The Hugging Face MNLI scorer


def label_indices(id2label: Mapping[Any, Any]) -> tuple[int, int]:
    """(entailment index, contradiction index) from a model config's ``id2label``.

    Labels are matched case-insensitively by their prefixes "entail" and "contradict"; each must
    match exactly one label, or a :class:`~divtrace.errors.MetricError` (a ValueError) names the
    labels found.
    """
    labels = {int(k): str(v) for k, v in id2label.items()}

    def find(prefix: str) -> list[int]:
        return sorted(i for i, v in labels.items() if v.strip().lower().startswith(prefix))

    entail, contradict = find("entail"), find("contradict")
    if len(entail) != 1 or len(contradict) != 1:
        shown = ", ".join(f"{i}: {labels[i]!r}" for i in sorted(labels))
        raise MetricError(
            "an NLI model needs exactly one label starting with 'entail' and one starting with "
            f"'contradict' (case-insensitive) in config.id2label; found {{{shown}}}"
        )
    return entail[0], contradict[0]


class HFNLIScorer:
    """MNLI sequence classifier from transformers, scoring each distinct sentence pair once.

    ``model`` is a local directory or a Hugging Face hub name (a local directory is loaded with
    the hub switched off). Label indices come from ``model.config.id2label`` (see
    :func:`label_indices`); probabilities are the softmax over all labels. Pairs are sorted by
    length (longest first) into batches of ``batch_size``; each pair is encoded together, padded
    and truncated to ``max_length`` tokens (default 512, as in the paper; a
    :class:`~divtrace.errors.MetricError` below 2), and run under ``torch.inference_mode`` on
    CUDA when available unless ``device`` is given; ``dtype`` ("float16", "bfloat16") casts the
    model, e.g. for speed on a GPU (default: as stored; softmax is always taken in float32).
    Scores are cached in memory across calls; ``stats`` counts pairs requested
    (``n_requested``) and pairs actually run through the model (``n_scored``). The model loads
    lazily, on the first pair that needs scoring. Progress goes to stderr through tqdm.
    """

    DEFAULT_MAX_LENGTH: ClassVar[int] = DEFAULT_NLI_MAX_LENGTH

    def __init__(
        self,
        model: str = DEFAULT_NLI_MODEL,
        device: str | None = None,
        batch_size: int = 64,
        max_length: int = DEFAULT_NLI_MAX_LENGTH,
        *,
        dtype: str | None = None,
        progress: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"HFNLIScorer batch_size must be >= 1, got {batch_size}")
        if (
            isinstance(max_length, bool)
            or not isinstance(max_length, (int, np.integer))
            or max_length < 2
        ):
            raise MetricError(f"NLI max_length must be an integer >= 2, got {max_length!r}")
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.max_length = int(max_length)
        self.dtype = dtype
        self.progress = progress
        self.stats: dict[str, int] = {"n_requested": 0, "n_scored": 0}
        self.entail_index: int | None = None
        self.contradict_index: int | None = None
        self._index: dict[tuple[str, str], int] = {}
        self._table = np.zeros((0, 2), dtype=np.float64)
        self._tokenizer: Any = None
        self._model: Any = None

    @classmethod
    def from_loaded(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        name: str = "<in-memory model>",
        device: str | None = None,
        batch_size: int = 64,
        max_length: int = DEFAULT_NLI_MAX_LENGTH,
        dtype: str | None = None,
        progress: bool = True,
    ) -> HFNLIScorer:
        """A scorer around an already loaded sequence classifier and its tokenizer."""
        scorer = cls(name, device, batch_size, max_length, dtype=dtype, progress=progress)
        scorer._install(model, tokenizer)
        return scorer

    @property
    def n_saved(self) -> int:
        """Model evaluations avoided by deduplication and caching so far."""
        return self.stats["n_requested"] - self.stats["n_scored"]

    def fresh(self) -> HFNLIScorer:
        """A scorer with the same settings and an empty cache, sharing this one's model once it
        is loaded (see :meth:`divtrace.metrics.embeddings.Embedder.fresh`)."""
        settings: dict[str, Any] = {
            "device": self.device,
            "batch_size": self.batch_size,
            "max_length": self.max_length,
            "dtype": self.dtype,
            "progress": self.progress,
        }
        if self._model is None:
            return HFNLIScorer(self.model, **settings)
        return HFNLIScorer.from_loaded(self._model, self._tokenizer, name=self.model, **settings)

    def load(self) -> Any:
        """Load the tokenizer and model (once) and read the label indices."""
        if self._model is None:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            from divtrace.metrics.embeddings import _hub_offline

            path = Path(self.model).expanduser()
            local = path.exists()
            name = str(path) if local else self.model
            try:
                with _hub_offline(local):
                    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
                    model = AutoModelForSequenceClassification.from_pretrained(
                        name, local_files_only=local
                    )
            except (OSError, ValueError) as err:  # no such path or hub model, not a classifier
                where = name if local else f"hub model {name}"
                raise MetricError(
                    f"NLI model {self.model!r} ({where}) cannot be loaded: "
                    f"{type(err).__name__}: {err}"
                ) from err
            self._install(model, tokenizer)
        return self._model

    def _install(self, model: Any, tokenizer: Any) -> None:
        import torch

        try:
            entail, contradict = label_indices(model.config.id2label)
        except MetricError as err:
            raise MetricError(f"NLI model {self.model!r}: {err}") from err
        n_labels = int(model.config.num_labels)
        if max(entail, contradict) >= n_labels:
            raise MetricError(
                f"NLI model {self.model!r}: label index out of range of its {n_labels} outputs"
            )
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.dtype is None:
            model.to(device)
        else:
            dtype = getattr(torch, self.dtype, None)
            if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
                raise ValueError(
                    f"HFNLIScorer dtype must name a torch float type, got {self.dtype!r}"
                )
            model.to(device=device, dtype=dtype)
        model.eval()
        self.device = device
        self.entail_index, self.contradict_index = entail, contradict
        self._tokenizer = tokenizer
        self._model = model

    def _predict(self, premises: list[str], hypotheses: list[str]) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        model = self.load()
        tokenizer = self._tokenizer
        assert self.entail_index is not None and self.contradict_index is not None
        columns = [self.entail_index, self.contradict_index]
        n = len(premises)
        lengths = np.fromiter(
            (len(p) + len(h) for p, h in zip(premises, hypotheses, strict=True)),
            dtype=np.int64,
            count=n,
        )
        order = np.argsort(-lengths, kind="stable")  # longest first: memory errors come early
        out = np.empty((n, 2), dtype=np.float64)
        with (
            torch.inference_mode(),
            tqdm(
                total=n,
                desc="NLI",
                unit="pair",
                file=sys.stderr,
                disable=not self.progress,
                mininterval=2.0,
            ) as bar,
        ):
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = tokenizer(
                    [premises[i] for i in idx],
                    [hypotheses[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                batch = {k: v.to(self.device) for k, v in batch.items()}
                logits = model(**batch).logits
                probs = torch.softmax(logits.float(), dim=-1)[:, columns]
                out[idx] = probs.cpu().numpy().astype(np.float64)
                bar.update(len(idx))
        return out

    def score(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        """``[P(entailment), P(contradiction)]`` per (premise, hypothesis): shape (n, 2)."""
        if isinstance(premises, str) or isinstance(hypotheses, str):
            raise TypeError("HFNLIScorer.score expects sequences of texts, not single strings")
        if len(premises) != len(hypotheses):
            raise ValueError(
                f"HFNLIScorer.score got {len(premises)} premises and {len(hypotheses)} hypotheses"
            )
        keys = list(zip(map(str, premises), map(str, hypotheses), strict=True))
        self.stats["n_requested"] += len(keys)
        missing: dict[tuple[str, str], None] = {}
        for key in keys:
            if key not in self._index:
                missing[key] = None
        if missing:
            new = list(missing)
            probs = self._predict([p for p, _ in new], [h for _, h in new])
            base = self._table.shape[0]
            for offset, key in enumerate(new):
                self._index[key] = base + offset
            self._table = np.concatenate([self._table, probs])
            self.stats["n_scored"] += len(new)
        rows = np.fromiter((self._index[k] for k in keys), dtype=np.int64, count=len(keys))
        return self._table[rows]
