"""The program every sandbox interpreter runs: one candidate, one trusted harness, or one program.

The host (:mod:`divtrace.quality.sandbox.runner`) starts it by path, ``python -s -P -B
child.py``, in the sandbox's working directory with the sandbox's minimal environment. It reads
one JSON job from stdin:

``role``
    ``program`` (run a program to completion and report), ``candidate`` (define a candidate
    program and serve calls to its functions) or ``harness`` (run trusted test code whose calls
    to the candidate's functions go, as plain data, to a candidate process);
``program``
    the source to run (the candidate's for ``program`` and ``candidate``; the trusted tests'
    for ``harness``);
``marker``, ``channel``
    the run's random marker, which prefixes the verdict, and the result pipe's descriptor (only
    the host reads it; ``program`` and ``harness``);
``calls_in``, ``calls_out``
    the descriptors of the call pipes (``candidate``: requests in, replies out; ``harness``:
    requests out, replies in);
``proxies``
    names the harness binds to proxies of the candidate's functions before its program runs
    (which may also call ``__candidate__(name)`` for the proxy of ``name``);
``limits``
    ``[name, soft, hard]`` resource limits to set (``RLIMIT_*`` names of :mod:`resource`), each
    clamped to the hard limit already in force;
``guard``
    whether to install the in-process guard (:func:`_guard`);
``uid``
    the unprivileged uid (also gid) to become, or null to stay who it is;
``isolate``
    null, or the byte size of a tmpfs to mount on the working directory: then (as root, before
    becoming ``uid``) the process enters a new network namespace (no interface is up, not even
    loopback) and a private mount namespace, where the working directory is that tmpfs;
``sealed``
    (``harness``, optional) a descriptor to write one byte to, and close, once the process is no
    longer dumpable (the host starts the candidate after it);
``parent``
    the host's pid: the process asks the kernel to SIGKILL it when its parent dies
    (``PR_SET_PDEATHSIG``, set after the uid change, which would clear it) and leaves at once if
    the parent is already gone.

Verdicts (``program``, ``harness``) are one line on the channel, ``<marker> OK`` or ``<marker>
ERR <kind>|<message>``, after which the process leaves with ``os._exit``; anything else (an early
exit, a signal, no line) is a failure to the host. The kinds are the ``KIND_*`` constants; the
message is made from trusted text only (exception type names of builtins, line numbers, lines of
the trusted tests), never from what the candidate printed or the text of its exceptions.

Calls between harness and candidate are length-prefixed JSON messages (:func:`send`,
:func:`receive`) whose values are tagged plain data (:func:`encode`, :func:`decode`): ``None``,
``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, and ``list``, ``tuple``,
``dict``, ``set``, ``frozenset`` of them, of the exact types (no subclass), within size and depth
bounds. The decoder builds fresh builtin values only, so what the harness compares is never an
object of the candidate's making.

This file is self-contained: standard library only, no ``divtrace`` import. The interpreter that
runs it may be another Python installation than divtrace's, and with ``-P`` not even this file's
folder is on its ``sys.path``. It imports little at module level so that the candidate starts in
an interpreter close to a bare one; the host imports it too, for the codec.
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

KIND_WRONG = "wrong answer"
KIND_EXCEPTION = "exception"
KIND_SYNTAX = "syntax error"
KIND_NOT_PLAIN = "not plain data"
KIND_EXITED = "exited"
KIND_CANDIDATE_GONE = "candidate ended"
KIND_MEMORY = "memory"
KIND_DISK = "disk limit"
KIND_PROTOCOL = "protocol"

#: Bounds of one message between harness and candidate, and of the values in it.
MAX_MESSAGE = 16 * 2**20
MAX_DEPTH = 64
MAX_NODES = 1_000_000

_ENOSPC, _EFBIG, _EDQUOT = 28, 27, 122


class NotPlain(Exception):
    """A value that is not plain data (or is out of bounds)."""


class Fault(BaseException):
    """The candidate broke the protocol: the run fails with ``kind``. No ``except Exception``
    in the tests can swallow it, and the first one raised is also kept (:data:`FAULTS`), so
    that a bare ``except:`` cannot either."""

    def __init__(self, kind: str, message: str = "") -> None:
        super().__init__(kind, message)
        self.kind, self.message = kind, message
        if not FAULTS:
            FAULTS.append(self)


#: The first :class:`Fault` raised in this process (the harness fails on it, caught or not).
FAULTS: list[Fault] = []


# --- plain data -----------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """``value`` as tagged JSON-ready data; NotPlain when it is not plain data (exact types).

    ``collections``' ``Counter``, ``OrderedDict`` and ``defaultdict`` go as dicts (the harness
    gets a plain dict: what the candidate's process encodes is up to it, what the harness
    decodes is builtin data only)."""
    count = [0]
    found = sys.modules.get("collections")
    mappings: tuple[Any, ...] = ()
    if found is not None:
        mappings = tuple(getattr(found, n, dict) for n in ("Counter", "OrderedDict", "defaultdict"))

    def enc(x: Any, depth: int) -> Any:
        count[0] += 1
        if depth > MAX_DEPTH or count[0] > MAX_NODES:
            raise NotPlain("too deep or too large")
        t = type(x)
        if x is None or t is bool or t is str:
            return x
        if t is int:
            return x if -(2**53) < x < 2**53 else ["I", str(x)]
        if t is float:
            return ["R", repr(x)]
        if t is complex:
            return ["C", repr(x.real), repr(x.imag)]
        if t is bytes:
            return ["B", x.hex()]
        if t is list or t is tuple or t is set or t is frozenset:
            tag = "L" if t is list else "T" if t is tuple else "S" if t is set else "F"
            return [tag, *(enc(item, depth + 1) for item in x)]
        if t is dict or t in mappings:
            out: list[Any] = ["D"]
            for k, v in x.items():
                out.append(enc(k, depth + 1))
                out.append(enc(v, depth + 1))
            return out
        raise NotPlain(t.__name__)

    return enc(value, 0)


def decode(data: Any) -> Any:
    """The value :func:`encode` made ``data`` from; NotPlain for anything else. Builds builtin
    values only."""
    count = [0]

    def number(text: Any, kind: type) -> Any:
        if type(text) is not str or len(text) > 5000:
            raise NotPlain("bad number")
        try:
            return kind(text)
        except ValueError:
            raise NotPlain("bad number") from None

    def dec(x: Any, depth: int) -> Any:
        count[0] += 1
        if depth > MAX_DEPTH or count[0] > MAX_NODES:
            raise NotPlain("too deep or too large")
        t = type(x)
        if x is None or t is bool or t is str:
            return x
        if t is int:
            return x
        if t is not list or not x or type(x[0]) is not str:
            raise NotPlain("bad encoding")
        tag, rest = x[0], x[1:]
        try:
            if tag == "I" and len(rest) == 1:
                return number(rest[0], int)
            if tag == "R" and len(rest) == 1:
                return number(rest[0], float)
            if tag == "C" and len(rest) == 2:
                return complex(number(rest[0], float), number(rest[1], float))
            if tag == "B" and len(rest) == 1 and type(rest[0]) is str:
                return bytes.fromhex(rest[0])
            items = [dec(item, depth + 1) for item in rest]
            if tag == "L":
                return items
            if tag == "T":
                return tuple(items)
            if tag == "S":
                return set(items)
            if tag == "F":
                return frozenset(items)
            if tag == "D" and len(items) % 2 == 0:
                return dict(zip(items[::2], items[1::2], strict=True))
        except (TypeError, ValueError):  # unhashable keys, bad hex
            raise NotPlain("bad encoding") from None
        raise NotPlain("bad encoding")

    return dec(data, 0)


def send(fd: int, message: Any) -> None:
    """Write one message (8-byte length, then JSON) to ``fd``."""
    data = json.dumps(message, separators=(",", ":")).encode("utf-8", "surrogatepass")
    view = memoryview(len(data).to_bytes(8, "big") + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, n: int) -> bytes | None:
    chunks: list[bytes] = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def receive(fd: int) -> Any:
    """The next message on ``fd``; None at end of file; NotPlain when it is not one."""
    head = _read_exactly(fd, 8)
    if head is None:
        return None
    size = int.from_bytes(head, "big")
    if size > MAX_MESSAGE:
        raise NotPlain("message too large")
    data = _read_exactly(fd, size)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        raise NotPlain("not JSON") from None


# --- the process ----------------------------------------------------------------------------


def _isolate(job: dict[str, Any]) -> None:
    """Namespaces and tmpfs (as root), then the uid change, then the parent-death signal."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    size = job.get("isolate")
    uid = job.get("uid")
    if size is not None:
        clone_newns, clone_newnet = 0x00020000, 0x40000000
        ms_rec, ms_private, ms_nosuid, ms_nodev = 0x4000, 0x40000, 0x2, 0x4
        if libc.unshare(clone_newns | clone_newnet) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
        if libc.mount(b"none", b"/", None, ms_rec | ms_private, None) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
        here = os.getcwd()
        owner = f",uid={uid},gid={uid}" if uid is not None else ""
        options = f"size={int(size)},mode=0700{owner}".encode()
        if libc.mount(b"tmpfs", here.encode(), b"tmpfs", ms_nosuid | ms_nodev, options) != 0:
            raise OSError(ctypes.get_errno(), "mount tmpfs")
        os.chdir(here)
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    pr_set_pdeathsig, pr_set_dumpable, sigkill = 1, 4, 9
    libc.prctl(pr_set_pdeathsig, sigkill, 0, 0, 0)
    if os.getppid() != job.get("parent", os.getppid()):
        os._exit(1)
    if job.get("role") == "harness":  # no ptrace, no /proc/<pid>/mem or fd for a same-uid process
        libc.prctl(pr_set_dumpable, 0, 0, 0, 0)


