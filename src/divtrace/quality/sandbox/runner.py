"""Running programs in the sandbox: choosing how (:func:`sandbox_mode`), launching the child
program (:data:`CHILD`) and collecting its verdict (see :mod:`divtrace.quality.sandbox`)."""

from __future__ import annotations

import atexit
import builtins
import contextlib
import json
import logging
import os
import re
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from divtrace.errors import SandboxError
from divtrace.quality.sandbox import child as protocol
from divtrace.quality.sandbox.limits import SandboxLimits, rlimits
from divtrace.quality.sandbox.processes import reap, wait_exit
from divtrace.quality.sandbox.results import (
    KIND_TIMEOUT,
    RunResult,
    ended,
    launch_error,
    read_channel,
    run_result,
)
from divtrace.quality.sandbox.uids import fresh_uid, kill_uid

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
    #: Whether children get their own network and mount namespaces (root only).
    isolate: bool = False

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


@dataclass
class _Child:
    """One started sandbox process: its Popen, its uid (None: the current user) and folder."""

    proc: subprocess.Popen[bytes]
    uid: int | None
    workdir: str


#: Sandbox processes running now, by pid: their uid and working directory (for
#: :func:`kill_active`).
_ACTIVE: dict[int, tuple[int | None, str]] = {}
#: Reentrant: :func:`kill_active` runs in a signal handler, maybe in a thread holding it.
_ACTIVE_LOCK = threading.RLock()
#: Prefix of every sandbox working directory: ``divtrace-sandbox-<owner pid>-<uid or 0>-``.
PREFIX = "divtrace-sandbox-"
_STALE = re.compile(re.escape(PREFIX) + r"(\d+)-(\d+)-")


#: Sandbox folders this process has now (for :func:`kill_active`).
_FOLDERS: set[str] = set()


def _workdir(uid: int | None) -> str:
    folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{uid or 0}-")
    with _ACTIVE_LOCK:
        _FOLDERS.add(folder)
    if uid is not None:
        os.chown(folder, uid, uid)
    return folder


def _drop(folder: str) -> None:
    """Remove a sandbox folder (once its processes are gone)."""
    shutil.rmtree(folder, ignore_errors=True)
    with _ACTIVE_LOCK:
        _FOLDERS.discard(folder)


def _start(
    mode: _Mode,
    job: dict[str, Any],
    uid: int | None,
    workdir: str,
    output: IO[bytes],
    fds: tuple[int, ...],
) -> _Child:
    """Start the child program with ``job`` (its role's fields) in ``workdir``."""
    whole = {**job, "uid": uid, "parent": os.getpid()}
    disk = whole.pop("disk_bytes", None)
    whole["isolate"] = disk if mode.isolate else None
    with tempfile.TemporaryFile() as job_file:
        job_file.write(json.dumps(whole).encode("utf-8"))
        job_file.seek(0)
        # Not under the lock: a signal handler (kill_active) may run in this very thread.
        proc = subprocess.Popen(
            command(mode),
            cwd=workdir,
            env=environment(workdir),
            stdin=job_file,
            stdout=output,
            stderr=output,
            pass_fds=fds,
            start_new_session=True,
        )
        with _ACTIVE_LOCK:
            _ACTIVE[proc.pid] = (uid, workdir)
    return _Child(proc, uid, workdir)


def _finish(mode: _Mode, started: Sequence[_Child]) -> None:
    """Kill whatever the children left, reap them, forget them."""
    for one in started:
        try:
            reap(mode.python, one.uid, one.proc.pid)
        finally:
            one.proc.wait()
            with _ACTIVE_LOCK:
                _ACTIVE.pop(one.proc.pid, None)


