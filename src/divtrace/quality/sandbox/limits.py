"""What one sandboxed run may use: :class:`SandboxLimits`, and the rlimits the child sets."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from divtrace.quality.sandbox.processes import proc_entries


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run.

        ``timeout_s``: wall clock; ``cpu_s``: CPU time (default: the timeout rounded up, plus one);
        ``memory_bytes``: address space; ``file_bytes``: largest file the child may write (its captured
        output included); ``disk_bytes``: the whole working directory (a tmpfs of that size where the
    child has its own mount namespace, else watched by the host, which stops the run when the folder
    grows past it); ``nproc``: processes/threads of the sandbox uid (only enforced when the
        child runs under its own uid, or as a non-root current user). ``python_guard`` turns the
        in-process guard (layer 4) off; it exists to test the outer layers and must stay on otherwise.
    """

    timeout_s: float = 10.0
    cpu_s: int | None = None
    memory_bytes: int = 2 * 2**30
    file_bytes: int = 16 * 2**20
    disk_bytes: int = 64 * 2**20
    nproc: int = 32
    python_guard: bool = True


_TASKS_CACHE: dict[int, tuple[float, int]] = {}


def user_tasks(uid: int) -> int:
    """Threads of all processes of ``uid`` (what RLIMIT_NPROC counts); cached for 10 s."""
    now = time.monotonic()
    cached = _TASKS_CACHE.get(uid)
    if cached is not None and now - cached[0] < 10.0:
        return cached[1]
    total = 0
    for pid, owner, *_ in proc_entries():
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


def rlimits(limits: SandboxLimits, dedicated_uid: bool) -> list[tuple[str, int, int]]:
    """``(RLIMIT_* name, soft, hard)`` for the child to set before the candidate runs.

    ``RLIMIT_NPROC`` is the sandbox uid's ``nproc`` under a dedicated uid; as a non-root current
    user it counts every process of that user, so it allows what already runs plus a margin; as
    root (which ignores it) it is not set.
    """
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
        nproc = user_tasks(os.geteuid()) + limits.nproc + 64
        out.append(("RLIMIT_NPROC", nproc, nproc))
    return out


__all__ = ["SandboxLimits", "rlimits", "user_tasks"]
