"""What a sandboxed run came to: :class:`RunResult`, read from the verdict and how processes ended.

A result's ``detail`` is its failure kind and a short message made from trusted text only (see
:mod:`~divtrace.quality.sandbox.child`): never the candidate's output, the text of its
exceptions or anything it read.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from divtrace.quality.sandbox import child

#: Bytes read from the result pipe.
CHANNEL_MAX = 65536
#: Longest ``detail`` kept (characters).
MAX_DETAIL = 200

KIND_PASSED = "passed"
KIND_TIMEOUT = "timeout"
KIND_CRASH = "crash"
KIND_ERROR = "sandbox error"
#: Every failure kind a result may carry (the first word(s) of its ``detail``).
KINDS = (
    KIND_PASSED,
    child.KIND_WRONG,
    child.KIND_EXCEPTION,
    child.KIND_SYNTAX,
    child.KIND_NOT_PLAIN,
    child.KIND_EXITED,
    child.KIND_MEMORY,
    child.KIND_DISK,
    child.KIND_PROTOCOL,
    child.KIND_CANDIDATE_GONE,
    KIND_TIMEOUT,
    KIND_CRASH,
    KIND_ERROR,
)
_STATUS = {
    KIND_PASSED: "passed",
    child.KIND_MEMORY: "memory",
    child.KIND_DISK: "disk",
    child.KIND_EXITED: "exited",
    child.KIND_CANDIDATE_GONE: "exited",
    KIND_TIMEOUT: "timeout",
    KIND_CRASH: "crashed",
    KIND_ERROR: "error",
}


@dataclass(frozen=True)
class RunResult:
    """Outcome of one sandboxed program.

    ``status``: ``passed``, ``failed`` (a wrong answer, an exception, a syntax error, a value
    that is not plain data), ``timeout``, ``memory``, ``disk`` (the working directory's or a
    file's size limit), ``exited`` (ended before the tests finished), ``crashed`` (a signal) or
    ``error`` (the sandbox could not run it). ``kind``: one of :data:`KINDS`. ``detail``: the
    kind and a short message (``passed`` alone when it passed).
    """

    passed: bool
    status: str
    detail: str
    elapsed_s: float
    kind: str = KIND_PASSED


def result(kind: str, message: str, elapsed_s: float) -> RunResult:
    """The result of ``kind`` with ``message`` (both bounded, whitespace collapsed)."""
    text = " ".join(message.split())
    detail = f"{kind}: {text}" if text else kind
    return RunResult(
        kind == KIND_PASSED,
        _STATUS.get(kind, "failed"),
        detail[:MAX_DETAIL],
        elapsed_s,
        kind,
    )


def read_channel(fd: int) -> str:
    """What the child wrote to the result pipe (at most :data:`CHANNEL_MAX` bytes)."""
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    size = 0
    while size < CHANNEL_MAX:
        try:
            chunk = os.read(fd, CHANNEL_MAX - size)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def launch_error(err: BaseException) -> RunResult:
    """The result of a child that could not be started (the error is the host's own)."""
    return result(KIND_ERROR, str(err)[:150], 0.0)


def ended(returncode: int | None, elapsed_s: float, what: str) -> RunResult:
    """The result of a process (``what``) that ended without a verdict, from its exit status."""
    code = returncode
    if code is not None and code < 0:
        if -code == signal.SIGXCPU:
            return result(KIND_TIMEOUT, "cpu time limit", elapsed_s)
        if -code == signal.SIGXFSZ:
            return result(child.KIND_DISK, "file size limit", elapsed_s)
        if -code == signal.SIGKILL:
            return result(child.KIND_MEMORY, f"{what} killed (SIGKILL: memory or cpu)", elapsed_s)
        return result(KIND_CRASH, f"{what}: {signal_name(-code)}", elapsed_s)
    return result(child.KIND_EXITED, f"{what} left early (exit code {code})", elapsed_s)


def run_result(
    *,
    marker: str,
    channel: str,
    returncode: int | None,
    timed_out: bool,
    timeout_s: float,
    elapsed_s: float,
    disk_exceeded: bool = False,
    candidate_returncode: int | None = None,
) -> RunResult:
    """The result of a finished run, from the verdict on the channel and how it ended.

    Only the last channel line with the run's ``marker`` counts. A wall-clock timeout or the
    working directory's size limit (seen by the host) wins; then ``OK`` with exit status 0
    passes and an ``ERR`` verdict fails with its kind. A harness that says the candidate ended
    lends the candidate's exit status (``candidate_returncode``) to the result. Without a verdict
    the exit status decides (SIGXCPU: the CPU limit; SIGKILL: the memory or CPU limit).
    """
    verdict = None
    for line in channel.splitlines():
        if line.startswith(marker + " "):
            verdict = line[len(marker) + 1 :]
    if disk_exceeded:
        return result(child.KIND_DISK, "working directory over its size limit", elapsed_s)
    if timed_out:
        return result(KIND_TIMEOUT, f"{timeout_s:g} s wall clock", elapsed_s)
    if verdict == "OK" and returncode == 0:
        return result(KIND_PASSED, "", elapsed_s)
    if verdict is not None and verdict.startswith("ERR "):
        kind, _, message = verdict[4:].partition("|")
        if kind == child.KIND_CANDIDATE_GONE and candidate_returncode is not None:
            return ended(candidate_returncode, elapsed_s, "the candidate")
        return result(kind if kind in KINDS else child.KIND_EXCEPTION, message, elapsed_s)
    return ended(returncode, elapsed_s, "the program")


__all__ = [
    "KINDS",
    "MAX_DETAIL",
    "RunResult",
    "ended",
    "launch_error",
    "read_channel",
    "result",
    "run_result",
]
