"""Fetching a Hugging Face snapshot (divtrace.models.fetch_hf) without a network.

A tiny Olmo 3 checkpoint is saved with ``save_pretrained`` and laid out as the Hugging Face hub
cache does it (``models--org--name/{blobs,refs,snapshots}``, snapshot files linked to blobs), so
``snapshot_download(..., local_files_only=True)`` resolves it exactly as on a cluster whose shared
``HF_HOME`` was filled beforehand. The retry logic is tested with a fake downloader.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from divtrace import models
from divtrace.models import FetchError, fetch_hf, fetch_model

from .hubcache import populate_hub_cache

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "allenai-test/Olmo-3-tiny"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny Olmo 3 checkpoint (config, generation config, safetensors weights) on disk."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.Olmo3Config(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = transformers.Olmo3ForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-olmo3")
    model.save_pretrained(out)
    (out / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 64}))
    (out / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    return out


@pytest.fixture
def hf_home(tmp_path, monkeypatch, tiny_checkpoint) -> Path:
    """An offline HF_HOME whose hub cache holds the tiny checkpoint at COMMIT."""
    home = tmp_path / "hf-home"
    populate_hub_cache(home / "hub", REPO, COMMIT, tiny_checkpoint)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


# ---------------------------------------------------------------------------- the cache
def test_offline_fetch_resolves_the_cached_snapshot_and_writes_the_manifest(
    hf_home, tiny_checkpoint, tmp_path
):
    out = tmp_path / "resources" / "models" / "tiny"
    manifest = fetch_hf("tiny", {"repo": REPO, "revision": "main", "parent": "base"}, out)

    written = json.loads((out / "manifest.json").read_text())
    assert written == manifest
    snapshot = hf_home / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT
    assert manifest["commit"] == COMMIT
    assert manifest["revision"] == "main"
    assert manifest["repo"] == REPO
    assert manifest["parent"] == "base"
    assert Path(manifest["path"]) == snapshot
    assert manifest["cache_dir"] == str(hf_home / "hub")
    assert manifest["offline"] is True
    expected = {p.name: p.stat().st_size for p in tiny_checkpoint.iterdir()}
    assert {f["path"]: f["bytes"] for f in manifest["files"]} == expected
    assert {"config.json", "model.safetensors"} <= set(expected)
    assert manifest["total_bytes"] == sum(expected.values())


def test_the_manifest_points_at_a_loadable_checkpoint(hf_home, tmp_path):
    transformers = pytest.importorskip("transformers")
    manifest = fetch_hf("tiny", {"repo": REPO}, tmp_path / "tiny")
    config = transformers.AutoConfig.from_pretrained(manifest["path"])
    assert config.model_type == "olmo3"


def test_fetch_model_goes_offline_when_hf_hub_offline_is_set(hf_home, tmp_path):
    """The path the `fetch_model` rule takes: the environment alone turns the network off."""
    manifest = fetch_model("tiny", {"source": "hf", "repo": REPO}, tmp_path / "tiny", None)
    assert manifest["offline"] is True and manifest["commit"] == COMMIT


def test_hf_hub_cache_takes_precedence_over_hf_home(hf_home, tmp_path, monkeypatch):
    moved = tmp_path / "elsewhere"
    (hf_home / "hub").rename(moved)
    monkeypatch.setenv("HF_HUB_CACHE", str(moved))
    manifest = fetch_hf("tiny", {"repo": REPO}, tmp_path / "tiny")
    assert manifest["cache_dir"] == str(moved)
    assert manifest["path"].startswith(str(moved))


def test_a_pinned_commit_resolves_without_refs(hf_home, tmp_path):
    manifest = fetch_hf("tiny", {"repo": REPO, "revision": COMMIT}, tmp_path / "tiny")
    assert manifest["commit"] == COMMIT and manifest["revision"] == COMMIT


@pytest.mark.parametrize(
    ("spec", "what"),
    [
        ({"repo": "allenai-test/not-cached"}, "allenai-test/not-cached@main"),
        ({"repo": REPO, "revision": "v2"}, f"{REPO}@v2"),
    ],
)
def test_a_cache_miss_names_the_model_key_and_writes_nothing(hf_home, tmp_path, spec, what):
    out = tmp_path / "missing"
    with pytest.raises(FetchError, match=r"models\.missing: cannot fetch") as err:
        fetch_hf("missing", spec, out, local_files_only=True)
    assert what in str(err.value) and "offline" in str(err.value)
    assert not (out / "manifest.json").exists()


def test_a_snapshot_without_weights_is_refused(tmp_path, monkeypatch, tiny_checkpoint):
    files = tmp_path / "no-weights"
    files.mkdir()
    (files / "config.json").write_bytes((tiny_checkpoint / "config.json").read_bytes())
    home = tmp_path / "hf-home"
    populate_hub_cache(home / "hub", REPO, COMMIT, files)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(FetchError, match=r"models\.tiny: .*no \*\.safetensors weights"):
        fetch_hf("tiny", {"repo": REPO}, tmp_path / "tiny", local_files_only=True)
    assert not (tmp_path / "tiny" / "manifest.json").exists()


# ---------------------------------------------------------------------------- retries
class FakeDownloader:
    """Stands in for huggingface_hub.snapshot_download: raises ``errors`` in turn, then succeeds."""

    def __init__(self, snapshot: Path, errors: list[BaseException]):
        self.snapshot = snapshot
        self.errors = list(errors)
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        if self.errors:
            raise self.errors.pop(0)
        return str(self.snapshot)


@pytest.fixture
def online(monkeypatch, tmp_path, tiny_checkpoint):
    """Network mode with a fake downloader and a recorded (instant) sleep."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    snapshot = populate_hub_cache(tmp_path / "hf-home" / "hub", REPO, COMMIT, tiny_checkpoint)
    sleeps: list[float] = []
    monkeypatch.setattr(models.time, "sleep", sleeps.append)

    def install(errors: list[BaseException]) -> FakeDownloader:
        fake = FakeDownloader(snapshot, errors)
        monkeypatch.setattr("huggingface_hub.snapshot_download", fake)
        return fake

    install.sleeps = sleeps  # type: ignore[attr-defined]
    return install