def _limits(limits: list[list[Any]]) -> None:
    import resource

    for name, soft, hard in limits:
        which = getattr(resource, name)
        ceiling = resource.getrlimit(which)[1]
        if ceiling != resource.RLIM_INFINITY:
            soft, hard = min(soft, ceiling), min(hard, ceiling)
        resource.setrlimit(which, (soft, hard))


def _guard(root: str) -> None:
    """Refuse process creation, signals, id and session changes, networking and writes outside
    ``root``."""
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
    # No networking: the socket modules cannot be imported (nor what needs them).
    for name in ("ctypes", "_ctypes", "resource", "psutil", "_socket", "socket", "_ssl", "ssl"):
        sys.modules[name] = None  # type: ignore[assignment]  # makes the import fail


def _type_name(exc: BaseException) -> str:
    """The exception's type name when it is a builtin exception, else a neutral phrase (the
    candidate names its own classes)."""
    import builtins

    name = type(exc).__name__
    if getattr(builtins, name, None) is type(exc):
        return name
    return "a candidate-defined exception"


def _line(exc: BaseException, filename: str) -> int | None:
    """The line of the last frame of ``filename`` in the traceback."""
    tb, where = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            where = tb.tb_lineno
        tb = tb.tb_next
    return where


def _failure(exc: BaseException, filename: str, program: str | None = None) -> str:
    """``kind|message`` of an exception raised while running ``filename``. ``program`` (trusted
    text only) lends its failing line to the message."""
    try:
        if isinstance(exc, Fault):
            return exc.kind + "|" + exc.message
        if isinstance(exc, SyntaxError):
            return KIND_SYNTAX + "|" + (f"line {exc.lineno}" if exc.lineno else "")
        if isinstance(exc, MemoryError):
            return KIND_MEMORY + "|MemoryError"
        if isinstance(exc, OSError) and exc.errno in (_ENOSPC, _EFBIG, _EDQUOT):
            return KIND_DISK + "|" + _type_name(exc)
        where = _line(exc, filename)
        at = f" at line {where}" if where is not None else ""
        if program is not None and where is not None:
            lines = program.splitlines()
            if 0 < where <= len(lines):
                at += ": " + " ".join(lines[where - 1].split())[:160]
        if isinstance(exc, AssertionError) and program is not None:
            return KIND_WRONG + "|" + at.lstrip()
        return KIND_EXCEPTION + "|" + _type_name(exc) + at
    except BaseException:
        return KIND_EXCEPTION + "|an exception that cannot be described"


