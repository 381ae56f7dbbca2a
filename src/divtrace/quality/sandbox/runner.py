"""Running programs in the sandbox: choosing how (:func:`sandbox_mode`), launching the child
program (:data:`CHILD`) and collecting its verdict (see :mod:`divtrace.quality.sandbox`)."""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from divtrace.errors import SandboxError
from divtrace.quality.sandbox.limits import SandboxLimits, rlimits
from divtrace.quality.sandbox.processes import reap, wait_exit
from divtrace.quality.sandbox.results import (
    RunResult,
    launch_error,
    output_tail,
    read_channel,
    run_result,
)
from divtrace.quality.sandbox.uids import fresh_uid

log = logging.getLogger(__name__)

#: The program every sandbox interpreter runs (by path): this package's ``child.py``.
CHILD = Path(__file__).resolve().with_name("child.py")
#: Interpreter options: no user site, no script directory on ``sys.path``, no bytecode writes.
PYTHON_FLAGS = ("-s", "-P", "-B")


@dataclass(frozen=True)
class _Mode:
    """How children run: under a fresh uid or as the current user, with which interpreter, and
    which copy of the child program (one the child's user can read)."""

    dedicated_uid: bool
    python: str
    child: str = str(CHILD)

    @property
    def name(self) -> str:
        return "dedicated-uid" if self.dedicated_uid else "current-user"


_MODE: _Mode | None = None
_MODE_LOCK = threading.Lock()


def environment(workdir: str) -> dict[str, str]:
    """The child's whole environment."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "HOME": workdir,
        "TMPDIR": workdir,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def command(mode: _Mode) -> list[str]:
    """The child's command line: ``python -s -P -B <child.py>``."""
    return [mode.python, *PYTHON_FLAGS, mode.child]


def _others_can_read(path: Path) -> bool:
    """Whether any user may read ``path`` (read permission on it, search on every folder above)."""
    try:
        if not os.stat(path).st_mode & stat.S_IROTH:
            return False
        return all(os.stat(folder).st_mode & stat.S_IXOTH for folder in path.parents)
    except OSError:
        return False


_STAGED: str | None = None
_STAGE_LOCK = threading.Lock()


def _staged_child() -> str:
    """A copy of :data:`CHILD` any user can read (made once per process, removed at exit), for
    an installation in a folder the sandbox uid cannot enter (a private home, say)."""
    global _STAGED
    with _STAGE_LOCK:
        if _STAGED is None or not os.path.isfile(_STAGED):
            folder = tempfile.mkdtemp(prefix="divtrace-child-")
            atexit.register(shutil.rmtree, folder, True)
            os.chmod(folder, 0o755)
            target = os.path.join(folder, CHILD.name)
            shutil.copyfile(CHILD, target)
            os.chmod(target, 0o644)
            _STAGED = target
        return _STAGED


def _child_for(dedicated_uid: bool) -> str:
    if not CHILD.is_file():
        raise SandboxError(f"the sandbox's child program {CHILD} is missing")
    if dedicated_uid and not _others_can_read(CHILD):
        return _staged_child()
    return str(CHILD)


def _run(program: str, limits: SandboxLimits, mode: _Mode) -> RunResult:
    start = time.monotonic()
    marker = secrets.token_hex(16)
    uid = fresh_uid() if mode.dedicated_uid else None
    workdir = tempfile.mkdtemp(prefix="divtrace-sandbox-")
    read_fd = write_fd = -1
    try:
        read_fd, write_fd = os.pipe()
        if uid is not None:
            os.chown(workdir, uid, uid)
        job = {
            "marker": marker,
            "channel": write_fd,
            "program": program,
            "limits": rlimits(limits, mode.dedicated_uid),
            "guard": limits.python_guard,
        }
        ids: dict[str, Any] = {}
        if uid is not None:
            ids = {"user": uid, "group": uid, "extra_groups": []}
        with tempfile.TemporaryFile() as job_file, tempfile.TemporaryFile() as output:
            job_file.write(json.dumps(job).encode("utf-8"))
            job_file.seek(0)
            try:
                proc = subprocess.Popen(
                    command(mode),
                    cwd=workdir,
                    env=environment(workdir),
                    stdin=job_file,
                    stdout=output,
                    stderr=output,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                    **ids,
                )
            except (OSError, subprocess.SubprocessError) as err:
                return launch_error(err)
            finally:
                os.close(write_fd)
                write_fd = -1
            # Wait without reaping: while the child is a zombie its pid (= its session and
            # process-group id) cannot be reused, so the cleanup cannot hit a stranger.
            timed_out = True
            try:
                timed_out = not wait_exit(proc.pid, limits.timeout_s)
            finally:
                reap(mode.python, uid, proc.pid)
                proc.wait()
            elapsed = time.monotonic() - start
            channel = read_channel(read_fd)
            tail = output_tail(output)
    finally:
        for fd in (write_fd, read_fd):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)
    return run_result(
        marker=marker,
        channel=channel,
        returncode=proc.returncode,
        timed_out=timed_out,
        tail=tail,
        timeout_s=limits.timeout_s,
        elapsed_s=elapsed,
    )


