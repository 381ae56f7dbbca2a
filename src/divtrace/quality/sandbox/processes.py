"""The sandbox's processes seen from outside: waiting for the child, and reaping what it left."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time

from divtrace.quality.sandbox.uids import kill_uid

log = logging.getLogger(__name__)


def proc_entries() -> list[tuple[int, int, str, int, int]]:
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


def leftovers(uid: int | None, session: int) -> list[int]:
    """Live (non-zombie) processes of the sandbox: in its session or group, or of its uid."""
    me = os.getpid()
    return [
        pid
        for pid, owner, state, pgrp, sid in proc_entries()
        if pid != me
        and state not in ("Z", "X")
        and (sid == session or pgrp == session or (uid is not None and owner == uid))
    ]


def reap(python: str, uid: int | None, session: int) -> bool:
    """Kill whatever the sandbox left running; True when nothing is left.

    ``session``: the child's pid (its session and process-group id; the child must still be
    unreaped, so that the id cannot be reused); ``uid``: the sandbox uid, None when the child ran
    as the current user; ``python``: an interpreter that ``uid`` can run (for :func:`kill_uid`).
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(session, signal.SIGKILL)
    for attempt in range(40):
        pids = leftovers(uid, session)
        if not pids:
            return True
        if uid is not None and attempt in (0, 5, 20):
            kill_uid(python, uid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(min(0.005 * (attempt + 1), 0.1))
    left = leftovers(uid, session)
    if left:
        log.error("sandbox: processes %s survived cleanup", left)
    return not left


def wait_exit(pid: int, timeout_s: float) -> bool:
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


__all__ = ["leftovers", "proc_entries", "reap", "wait_exit"]