def _reporter(job: dict[str, Any]) -> Callable[[str], None]:
    marker, channel = job["marker"], job["channel"]
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

    return report


def _define(program: str) -> types.ModuleType:
    code = compile(program, "<candidate>", "exec")
    module = types.ModuleType("__candidate__")
    sys.modules["__candidate__"] = module
    exec(code, module.__dict__)
    return module


def _run_program(job: dict[str, Any]) -> NoReturn:
    """Role ``program``: run it; OK when it ran to completion."""
    report = _reporter(job)
    program = job["program"]
    del job
    try:
        _define(program)
    except BaseException as exc:
        report("ERR " + _failure(exc, "<candidate>"))
        os._exit(1)
    report("OK")
    os._exit(0)


def _serve(job: dict[str, Any]) -> NoReturn:
    """Role ``candidate``: define the program, say so, then answer calls until end of file."""
    calls_in, calls_out = job["calls_in"], job["calls_out"]
    program = job["program"]
    del job
    send_, receive_, exit_ = send, receive, os._exit
    try:
        module = _define(program)
    except BaseException as exc:
        send_(calls_out, {"load": _failure(exc, "<candidate>")})
        exit_(1)
    send_(calls_out, {"ready": True})
    while True:
        request = receive_(calls_in)
        if request is None:
            exit_(0)
        fn = module.__dict__.get(request["call"])
        args = [decode(a) for a in request["args"]]
        kwargs = {k: decode(v) for k, v in request["kwargs"].items()}
        if not callable(fn):
            send_(calls_out, {"raise": "NameError"})
            continue
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno in (_ENOSPC, _EFBIG, _EDQUOT):
                send_(calls_out, {"fault": KIND_DISK})
            else:
                send_(calls_out, {"raise": _type_name(exc)})
            continue
        except BaseException:  # SystemExit, KeyboardInterrupt...: leaving mid-call
            exit_(1)
        try:
            reply: dict[str, Any] = {"value": encode(value)}
            changed = {}
            for index, (arg, sent) in enumerate(zip(args, request["args"], strict=True)):
                if type(arg) in (list, dict, set):
                    now = encode(arg)
                    if now != sent:
                        changed[str(index)] = now
            if changed:
                reply["mutated"] = changed
        except NotPlain:
            reply = {"fault": KIND_NOT_PLAIN}
        send_(calls_out, reply)