def _interpreters() -> list[str]:
    """Interpreters to try under a dedicated uid: ours first, then the same version elsewhere."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [
        sys.executable,
        getattr(sys, "_base_executable", ""),
        os.path.realpath(sys.executable),
        shutil.which(version) or "",
        f"/usr/bin/{version}",
        f"/usr/local/bin/{version}",
    ]
    seen: list[str] = []
    for path in candidates:
        if path and path not in seen and os.path.isfile(path):
            seen.append(path)
    return seen


_PROBE = (
    "import sys\n"
    f"assert sys.version_info[:2] == {tuple(sys.version_info[:2])!r}, sys.version\n"
    "import collections, math, re, heapq, itertools, functools, hashlib, string\n"
)
_PROBE_LIMITS = SandboxLimits(timeout_s=20.0)


def _detect_mode() -> _Mode:
    """A dedicated uid when this process may switch users and some interpreter works under one;
    else the current user. SandboxError when not even the current user can run the probe."""
    if os.geteuid() == 0 and hasattr(os, "setgroups"):
        child = _child_for(dedicated_uid=True)
        for python in _interpreters():
            mode = _Mode(True, python, child)
            result = _run(_PROBE, _PROBE_LIMITS, mode)
            if result.passed:
                log.debug("sandbox: dedicated uid with %s", python)
                return mode
            log.debug("sandbox: %s cannot run under a dedicated uid: %s", python, result.detail)
        log.warning(
            "sandbox: running as root but no interpreter works under a dedicated uid; "
            "candidate code runs as root, contained only by rlimits and the in-process guard"
        )
    mode = _Mode(False, sys.executable, _child_for(dedicated_uid=False))
    result = _run(_PROBE, _PROBE_LIMITS, mode)
    if not result.passed:
        raise SandboxError(
            f"the code sandbox cannot run programs here ({mode.python} {mode.child} as the "
            f"current user): {result.detail}"
        )
    return mode


def _mode() -> _Mode:
    global _MODE
    with _MODE_LOCK:
        if _MODE is None:
            _MODE = _detect_mode()
        return _MODE


def sandbox_mode() -> str:
    """``dedicated-uid`` (children run under a fresh unprivileged uid) or ``current-user``.

    The first call (or the first run) chooses, running a probe program; SandboxError when no way
    works on this machine.
    """
    return _mode().name


def run_program(program: str, limits: SandboxLimits | None = None) -> RunResult:
    """Run one Python program in the sandbox; it passes if it runs to completion."""
    return _run(program, limits or SandboxLimits(), _mode())


def run_programs(
    programs: Sequence[str], limits: SandboxLimits | None = None, workers: int | None = None
) -> list[RunResult]:
    """Run many programs in parallel (``workers`` sandboxes at a time; default: CPU count)."""
    if not programs:
        return []
    mode = _mode()
    chosen = limits or SandboxLimits()
    n = max(1, min(workers or os.cpu_count() or 1, len(programs)))
    if n == 1:
        return [_run(p, chosen, mode) for p in programs]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda p: _run(p, chosen, mode), programs))


__all__ = [
    "CHILD",
    "PYTHON_FLAGS",
    "command",
    "environment",
    "run_program",
    "run_programs",
    "sandbox_mode",
]
