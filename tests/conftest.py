"""Shared fixtures. The repository root is the working directory of workflow tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_REAL = REPO.parent / "shared" / "data" / "real"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: Set once the suite has chosen its SLURM client settings; pytest-xdist's workers inherit it.
_SLURM_CHOSEN = "DIVTRACE_TESTS_SLURM_CHOSEN"
#: The temporary folder of the suite's own SLURM config (see _quick_failing_slurm_conf).
_QUICK_PREFIX = "divtrace-tests-slurm-"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(_SLURM_CHOSEN):
        return
    os.environ[_SLURM_CHOSEN] = "1"
    quick = _quick_failing_slurm_conf()
    if quick is not None:
        os.environ["SLURM_CONF"] = quick


def pytest_report_header(config: pytest.Config) -> str | None:
    conf = os.environ.get("SLURM_CONF", "")
    if Path(conf).parent.name.startswith(_QUICK_PREFIX):
        return f"SLURM controller down: SLURM_CONF={conf} (MessageTimeout=1)"
    return None


def _quick_failing_slurm_conf() -> str | None:
    """Where SLURM's client is installed but its controller is down (after `.ci/slurm.sh
    down`, say), a copy of the SLURM config with MessageTimeout=1; otherwise None.

    Every `snakemake` start imports the SLURM executor plugin, which runs `scontrol show
    config` at import (for a help text). With the controller down, scontrol retries for its
    MessageTimeout, 10 s by default, so each of the suite's Snakemake calls would wait about
    9 s (`make unit` took 4 min 52 s instead of 2 min 31 s). With the copy, scontrol gives up
    at once. The copy is used only if scontrol, reading it, reports that it cannot contact the
    controller; a controller that answers keeps its own settings.
    """
    import atexit
    import shutil
    import subprocess
    import tempfile

    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    if shutil.which("scontrol") is None or not conf.is_file():
        return None
    folder = tempfile.mkdtemp(prefix=_QUICK_PREFIX)
    atexit.register(shutil.rmtree, folder, True)
    copy = Path(folder) / "slurm.conf"
    copy.write_text(f"{conf.read_text()}\nMessageTimeout=1\n", encoding="utf-8")
    try:
        probe = subprocess.run(
            ["scontrol", "show", "config"],
            env={**os.environ, "SLURM_CONF": str(copy)},
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if probe.returncode != 0 and "Unable to contact slurm controller" in probe.stderr:
        return str(copy)
    return None


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
