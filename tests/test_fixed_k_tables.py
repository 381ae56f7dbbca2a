"""The tables of the rows at fixed set sizes: diversity_k and the size-matched decomposition."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from divtrace.analysis.tables import build_tables
from divtrace.lineage import Lineage
from divtrace.metrics import compute_diversity, vendi_score

LINEAGE = {"base": {"stage": "base"}, "sft": {"parent": "base", "stage": "sft", "lineage": "x"}}
N_PROMPTS, K = 4, 8


class HashEmbedder:
    def embed(self, items):
        out = []
        for t in items:
            e = np.random.default_rng(sum(map(ord, t))).normal(size=6)
            out.append(e / np.linalg.norm(e))
        return np.stack(out)


def run(model: str, n_correct: list[int]) -> tuple[pl.DataFrame, pl.DataFrame]:
    gen, qual = [], []
    for p in range(N_PROMPTS):
        for j in range(K):
            key = {"model": model, "task": "gsm8k", "cot": "on", "prompt_id": f"p{p}", "sample": j}
            gen.append({**key, "answer": f"{model} says {p} {j} " + "x" * j})
            qual.append({**key, "correct": j < n_correct[p]})
    return pl.DataFrame(gen), pl.DataFrame(qual)


def brute_vendi(emb: np.ndarray, k: int) -> float:
    return float(
        np.mean([vendi_score(emb[list(c)]) for c in itertools.combinations(range(len(emb)), k)])
    )


def test_diversity_k_table_and_the_size_matched_decomposition():
    counts = {"base": [8, 5, 3, 1], "sft": [2, 8, 4, 0]}
    frames = []
    quality = []
    for model, c in counts.items():
        g, q = run(model, c)
        frames.append(
            compute_diversity(
                g, ["sbert", "vendi"], quality=q, k_grid=[2, 4], embedder=HashEmbedder()
            )
        )
        quality.append(q)
    diversity = pl.concat(frames)
    tables = build_tables(diversity, None, Lineage.from_models(LINEAGE), n_boot=50)

    # The whole-set tables ignore the k rows.
    whole = tables["diversity"]
    assert (
        whole.filter(pl.col("metric") == "vendi").height == 2 * 2 * 2
    )  # models x scopes x subsets

    at_k = tables["diversity_k"]
    row = at_k.filter(
        (pl.col("model") == "base")
        & (pl.col("subset") == "correct")
        & (pl.col("metric") == "vendi")
        & (pl.col("k") == 4)
    ).row(0, named=True)
    # base's correct sets reach k = 4 on p0 (8 correct) and p1 (5): two prompts, two missing
    assert (row["n_prompts"], row["n_missing"]) == (2, 2)
    emb = HashEmbedder()
    texts = lambda m, p, n: [f"{m} says {p} {j} " + "x" * j for j in range(n)]  # noqa: E731
    want = np.mean([brute_vendi(emb.embed(texts("base", p, n)), 4) for p, n in ((0, 8), (1, 5))])
    assert row["value"] == pytest.approx(want, rel=1e-9)
    assert row["ci_low"] <= row["value"] <= row["ci_high"]

    # Size-matched Vendi: per prompt the largest grid k both correct counts reach:
    # p0: min(8, 2) = 2 -> k 2; p1: min(5, 8) = 5 -> k 4; p2: min(3, 4) -> k 2; p3: left out.
    dec = tables["decomposition"].filter(
        (pl.col("metric") == "vendi") & (pl.col("reference") == "base")
    )
    assert dec.height == 1
    d = dec.row(0, named=True)
    assert d["n_prompts"] == 3 and d["n_left_out_both"] == 1 and d["n_left_out_checkpoint"] == 0
    assert d["matched_k"] == pytest.approx((2 + 4 + 2) / 3)

    def at(model: str, p: int, n: int, k: int) -> float:
        return brute_vendi(emb.embed(texts(model, p, n)), k)

    plan = [(0, 8, 2, 2), (1, 5, 8, 4), (2, 3, 4, 2)]  # prompt, base correct, sft correct, k
    d_all_ref = np.mean([at("base", p, K, k) for p, _, _, k in plan])
    d_all = np.mean([at("sft", p, K, k) for p, _, _, k in plan])
    d_cor_ref = np.mean([at("base", p, cb, k) for p, cb, _, k in plan])
    d_cor = np.mean([at("sft", p, cs, k) for p, _, cs, k in plan])
    assert d["d_all_ref"] == pytest.approx(d_all_ref, rel=1e-9)
    assert d["d_correct"] == pytest.approx(d_cor, rel=1e-9)
    assert d["total"] == pytest.approx(d_all_ref - d_all, rel=1e-9)
    assert d["residual"] == pytest.approx(d_cor_ref - d_cor, rel=1e-9)
    assert d["total_all"] is None and d["unattributed"] is None
    # SBERT's whole-set split is still there, with no matched k
    sbert = tables["decomposition"].filter(pl.col("metric") == "sbert")
    assert sbert.height == 2 and sbert["matched_k"].null_count() == 2


def test_figures_of_the_curves_over_k_and_of_distinct_answers(tmp_path):
    from divtrace.figures import draw_figures
    from divtrace.metrics.classes import class_keys

    frames = []
    for model, c in {"base": [8, 5, 3, 1], "sft": [2, 8, 4, 0]}.items():
        g, q = run(model, c)
        q = q.with_columns(extracted=pl.Series([str(j % (2 + c[0] % 3)) for j in range(q.height)]))
        q = q.with_columns(class_keys(q, "gsm8k"))
        frames.append(
            compute_diversity(
                g,
                ["sbert", "vendi", "distinct_answers"],
                quality=q,
                k_grid=[2, 4, 8],
                embedder=HashEmbedder(),
            )
        )
    lineage = Lineage.from_models(LINEAGE)
    tables = build_tables(pl.concat(frames), None, lineage, n_boot=20)
    assert not tables["diversity_k"].filter(pl.col("metric") == "distinct_answers").is_empty()
    names = ("diversity_by_k", "distinct_answers_by_stage")
    paths = draw_figures(tables, lineage, tmp_path, names=names)
    assert sorted(p.name for p in paths) == sorted(
        f"{n}.{e}" for n in names for e in ("pdf", "png")
    )
    assert all(p.stat().st_size > 1000 for p in paths)
    # Without rows at a fixed k the figure is drawn and says so, no error.
    empty = draw_figures({}, lineage, tmp_path / "empty", names=names)
    assert len(empty) == 4