_FAULTS = (KIND_NOT_PLAIN, KIND_DISK)


def _proxy(name: str, calls_out: int, calls_in: int) -> Callable[..., Any]:
    """A stand-in for the candidate's function ``name``: arguments go out and the value comes
    back as plain data; an exception of the candidate is raised as its builtin type."""
    import builtins

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            sent = [encode(a) for a in args]
            sent_kwargs = {str(k): encode(v) for k, v in kwargs.items()}
        except NotPlain as err:
            raise Fault(KIND_NOT_PLAIN, f"an argument of {name} ({err})") from None
        try:
            send(calls_out, {"call": name, "args": sent, "kwargs": sent_kwargs})
            reply = receive(calls_in)
        except OSError:
            reply = None
        except NotPlain:
            raise Fault(KIND_PROTOCOL, f"a reply of {name}") from None
        if reply is None:
            raise Fault(KIND_CANDIDATE_GONE, f"during a call of {name}")
        if type(reply) is not dict:
            raise Fault(KIND_PROTOCOL, f"a reply of {name}")
        if "raise" in reply:
            kind = getattr(builtins, str(reply["raise"]), None)
            if isinstance(kind, type) and issubclass(kind, Exception):
                raise kind(f"raised by the candidate's {name}")
            raise Exception(f"raised by the candidate's {name}")
        if "fault" in reply:
            fault = reply["fault"] if reply["fault"] in _FAULTS else KIND_PROTOCOL
            raise Fault(fault, f"the value of {name}")
        try:
            value = decode(reply.get("value"))
            mutated = reply.get("mutated") or {}
            if type(mutated) is not dict:
                raise NotPlain("bad encoding")
            for key, data in mutated.items():
                index = int(key)
                new, old = decode(data), args[index]
                if type(new) is not type(old) or type(old) not in (list, dict, set):
                    raise NotPlain("bad mutation")
                if type(old) is list:
                    old[:] = new
                else:
                    old.clear()
                    old.update(new)
        except (NotPlain, ValueError, IndexError):
            raise Fault(KIND_NOT_PLAIN, f"the value of {name}") from None
        return value

    call.__name__ = call.__qualname__ = name
    return call


