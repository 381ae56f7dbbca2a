"""The program a sandbox child interpreter runs: it runs one candidate program and reports.

The host (:mod:`divtrace.quality.sandbox.runner`) starts it by path, ``python -s -P -B
child.py``, in the sandbox's working directory, under the sandbox's uid and minimal environment.
It reads one JSON job from stdin:

``marker``
    the run's random marker, which prefixes the verdict;
``channel``
    the file descriptor of the result pipe (only the host reads it);
``program``
    the candidate program's source;
``limits``
    ``[name, soft, hard]`` resource limits to set (``RLIMIT_*`` names of :mod:`resource`), each
    clamped to the hard limit already in force;
``guard``
    whether to install the in-process guard (:func:`_guard`).

It points stdin at ``/dev/null``, sets the limits, installs the guard, runs the program as module
``__candidate__`` and then writes one line, ``<marker> OK`` or ``<marker> ERR <exception>``, to
the channel and leaves with ``os._exit``. Anything else (an early exit, a signal, no line) is a
failure to the host.

This file is self-contained: standard library only, no ``divtrace`` import. The interpreter that
runs it may be another Python installation than divtrace's, and with ``-P`` not even this file's
folder is on its ``sys.path``. It imports little (``typing`` and ``collections.abc`` only for the
type checker) so that the candidate starts in an interpreter close to a bare one.
"""

from __future__ import annotations

import json
import os
import sys
import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn


def _guard(root: str) -> None:
    """Refuse process creation, signals, id and session changes and writes outside ``root``."""
    import _io
    import builtins
    import io
    import posix
    import subprocess

    realpath, join, isabs, fsdecode, fspath = (
        os.path.realpath,
        os.path.join,
        os.path.isabs,
        os.fsdecode,
        os.fspath,
    )
    readlink = os.readlink
    sep = os.sep

    def deny(what: str) -> NoReturn:
        raise PermissionError("sandbox: " + what + " is not allowed")

    def inside(path: Any, dir_fd: int | None = None) -> bool:
        if isinstance(path, int):
            return True
        p = fsdecode(fspath(path))
        if dir_fd is not None and not isabs(p):
            p = join(readlink(f"/proc/self/fd/{dir_fd}"), p)
        p = realpath(p)
        return p == root or p.startswith(root + sep) or p == os.devnull

    def check(path: Any, dir_fd: int | None = None) -> None:
        if not inside(path, dir_fd):
            deny(f"changing files outside the working directory ({path!r})")

    def blocked(what: str) -> Callable[..., NoReturn]:
        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            deny(what)

        return refuse

    def one_path(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(path: Any, *args: Any, **kwargs: Any) -> Any:
            check(path, kwargs.get("dir_fd"))
            return fn(path, *args, **kwargs)

        return wrapper

    def two_paths(fn: Callable[..., Any], check_src: bool = True) -> Callable[..., Any]:
        def wrapper(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            if check_src:
                check(src, kwargs.get("src_dir_fd"))
            check(dst, kwargs.get("dst_dir_fd", kwargs.get("dir_fd")))
            return fn(src, dst, *args, **kwargs)

        return wrapper

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def guarded_os_open(fn: Callable[..., int]) -> Callable[..., int]:
        def wrapper(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if flags & write_flags:
                check(path, kwargs.get("dir_fd"))
            return fn(path, flags, *args, **kwargs)

        return wrapper

    def writes(mode: object) -> bool:
        return isinstance(mode, str) and any(c in mode for c in "wax+")

    real_open = builtins.open

    def guarded_open(file: Any, mode: Any = "r", *args: Any, **kwargs: Any) -> Any:
        if writes(mode):
            check(file)
        return real_open(file, mode, *args, **kwargs)

    class GuardedFileIO(_io.FileIO):
        def __init__(self, file: Any, mode: Any = "r", *args: Any, **kwargs: Any) -> None:
            if writes(mode):
                check(file)
            super().__init__(file, mode, *args, **kwargs)

    processes = "starting or signalling processes"
    forbidden = {
        "fork": processes,
        "forkpty": processes,
        "system": processes,
        "popen": processes,
        "posix_spawn": processes,
        "posix_spawnp": processes,
        "kill": processes,
        "killpg": processes,
        "setsid": "changing the session",
        "setpgid": "changing the session",
        "setpgrp": "changing the session",
        "chroot": "chroot",
        "fchmod": "changing permissions",
        "fchown": "changing owners",
    }
    for name in (
        *("execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe"),
        *("spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe"),
    ):
        forbidden[name] = processes
    for name in (
        *("setuid", "setgid", "seteuid", "setegid", "setreuid", "setregid"),
        *("setresuid", "setresgid", "setgroups", "initgroups"),
    ):
        forbidden[name] = "changing user or group ids"
    single = (
        *("mkdir", "rmdir", "remove", "unlink", "mkfifo", "mknod", "chmod", "lchmod"),
        *("chown", "lchown", "utime", "truncate", "chflags", "lchflags", "setxattr"),
        "removexattr",
    )
    modules: tuple[Any, ...] = (os, posix)
    for module in modules:
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
    io.FileIO = _io.FileIO = GuardedFileIO  # type: ignore[misc]

    class NoPopen:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            deny(processes)

    subprocess.Popen = NoPopen  # type: ignore[misc, assignment]
    try:
        import _posixsubprocess

        _posixsubprocess.fork_exec = blocked(processes)
    except ImportError:
        pass
    for name in ("ctypes", "_ctypes", "resource", "psutil"):
        sys.modules[name] = None  # type: ignore[assignment]  # makes the import fail


def _describe(exc: BaseException, program: str) -> str:
    """``Type: message (line N: source)``, the line being the last candidate frame's."""
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
            text += f" (line {where}: {lines[where - 1].strip()[:200]})"
        return text
    except BaseException:
        return "an exception that cannot be described"


def _main() -> NoReturn:
    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    marker: str = job["marker"]
    program: str = job["program"]
    channel: int = job["channel"]
    write, exit_, getpid = os.write, os._exit, os.getpid
    me = getpid()

    def report(text: str) -> None:
        if getpid() != me:  # a forked copy never speaks for the run
            exit_(1)
        line = marker + " " + " ".join(text.split())[:1000] + "\n"
        try:  # noqa: SIM105 (the child imports no more than it needs: no contextlib)
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


if __name__ == "__main__":
    _main()