def _tree_bytes(folder: str, cap: int) -> int:
    """Bytes used under ``folder`` (blocks, not apparent sizes); more than ``cap`` once past it
    (or past 10,000 entries)."""
    total, entries, stack = 0, 0, [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as listing:
                for entry in listing:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    if total > cap or entries > 10_000:
                        return cap + 1
        except OSError:
            continue
    return total


def _wait(pid: int, limits: SandboxLimits, watch: str | None) -> tuple[bool, bool]:
    """``(timed_out, disk_exceeded)`` once ``pid`` exits, the timeout passes or (``watch``: a
    folder the host must watch) that folder grows past ``limits.disk_bytes``."""
    if watch is None:
        return not wait_exit(pid, limits.timeout_s), False
    deadline = time.monotonic() + limits.timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return True, False
        done = wait_exit(pid, min(0.05, left))
        if _tree_bytes(watch, limits.disk_bytes) > limits.disk_bytes:
            return False, True
        if done:
            return False, False


def _base_job(limits: SandboxLimits, mode: _Mode) -> dict[str, Any]:
    return {
        "limits": rlimits(limits, mode.dedicated_uid),
        "guard": limits.python_guard,
        "disk_bytes": limits.disk_bytes,
    }


def _run(program: str, limits: SandboxLimits, mode: _Mode) -> RunResult:
    """Role ``program``: one process runs ``program``; it passes when it runs to completion."""
    start = time.monotonic()
    marker = secrets.token_hex(16)
    uid = fresh_uid() if mode.dedicated_uid else None
    workdir = _workdir(uid)
    read_fd, write_fd = os.pipe()
    started: list[_Child] = []
    try:
        job = {**_base_job(limits, mode), "role": "program", "program": program}
        job.update(marker=marker, channel=write_fd)
        with tempfile.TemporaryFile() as output:
            try:
                started.append(_start(mode, job, uid, workdir, output, (write_fd,)))
            except (OSError, subprocess.SubprocessError) as err:
                return launch_error(err)
            finally:
                os.close(write_fd)
            # Wait without reaping: while the child is a zombie its pid (= its session and
            # process-group id) cannot be reused, so the cleanup cannot hit a stranger.
            timed_out, disk = True, False
            try:
                timed_out, disk = _wait(
                    started[0].proc.pid, limits, None if mode.isolate else workdir
                )
            finally:
                _finish(mode, started)
            elapsed = time.monotonic() - start
            channel = read_channel(read_fd)
    finally:
        os.close(read_fd)
        _drop(workdir)
    return run_result(
        marker=marker,
        channel=channel,
        returncode=started[0].proc.returncode,
        timed_out=timed_out,
        timeout_s=limits.timeout_s,
        elapsed_s=elapsed,
        disk_exceeded=disk,
    )


def _sealed(fd: int, timeout_s: float) -> None:
    """Wait until the harness writes on ``fd`` (it is no longer dumpable) or closes it (it
    ended: the run fails without a verdict); OSError when neither happens in time."""
    if not select.select([fd], [], [], timeout_s)[0]:
        raise OSError("the harness did not start in time")
    os.read(fd, 1)


def _run_tests(
    candidate: str, tests: str, proxies: Sequence[str], limits: SandboxLimits, mode: _Mode
) -> RunResult:
    """Two processes: the candidate serves calls, the harness runs the trusted ``tests`` with
    the names ``proxies`` bound to proxies of the candidate's functions; the verdict is the
    harness's."""
    start = time.monotonic()
    marker = secrets.token_hex(16)
    c_uid = fresh_uid() if mode.dedicated_uid else None
    h_uid = fresh_uid() if mode.dedicated_uid else None
    folders: list[str] = []
    fds: list[int] = []
    started: list[_Child] = []
    try:
        folders += [_workdir(c_uid), _workdir(h_uid)]
        to_candidate = os.pipe()
        fds += to_candidate
        to_harness = os.pipe()
        fds += to_harness
        channel_fds = os.pipe()
        fds += channel_fds
        base = _base_job(limits, mode)
        # Without a uid of its own, the candidate could reach the harness through /proc while
        # the harness is still dumpable (before its first lines run): the candidate starts once
        # the harness says it is sealed.
        sealed = None if mode.dedicated_uid else os.pipe()
        if sealed is not None:
            fds += sealed
        with tempfile.TemporaryFile() as output:
            try:
                harness = {**base, "role": "harness", "program": tests, "proxies": list(proxies)}
                harness.update(
                    calls_in=to_harness[0],
                    calls_out=to_candidate[1],
                    marker=marker,
                    channel=channel_fds[1],
                    sealed=sealed[1] if sealed is not None else None,
                )
                mine: tuple[int, ...] = (to_harness[0], to_candidate[1], channel_fds[1])
                if sealed is not None:
                    mine += (sealed[1],)
                started.append(_start(mode, harness, h_uid, folders[1], output, mine))
                if sealed is not None:
                    os.close(sealed[1])
                    fds.remove(sealed[1])
                    _sealed(sealed[0], limits.timeout_s)
                serve = {**base, "role": "candidate", "program": candidate}
                serve.update(calls_in=to_candidate[0], calls_out=to_harness[1])
                theirs = (to_candidate[0], to_harness[1])
                started.append(_start(mode, serve, c_uid, folders[0], output, theirs))
            except (OSError, subprocess.SubprocessError) as err:
                _finish(mode, started)
                return launch_error(err)
            finally:
                for fd in (*to_candidate, *to_harness, channel_fds[1]):
                    os.close(fd)
                    fds.remove(fd)
            harness_proc, candidate_proc = started[0].proc, started[1].proc
            timed_out, disk = True, False
            try:
                timed_out, disk = _wait(
                    harness_proc.pid, limits, None if mode.isolate else folders[0]
                )
            finally:
                _finish(mode, started)
            elapsed = time.monotonic() - start
            channel = read_channel(channel_fds[0])
    finally:
        for fd in fds:
            os.close(fd)
        for folder in folders:
            _drop(folder)
    return run_result(
        marker=marker,
        channel=channel,
        returncode=harness_proc.returncode,
        timed_out=timed_out,
        timeout_s=limits.timeout_s,
        elapsed_s=elapsed,
        disk_exceeded=disk,
        candidate_returncode=candidate_proc.returncode,
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


def _undumpable() -> None:
    """Make this process non-dumpable: a candidate running as the same user then cannot read
    its memory or open its descriptors (the verdict pipe) through /proc."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    except (OSError, AttributeError) as err:
        log.warning("sandbox: cannot make this process non-dumpable: %s", err)


def _detect_mode() -> _Mode:
    """A dedicated uid when this process may switch users and some interpreter works under one;
    else the current user. SandboxError when not even the current user can run the probe."""
    if os.geteuid() == 0 and hasattr(os, "setgroups"):
        child = _child_for(dedicated_uid=True)
        for python in _interpreters():
            for isolate in (True, False):
                mode = _Mode(True, python, child, isolate)
                result = _run(_PROBE, _PROBE_LIMITS, mode)
                if result.passed:
                    log.debug("sandbox: dedicated uid with %s (namespaces: %s)", python, isolate)
                    if not isolate:
                        log.warning(
                            "sandbox: no network or mount namespace here; networking is "
                            "refused by the in-process guard only"
                        )
                    return mode
                log.debug("sandbox: %s under a dedicated uid: %s", python, result.detail)
        log.warning(
            "sandbox: running as root but no interpreter works under a dedicated uid; "
            "candidate code runs as root, contained only by rlimits and the in-process guard"
        )
    mode = _Mode(False, sys.executable, _child_for(dedicated_uid=False))
    if os.geteuid() != 0:
        _undumpable()
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
            sweep_stale(python=_MODE.python)
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


T = TypeVar("T")
R = TypeVar("R")


def _parallel(fn: Callable[[T], R], items: Sequence[T], workers: int | None) -> list[R]:
    n = max(1, min(workers or os.cpu_count() or 1, len(items)))
    if n == 1:
        return [fn(item) for item in items]
    # Pool threads outlive every run they start (the pool is shut down after the last one):
    # the children's parent-death signal fires when the thread that started them ends.
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="sandbox") as pool:
        return list(pool.map(fn, items))


def run_programs(
    programs: Sequence[str], limits: SandboxLimits | None = None, workers: int | None = None
) -> list[RunResult]:
    """Run many programs in parallel (``workers`` sandboxes at a time; default: CPU count)."""
    if not programs:
        return []
    mode = _mode()
    chosen = limits or SandboxLimits()
    return _parallel(lambda p: _run(p, chosen, mode), programs, workers)


@dataclass(frozen=True)
class TestRun:
    """One candidate program and the trusted tests that judge it.

    ``candidate``: the candidate's program (run in its own process, under its own uid);
    ``tests``: trusted test code (run in the harness process), in which the global names
    ``proxies`` are bound, before it runs, to proxies of the candidate's functions of those names.
    """

    candidate: str
    tests: str
    proxies: tuple[str, ...] = field(default_factory=tuple)


def run_tests(
    runs: Sequence[TestRun], limits: SandboxLimits | None = None, workers: int | None = None
) -> list[RunResult]:
    """Judge each candidate by its trusted tests, in parallel: the tests run in a harness
    process and call the candidate's functions through proxies that pass plain data only, so
    the verdict (the harness's) cannot be forged by the candidate."""
    if not runs:
        return []
    mode = _mode()
    chosen = limits or SandboxLimits()
    return _parallel(
        lambda r: _run_tests(r.candidate, r.tests, r.proxies, chosen, mode), runs, workers
    )


@dataclass(frozen=True)
class CallOutcome:
    """What one call of a candidate function came to.

    ``value``: the plain-data return value (None unless ``ok``); ``raised``: the type name of
    the exception it raised (a builtin's, else ``a candidate-defined exception``); ``fault``: a
    failure kind when the call has no outcome of its own (the program did not load, the value
    was not plain data, the candidate ended, the time ran out); ``mutated``: the arguments (by
    position) the call changed, as they were after it.
    """

    value: Any = None
    raised: str | None = None
    fault: str | None = None
    mutated: dict[int, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.raised is None and self.fault is None


def _receive(fd: int, deadline: float) -> Any:
    """The next message on ``fd`` by ``deadline``: None at end of file; TimeoutError."""

    def exactly(n: int) -> bytes | None:
        chunks: list[bytes] = []
        while n > 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    head = exactly(8)
    if head is None:
        return None
    size = int.from_bytes(head, "big")
    if size > protocol.MAX_MESSAGE:
        raise protocol.NotPlain("message too large")
    data = exactly(size)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        raise protocol.NotPlain("not JSON") from None


def _outcome(reply: Any) -> CallOutcome:
    if type(reply) is not dict:
        return CallOutcome(fault=protocol.KIND_PROTOCOL)
    if "raise" in reply:
        name = str(reply["raise"])
        kind = getattr(builtins, name, None)
        known = isinstance(kind, type) and issubclass(kind, BaseException)
        return CallOutcome(raised=name if known else "a candidate-defined exception")
    if "fault" in reply:
        kind = reply["fault"]
        return CallOutcome(fault=kind if kind in protocol._FAULTS else protocol.KIND_PROTOCOL)
    try:
        mutated = {int(k): protocol.decode(v) for k, v in (reply.get("mutated") or {}).items()}
        return CallOutcome(value=protocol.decode(reply.get("value")), mutated=mutated)
    except (protocol.NotPlain, ValueError, TypeError, AttributeError):
        return CallOutcome(fault=protocol.KIND_NOT_PLAIN)


def _calls(
    program: str,
    entry_point: str,
    calls: Sequence[Sequence[Any]],
    limits: SandboxLimits,
    mode: _Mode,
) -> list[CallOutcome]:
    encoded = [[protocol.encode(a) for a in args] for args in calls]  # NotPlain: the caller's
    uid = fresh_uid() if mode.dedicated_uid else None
    workdir = _workdir(uid)
    deadline = time.monotonic() + limits.timeout_s
    outcomes: list[CallOutcome] = []
    to_candidate, to_host = os.pipe(), os.pipe()
    fds = [*to_candidate, *to_host]
    started: list[_Child] = []
    try:
        job = {**_base_job(limits, mode), "role": "candidate", "program": program}
        job.update(calls_in=to_candidate[0], calls_out=to_host[1])
        with tempfile.TemporaryFile() as output:
            try:
                started.append(
                    _start(mode, job, uid, workdir, output, (to_candidate[0], to_host[1]))
                )
            except (OSError, subprocess.SubprocessError) as err:
                raise SandboxError(f"the sandbox cannot start a candidate: {err}") from err
            finally:
                for fd in (to_candidate[0], to_host[1]):
                    os.close(fd)
                    fds.remove(fd)
            fault: str | None = None
            try:
                hello = _receive(to_host[0], deadline)
                if type(hello) is not dict or hello.get("ready") is not True:
                    load = str(hello.get("load", "")) if type(hello) is dict else ""
                    kind = load.partition("|")[0]
                    fault = (
                        kind
                        if kind in (protocol.KIND_SYNTAX, protocol.KIND_MEMORY, protocol.KIND_DISK)
                        else protocol.KIND_EXCEPTION
                    )
                    if hello is None:
                        fault = protocol.KIND_CANDIDATE_GONE
                for args in encoded:
                    if fault is not None:
                        break
                    protocol.send(
                        to_candidate[1], {"call": entry_point, "args": args, "kwargs": {}}
                    )
                    reply = _receive(to_host[0], deadline)
                    if reply is None:
                        fault = protocol.KIND_CANDIDATE_GONE
                        break
                    outcomes.append(_outcome(reply))
            except TimeoutError:
                fault = KIND_TIMEOUT
            except (protocol.NotPlain, OSError):
                fault = protocol.KIND_PROTOCOL
            finally:
                _finish(mode, started)
            if fault == protocol.KIND_CANDIDATE_GONE:
                fault = ended(started[0].proc.returncode, 0.0, "the candidate").kind
    finally:
        for fd in fds:
            os.close(fd)
        _drop(workdir)
    while len(outcomes) < len(calls):
        outcomes.append(CallOutcome(fault=fault or protocol.KIND_PROTOCOL))
    return outcomes


def run_calls(
    program: str,
    entry_point: str,
    calls: Sequence[Sequence[Any]],
    limits: SandboxLimits | None = None,
) -> list[CallOutcome]:
    """Call the function ``entry_point`` of the candidate ``program`` (run in the sandbox) with
    each tuple of positional arguments of ``calls`` (plain data), in order, in one process:
    one :class:`CallOutcome` per call. ``limits.timeout_s`` bounds the whole run; calls left when
    it ends (or when the candidate dies) get that fault. The host only decodes plain data."""
    if not calls:
        return []
    return _calls(program, entry_point, calls, limits or SandboxLimits(), _mode())


def kill_active() -> None:
    """Kill every sandbox process this process has running and remove their folders (for a
    signal handler: the run is being stopped)."""
    with _ACTIVE_LOCK:
        active, folders = dict(_ACTIVE), set(_FOLDERS)
    # A child started but not yet registered dies with this process (its parent-death signal).
    for pid, (uid, _folder) in active.items():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        if uid is not None and _MODE is not None:
            kill_uid(_MODE.python, uid)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def cleanup_on_signals() -> Iterator[None]:
    """While inside, SIGTERM, SIGINT and SIGHUP first kill this process's sandboxes and remove
    their folders, then take their usual course (only in the main thread; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(number: int, frame: Any) -> None:
        kill_active()
        signal.signal(number, previous.get(number) or signal.SIG_DFL)
        os.kill(os.getpid(), number)

    for number in (int(signal.SIGTERM), int(signal.SIGINT), int(signal.SIGHUP)):
        if signal.getsignal(number) == signal.SIG_IGN:  # ignored (nohup): stays ignored
            continue
        previous[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(folder: str | None = None, python: str | None = None) -> list[str]:
    """Remove the sandbox folders (in ``folder``, default the temp folder) of runs whose owner
    process is gone (a killed ``divtrace score``), killing what still runs under their uid
    first (with ``python``, an interpreter the uid can run; default: the sandbox's); the
    folders removed. Runs once per process, before its first sandbox."""
    base = folder or tempfile.gettempdir()
    removed: list[str] = []
    try:
        names = os.listdir(base)
    except OSError:
        return removed
    for name in names:
        match = _STALE.match(name)
        if match is None:
            continue
        owner, uid = int(match.group(1)), int(match.group(2))
        if owner == os.getpid() or _alive(owner):
            continue
        if uid and os.geteuid() == 0:
            kill_uid(python or (_MODE.python if _MODE else sys.executable), uid)
        path = os.path.join(base, name)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


__all__ = [
    "CHILD",
    "PREFIX",
    "PYTHON_FLAGS",
    "CallOutcome",
    "TestRun",
    "cleanup_on_signals",
    "command",
    "environment",
    "kill_active",
    "run_calls",
    "run_program",
    "run_programs",
    "run_tests",
    "sandbox_mode",
    "sweep_stale",
]
