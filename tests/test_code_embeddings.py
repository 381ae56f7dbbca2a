"""code_sbert / code_vendi: embedding diversity of the extracted code with a code encoder.

The encoder is a tiny RoBERTa (divtrace.metrics.testing.tiny_code_encoder; UniXcoder is a RoBERTa
encoder; nothing from the hub): sentence-transformers wraps a plain encoder with mean pooling, as
the paper's script relied on (PAPER.md §8.1), and the values are checked against the paper's
formulas on the embeddings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from divtrace.metrics import compute_diversity
from divtrace.metrics.code import extract_code

PROGRAMS = [
    "Here:\n```python\ndef add(a, b):\n    return a + b\n```",
    "def add(x, y):\n    total = x + y\n    return total",
    "```\ndef add(a, b):\n    return sum([a, b])\n```\nDone.",
    "I cannot write this.\n```python\n\n```",
]


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    pytest.importorskip("sentence_transformers")
    from divtrace.metrics.testing import tiny_code_encoder

    directory = tmp_path_factory.mktemp("tiny-code-encoder")
    words = [extract_code(p) for p in PROGRAMS] + ["def return sum total"]
    return tiny_code_encoder(words, directory)


def paper_sbert(emb: np.ndarray) -> float:
    sim = emb @ emb.T
    return float(1.0 - np.mean(sim[np.triu_indices(len(sim), k=1)]))


def paper_vendi(emb: np.ndarray) -> float:
    lam = np.clip(np.linalg.eigvalsh(emb @ emb.T), 0, None)
    p = lam / lam.sum()
    p = p[p > 1e-12]
    return float(np.exp(-np.sum(p * np.log(p))))


def generations(task: str) -> pl.DataFrame:
    n = len(PROGRAMS)
    return pl.DataFrame(
        {
            "model": ["m"] * n,
            "task": [task] * n,
            "cot": ["on"] * n,
            "prompt_id": ["p"] * n,
            "sample": list(range(n)),
            "answer": PROGRAMS,
        }
    )


def test_code_sbert_and_vendi_on_the_extracted_code(tiny_encoder):
    from divtrace.metrics.embeddings import Embedder

    table = compute_diversity(
        generations("mbpp"),
        ["code_sbert", "code_vendi", "sbert"],
        code_model=str(tiny_encoder),
        code_max_length=32,
        embedder=Embedder(str(tiny_encoder), device="cpu"),
    )
    got = dict(
        zip(
            table.filter(pl.col("scope") == "per_input")["metric"],
            table.filter(pl.col("scope") == "per_input")["value"],
            strict=True,
        )
    )
    codes = [c for c in (extract_code(p) for p in PROGRAMS) if c.strip()]
    assert len(codes) == 3  # the empty fenced block is left out, as the paper's script does
    emb = Embedder(str(tiny_encoder), device="cpu", max_seq_length=32).embed(codes)
    assert got["code_sbert"] == pytest.approx(paper_sbert(emb), rel=1e-6)
    assert got["code_vendi"] == pytest.approx(paper_vendi(emb), rel=1e-6)
    # the text embedding of the whole answers is another quantity
    assert got["sbert"] != pytest.approx(got["code_sbert"], rel=1e-3)
    # CRUXEval is a code-embedding family too; a text task is not
    assert set(
        compute_diversity(generations("cruxeval"), ["code_sbert"], code_model=str(tiny_encoder))[
            "metric"
        ]
    ) == {"code_sbert"}
    assert compute_diversity(generations("gsm8k"), ["code_sbert", "ead"])[
        "metric"
    ].unique().to_list() == ["ead"]


def test_the_code_model_is_fetched_as_its_own_role(tiny_encoder, tmp_path):
    from divtrace.config import Study, validate_config
    from divtrace.models import fetch_metric_model

    manifest = fetch_metric_model("code", str(tiny_encoder), tmp_path / "code")
    assert manifest["role"] == "code" and manifest["source"] == "local"
    import yaml

    demo = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
    config = yaml.safe_load(demo.read_text(encoding="utf-8"))
    config["metrics"] = {"names": ["ead", "code_vendi"], "code_model": str(tiny_encoder)}
    config = validate_config(config)
    assert Study(config).metric_models() == {"code": (str(tiny_encoder), "main")}
