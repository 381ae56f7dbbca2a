"""A sandbox for running untrusted Python programs (model-written code; docs/design.md §6).

Every sandbox process is a fresh Python interpreter (``subprocess``, never a fork of this
process) running :mod:`~divtrace.quality.sandbox.child` (the file ``child.py`` of this package,
launched by path) in one of three roles: ``candidate`` (define the candidate program, then answer
calls to its functions), ``harness`` (run trusted test code) or ``program`` (run one program to
completion; :func:`run_program`, used for probes and for the outer layers' tests).

**An unforgeable verdict** (:func:`run_tests`, what :mod:`divtrace.quality.code` uses): the
candidate and the trusted tests run in two processes, under two uids where possible. In the
harness, the names the tests call are proxies that send the arguments to the candidate and
receive the return value as plain data (:func:`~divtrace.quality.sandbox.child.encode`,
:func:`~divtrace.quality.sandbox.child.decode`: exact builtin types only, bounded); anything else
fails the run. The harness is not dumpable (no ptrace, no ``/proc/<pid>/mem``), and only it and
the host hold the pipe its verdict goes to. :func:`run_calls` uses the same protocol to record
what a program's function returns on given inputs (:class:`CallOutcome`).

Each process is contained by several layers:

1. **Its own user.** When this process may change user (root with CAP_SETUID) and an interpreter
   is found that an unprivileged user can run, the child (started as root) becomes a fresh,
   random, otherwise unused uid/gid with no supplementary groups
   (:mod:`~divtrace.quality.sandbox.uids`) before any untrusted code runs. File permissions then
   keep it out of everything that is not world-writable, ``RLIMIT_NPROC`` bounds its processes,
   and every process it leaves behind can be found and killed by its uid. Otherwise it runs as
   the current user (:func:`sandbox_mode` says which).
2. **Namespaces** (as root): a new network namespace (no interface up, not even loopback) and a
   private mount namespace whose working directory is a tmpfs of ``disk_bytes``. Without them,
   the host watches the working directory and stops the run once it grows past the cap, and the
   guard (layer 5) refuses networking.
3. **Its own session, and death with its parent** (``start_new_session``;
   ``PR_SET_PDEATHSIG`` set after the uid change): after every run the process group is killed,
   then anything still in the session or owned by the sandbox uid
   (:mod:`~divtrace.quality.sandbox.processes`). :func:`cleanup_on_signals` makes SIGTERM,
   SIGINT and SIGHUP kill the running sandboxes and remove their folders first
   (:func:`kill_active`); :func:`sweep_stale` removes the folders (and kills the uids) of runs
   whose owner process is gone, once per process before its first run.
4. **Resource limits** set before the candidate code runs (:mod:`~divtrace.quality.sandbox.limits`):
   CPU time, address space, file size (also caps the captured output, which goes to an
   anonymous temp file and is never read back into a result), processes and no core dumps; plus
   a wall-clock timeout enforced by the host.
5. **A guard inside the child** (our own take on human-eval's ``reliability_guard``): process
   creation, signalling other processes, changing ids or sessions, networking (``socket``,
   ``ssl`` cannot be imported), and writing, creating, deleting, renaming or re-permissioning
   files outside the working directory are refused; ``ctypes`` and ``resource`` cannot be
   imported. This stops accidents and naive code, not a determined attacker (layers 1–4 are the
   containment).
6. **A fresh temp working directory** (also ``HOME`` and ``TMPDIR``), removed afterwards, and a
   minimal environment: only ``PATH``, ``LANG``, ``PYTHONHASHSEED=0`` (deterministic hashing),
   ``HOME``, ``TMPDIR`` and single-thread settings for numeric libraries. The interpreter runs
   with ``-s -P -B`` (no user site, no script directory on ``sys.path``, no bytecode writes).

A result (:class:`RunResult`) carries a failure kind (:data:`KINDS`) and a short message built
from trusted text only, never the candidate's output or the text of its exceptions
(:mod:`~divtrace.quality.sandbox.results`). Exiting early in any way is a failure.

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