def _harness(job: dict[str, Any]) -> NoReturn:
    """Role ``harness``: wait for the candidate, bind the proxies, run the trusted tests."""
    report = _reporter(job)
    calls_in, calls_out = job["calls_in"], job["calls_out"]
    program, proxies = job["program"], job["proxies"]
    del job
    try:
        hello = receive(calls_in)
    except (NotPlain, OSError):
        hello = None
    if type(hello) is not dict or not (hello.get("ready") is True or "load" in hello):
        report("ERR " + KIND_CANDIDATE_GONE + "|before its program was defined")
        os._exit(1)
    if "load" in hello:
        failure = str(hello["load"])
        kind, _, message = failure.partition("|")
        known = (KIND_SYNTAX, KIND_EXCEPTION, KIND_MEMORY, KIND_DISK)
        # The candidate speaks for itself here: keep a known kind and a bounded, plain message.
        message = "".join(c for c in message if c.isalnum() or c in " _-:.()")[:80]
        kind = kind if kind in known else KIND_EXCEPTION
        report("ERR " + kind + "|" + message + " (defining the candidate)")
        os._exit(1)
    made: dict[str, Callable[..., Any]] = {}

    def candidate(name: str) -> Callable[..., Any]:
        if name not in made:
            made[name] = _proxy(str(name), calls_out, calls_in)
        return made[name]

    namespace: dict[str, Any] = {"__name__": "__tests__", "__candidate__": candidate}
    for name in proxies:
        namespace[name] = candidate(name)
    try:
        exec(compile(program, "<tests>", "exec"), namespace)
    except BaseException as exc:
        report("ERR " + _failure(FAULTS[0] if FAULTS else exc, "<tests>", program))
        os._exit(1)
    if FAULTS:
        report("ERR " + _failure(FAULTS[0], "<tests>", program))
        os._exit(1)
    report("OK")
    os._exit(0)


def _main() -> NoReturn:
    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    _isolate(job)
    sealed = job.pop("sealed", None)
    if sealed is not None:  # the harness is not dumpable now: the candidate may start
        os.write(sealed, b"1")
        os.close(sealed)
    _limits(job["limits"])
    if job["guard"]:
        _guard(os.path.realpath(os.getcwd()))
    role = job.get("role", "program")
    if role == "candidate":
        _serve(job)
    if role == "harness":
        _harness(job)
    _run_program(job)


if __name__ == "__main__":
    _main()