def test_transient_errors_are_retried_with_exponential_backoff(online, tmp_path):
    fake = online([ConnectionError("reset by peer"), TimeoutError("read timed out")])
    manifest = fetch_hf("tiny", {"repo": REPO}, tmp_path / "tiny", backoff_seconds=0.01)
    assert manifest["commit"] == COMMIT
    assert len(fake.calls) == 3
    assert online.sleeps == [0.01, 0.02]
    call = fake.calls[-1]
    assert call["repo_id"] == REPO and call["revision"] == "main"
    assert call["local_files_only"] is False
    assert call["allow_patterns"] == models.HF_ALLOW_PATTERNS
    assert call["cache_dir"] == tmp_path / "hf-home" / "hub"


def test_retries_give_up_naming_the_model_key(online, tmp_path):
    fake = online([ConnectionError(f"attempt {i}") for i in range(5)])
    with pytest.raises(FetchError, match=r"models\.tiny: cannot fetch .* after 3 attempts"):
        fetch_hf("tiny", {"repo": REPO}, tmp_path / "tiny", retries=3, backoff_seconds=0.001)
    assert len(fake.calls) == 3
    assert online.sleeps == [0.001, 0.002]
    assert not (tmp_path / "tiny" / "manifest.json").exists()


def test_errors_a_retry_cannot_fix_fail_at_once(online, tmp_path):
    from huggingface_hub.errors import HFValidationError

    fake = online([HFValidationError("Repo id must be in the form 'repo_name'")])
    with pytest.raises(FetchError, match=r"models\.tiny: .*HFValidationError"):
        fetch_hf("tiny", {"repo": REPO}, tmp_path / "tiny", backoff_seconds=0.001)
    assert len(fake.calls) == 1 and online.sleeps == []


def test_offline_mode_never_retries(online, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fake = online([OSError("not in the cache")])
    with pytest.raises(FetchError, match=r"models\.tiny: .*\(offline\)"):
        fetch_hf("tiny", {"repo": REPO}, tmp_path / "tiny")
    assert len(fake.calls) == 1 and fake.calls[0]["local_files_only"] is True
    assert online.sleeps == []
