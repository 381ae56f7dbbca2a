"""What a sandboxed run came to: :class:`RunResult`, read from the child's report and exit."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import IO

#: Bytes of the child's captured stdout/stderr read back (its tail), for crash messages.
OUTPUT_TAIL = 2048
#: Bytes read from the result pipe.
CHANNEL_MAX = 65536


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


def output_tail(handle: IO[bytes]) -> str:
    """The last line of the child's captured output (200 characters at most)."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - OUTPUT_TAIL))
    lines = handle.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:200] if lines else ""


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def launch_error(err: BaseException) -> RunResult:
    """The result of a child that could not be started."""
    return RunResult(False, "error", f"sandbox error: {err}"[:300], 0.0)


def run_result(
    *,
    marker: str,
    channel: str,
    returncode: int | None,
    timed_out: bool,
    tail: str,
    timeout_s: float,
    elapsed_s: float,
) -> RunResult:
    """The result of a finished child, from its report on the channel and how it ended.

    Only the last channel line with the run's ``marker`` counts. A wall-clock timeout wins;
    then ``OK`` with exit status 0 passes, an ``ERR`` report fails (``memory`` for a
    MemoryError), and without a report a signal is a crash (SIGXCPU: the CPU limit; SIGKILL: the
    memory or CPU limit) and anything else an early exit.
    """
    verdict = None
    for line in channel.splitlines():
        if line.startswith(marker + " "):
            verdict = line[len(marker) + 1 :]
    code, elapsed = returncode, elapsed_s
    if timed_out:
        return RunResult(False, "timeout", f"timeout ({timeout_s:g} s wall clock)", elapsed)
    if verdict == "OK" and code == 0:
        return RunResult(True, "passed", "passed", elapsed)
    if verdict is not None and verdict.startswith("ERR "):
        message = verdict[4:]
        if message.startswith("MemoryError"):
            return RunResult(False, "memory", f"out of memory: {message}"[:300], elapsed)
        return RunResult(False, "failed", f"failed: {message}"[:300], elapsed)
    if code is not None and code < 0:
        name = signal_name(-code)
        if -code == signal.SIGXCPU:
            return RunResult(False, "timeout", "timeout (cpu time limit)", elapsed)
        if -code == signal.SIGKILL:
            return RunResult(False, "memory", "killed (SIGKILL: memory or cpu limit)", elapsed)
        detail = f"crashed ({name})" + (f": {tail}" if tail else "")
        return RunResult(False, "crashed", detail[:300], elapsed)
    detail = f"exited before the tests finished (exit code {code})" + (f": {tail}" if tail else "")
    return RunResult(False, "exited", detail[:300], elapsed)


__all__ = ["RunResult", "launch_error", "output_tail", "read_channel"]
