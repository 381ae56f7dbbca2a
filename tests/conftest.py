"""Shared fixtures. The repository root is the working directory of workflow tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_REAL = REPO.parent / "shared" / "data" / "real"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
