"""Checks of stored results: every Parquet file under a results directory, read in full.

A file is *bad* when it cannot be read with its page checksums verified, when it does not follow
its contract (:data:`divtrace.io.CONTRACTS`: the one its metadata records, else the one of its
place in the DAG, :func:`divtrace.io.place_of`), or when its rows do not belong to its place (a
shard of ``base/gsm8k/cot-on`` with rows of another model). Each bad file comes with the Snakemake
command that makes it again and the files downstream of it, which that command reruns too
(``--forcerun`` reruns a job and, their input being newer, every job after it).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from divtrace import io
from divtrace.errors import DivtraceError
from divtrace.names import (
    DIVERSITY_FILE,
    FIGURE_FILE,
    QUALITY_FILE,
    SHARD_FILE,
    TABLE_FILE,
)


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str
    downstream: tuple[str, ...]


def result_files(results: str | Path) -> list[Path]:
    """The Parquet files under ``results``, sorted; hidden ones (an atomic write's temporary
    files) left out."""
    root = Path(results)
    return sorted(
        p
        for p in root.rglob("*.parquet")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def downstream(results: str | Path, path: Path) -> tuple[str, ...]:
    """The files made from ``path`` (as globs where they are many)."""
    place = io.place_of(path)
    r = str(results)
    tables = TABLE_FILE.format(results=r, name="*", ext="*")
    figures = FIGURE_FILE.format(results=r, name="*", ext="*")
    if place is None:
        return (figures,) if "/tables/" in path.as_posix() else ()
    contract, at = place
    run = {"results": r, "model": at.get("model", "*"), "task": at.get("task", "*")}
    run["cot"] = at.get("cot", "*")
    if contract == "prompts":
        run = {"results": r, "model": "*", "task": at["task"], "cot": "*"}
        first = [SHARD_FILE.format(**run, shard="*"), QUALITY_FILE.format(**run)]
    elif contract == "generations":
        first = [QUALITY_FILE.format(**run)]
    else:
        first = []
    if contract in ("prompts", "generations", "quality"):
        first.append(DIVERSITY_FILE.format(**run))
    return (*first, tables, figures)


def check_file(path: Path) -> str | None:
    """Why ``path`` is bad, or None when it reads in full and follows its contract and place."""
    try:
        frame = io.read_table(path)
        meta = io.read_metadata(path)
        place = io.place_of(path)
        recorded = meta.get("contract")
        by_place = place[0] if place is not None else None
        if recorded is not None and recorded not in io.CONTRACTS:
            return f"its metadata names an unknown contract {recorded!r}"
        if recorded is not None and by_place is not None and recorded != by_place:
            return f"a {recorded} file where a {by_place} file belongs"
        contract = recorded or by_place
        if contract is not None:
            io.conform(frame, contract)
        if place is not None:
            io.check_place(frame, path, place[1])
    except DivtraceError as err:
        return str(err).removeprefix(f"{path}: ").split("; regenerate it with")[0]
    return None


def verify(results: str | Path) -> tuple[list[Path], list[Problem]]:
    """Every result file under ``results`` and the bad ones among them."""
    files = result_files(results)
    problems = []
    for path in files:
        reason = check_file(path)
        if reason is not None:
            problems.append(Problem(path, reason, downstream(results, path)))
    return files, problems


def regenerate_command(paths: Sequence[Path], configfiles: Sequence[str] = ()) -> str:
    """The Snakemake command that makes ``paths`` again (and everything downstream of them)."""
    config = ["--configfile", *configfiles] if configfiles else []
    targets = [io.workflow_path(p) for p in paths]
    return shlex.join(["snakemake", "--cores", "all", *config, "--forcerun", *targets])
