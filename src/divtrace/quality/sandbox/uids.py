"""The sandbox's own users: fresh unprivileged uids, and killing everything one of them runs."""

from __future__ import annotations

import logging
import pwd
import secrets
import subprocess

log = logging.getLogger(__name__)

#: Where the sandbox uids (also their gids) are drawn from: far above any account's.
UID_RANGE = (1_500_000_000, 2_000_000_000)

#: Every uid this process handed to a sandbox (lets a caller audit its own sandboxes only).
ISSUED_UIDS: set[int] = set()


def fresh_uid() -> int:
    """A random uid (also used as gid) that no account and no running process uses."""
    while True:
        uid = secrets.randbelow(UID_RANGE[1] - UID_RANGE[0]) + UID_RANGE[0]
        try:
            pwd.getpwuid(uid)
        except KeyError:
            ISSUED_UIDS.add(uid)
            return uid


def kill_uid(python: str, uid: int) -> None:
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


__all__ = ["ISSUED_UIDS", "UID_RANGE", "fresh_uid", "kill_uid"]
