"""Shared fixtures. The repository root is the working directory of workflow tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_REAL = REPO.parent / "shared" / "data" / "real"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1, also for huggingface_hub and datasets when an earlier test of this
    process imported them already (they read the variable once, at import: without this, a hub
    id is tried online and the lookup waits out its retries, about 20 s on this machine)."""
    import sys

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    if "huggingface_hub" in sys.modules:
        monkeypatch.setattr(sys.modules["huggingface_hub"].constants, "HF_HUB_OFFLINE", True)
    if "datasets" in sys.modules:
        monkeypatch.setattr(sys.modules["datasets"].config, "HF_HUB_OFFLINE", True)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def demo_config() -> dict:
    import yaml

    with open(REPO / "config" / "config.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture
def shared_real() -> Path:
    """``../shared/data/real`` (the real benchmark subsets); the test skips when it is absent."""
    if not SHARED_REAL.is_dir():
        pytest.skip(f"real benchmark data absent: {SHARED_REAL}")
    return SHARED_REAL
