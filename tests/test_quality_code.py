"""Code correctness by sandboxed execution: HumanEval, MBPP, and the sandbox under attack."""

from __future__ import annotations

import ast
import importlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from divtrace.errors import DivtraceError, JudgeError, SandboxError
from divtrace.quality import code, sandbox
from divtrace.quality.code import judge_humaneval, judge_mbpp
from divtrace.quality.sandbox import CHILD, SandboxLimits, processes, run_program, runner
from divtrace.quality.sandbox import child as child_codec
from divtrace.quality.sandbox.limits import rlimits
from divtrace.tasks import humaneval, mbpp

from .conftest import REPO

HUMANEVAL = "humaneval.jsonl"
MBPP = "mbpp_test_100.jsonl"
FAST = SandboxLimits(timeout_s=3.0)


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture
def he_records(shared_real: Path) -> list[dict[str, Any]]:
    return _records(shared_real / HUMANEVAL)


@pytest.fixture
def mbpp_records(shared_real: Path) -> list[dict[str, Any]]:
    return _records(shared_real / MBPP)


@pytest.fixture
def he_refs(he_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [humaneval.FAMILY.reference(r) for r in he_records]


# --- sandbox leftovers --------------------------------------------------------------------------


def _sandbox_processes() -> list[tuple[int, int, str]]:
    """Live processes this test run's sandboxes could have left: processes running under a uid
    this process issued (other test runs on the machine use other uids), or descendants of it."""
    entries = processes.proc_entries()
    parent = {}
    for pid, *_ in entries:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                text = handle.read()
            parent[pid] = int(text[text.rfind(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    me = os.getpid()

    def descends(pid: int) -> bool:
        seen = set()
        while pid in parent and pid not in seen:
            seen.add(pid)
            pid = parent[pid]
            if pid == me:
                return True
        return False

    return [
        (pid, uid, state)
        for pid, uid, state, _pgrp, _sid in entries
        if state not in ("Z", "X") and (uid in sandbox.ISSUED_UIDS or descends(pid))
    ]


@pytest.fixture
def contained(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Asserts that a test leaves no sandbox process and no sandbox directory behind.

    The sandboxes' temp folders go to a fresh folder of this test (so that another test run on
    the machine cannot be mistaken for a leak), which any user may enter, as /tmp.
    """
    tmp_path_factory.getbasetemp()  # settled before the temp folder moves
    base = tempfile.mkdtemp(prefix="divtrace-test-sandboxes-")
    os.chmod(base, 0o755)
    monkeypatch.setattr(tempfile, "tempdir", base)
    # Children this process had before the test are not the test's (an earlier test's vLLM
    # engine left multiprocessing's resource tracker, which lives as long as this process).
    before = {pid for pid, _uid, _state in _sandbox_processes()}
    try:
        yield
        assert [p for p in _sandbox_processes() if p[0] not in before] == []
        assert os.listdir(base) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _failed_fast(program: str, limits: SandboxLimits = FAST, *, bound: float = 8.0) -> Any:
    start = time.monotonic()
    result = run_program(program, limits)
    elapsed = time.monotonic() - start
    assert not result.passed, result
    assert elapsed < bound, (elapsed, result)
    return result


# --- task families ------------------------------------------------------------------------------


def test_humaneval_family(he_records: list[dict[str, Any]]) -> None:
    fam = humaneval.FAMILY
    record = he_records[0]
    fam.check_record(record, "test")
    assert fam.name == "humaneval" and fam.id_fields == ("task_id",) and fam.verifiable
    assert fam.render_text(record) == record["prompt"]
    user = fam.render_user(record)
    assert "```python\n" + record["prompt"].rstrip() + "\n```" in user
    assert fam.reference(record) == {
        "prompt": record["prompt"],
        "test": record["test"],
        "entry_point": record["entry_point"],
    }
    assert "\ndef " in fam.stop and "\n#" in fam.stop and "\nif __name__" in fam.stop


def test_mbpp_family(mbpp_records: list[dict[str, Any]]) -> None:
    record = mbpp_records[0]
    fam = mbpp.FAMILY
    fam.check_record(record, "test")
    assert (fam.hf_id, fam.hf_config, fam.split) == (
        "google-research-datasets/mbpp",
        "full",
        "test",
    )
    user = fam.render_user(record)
    assert user.startswith(
        f"You are an expert Python programmer, and here is your task: {record['text']} "
        "Your code should pass these tests:\n\n"
    )
    assert user.endswith("\n".join(record["test_list"]))
    assert fam.render_text(record).startswith(user) and fam.render_text(record).endswith(
        "```python\n"
    )
    assert fam.reference(record) == {
        "test_list": record["test_list"],
        "test_setup_code": record["test_setup_code"],
        "challenge_test_list": record["challenge_test_list"],
    }


# --- program assembly ---------------------------------------------------------------------------

REF = {
    "prompt": 'from typing import List\n\n\ndef add(a: int, b: int) -> int:\n    """Sum."""\n',
    "test": "\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n",
    "entry_point": "add",
}


def test_humaneval_assembly_completion_is_cut_at_stops() -> None:
    program, candidate = code.humaneval_program("    return a + b\n\n\ndef junk():\n", REF)
    assert candidate == "    return a + b\n\n"
    assert program.startswith(REF["prompt"] + candidate)
    assert program.rstrip().endswith("check(add)")


def test_humaneval_assembly_fenced_whole_function() -> None:
    answer = (
        "Sure!\n```text\nnot code\n```\n```python\ndef helper(x):\n    return x\n\n"
        "def add(a, b):\n    return helper(a) + b\n```\nExplanation ```python\nprint(1)\n```"
    )
    program, candidate = code.humaneval_program(answer, REF)
    assert candidate.startswith("def helper(x):") and "def add(a, b)" in candidate
    assert "print(1)" not in program
    assert program.startswith(REF["prompt"])  # imports and stub first, then the redefinition
    indented = "```python\n    def add(a, b):\n        return a + b\n```"
    assert code.humaneval_program(indented, REF)[1].startswith("def add(a, b):")


def test_mbpp_assembly() -> None:
    ref = {"test_list": ["assert twice(2) == 4"], "test_setup_code": "import math"}
    answer = "```python\nprint('demo')\n```\n```python\ndef twice(x):\n    return 2 * x\n```"
    program, candidate = code.mbpp_program(answer, ref)
    assert candidate.startswith("def twice")
    assert program.startswith("import math\n") and program.rstrip().endswith("assert twice(2) == 4")
    assert code.mbpp_program("def twice(x):\n    return 2 * x\n", ref)[1].startswith("def twice")


def test_mbpp_run_proxies_the_names_the_asserts_call() -> None:
    ref = {
        "test_list": ["assert math.isclose(area(2), 4.0)", "assert pow(2) == 4 == max(4, 1)"],
        "test_setup_code": "import math\ndef helper():\n    return 1\n",
    }
    run, candidate = code.mbpp_run(
        "def area(x):\n    return x * x\ndef pow(x):\n    return 4\n", ref
    )
    assert candidate.startswith("def area") and run.candidate.startswith("import math\n")
    binds = [line for line in run.tests.splitlines() if "__candidate__" in line]
    assert binds == ["area = __candidate__('area')", "pow = __candidate__('pow')"]
    assert run.tests.endswith("assert pow(2) == 4 == max(4, 1)\n")


def test_judge_small_batch(contained: None) -> None:
    answers = [
        "    return a + b\n",
        "    return a - b\n",
        "```python\ndef add(a, b):\n    return a + b\n```",
        "```python\ndef add(a, b):\n    return a +\n```",
    ]
    judged = judge_humaneval(answers, [REF] * 4, [{}] * 4, timeout_s=5)
    assert [j.correct for j in judged] == [True, False, True, False]
    assert [j.score for j in judged] == [1.0, 0.0, 1.0, 0.0]
    assert judged[0].detail == "passed" and judged[0].extracted == "    return a + b\n"
    assert judged[1].detail == "wrong answer: at line 11: assert candidate(2, 3) == 5"
    assert judged[3].detail is not None and judged[3].detail.startswith("syntax error: line ")
    with pytest.raises(ValueError, match="answers"):
        judge_humaneval(answers, [REF], [{}])


def test_reference_without_its_keys_is_a_judge_error() -> None:
    with pytest.raises(JudgeError, match=r"prompt 'he/0': humaneval reference lacks \['test', "):
        judge_humaneval(["    pass\n"], [{"prompt": "def f():\n"}], [{"prompt_id": "he/0"}])
    with pytest.raises(JudgeError, match=r"^mbpp reference lacks \['test_list'\]"):
        judge_mbpp(["pass\n"], [{"test_setup_code": ""}], [{}])
    with pytest.raises(ValueError):  # JudgeError is a ValueError too
        code.humaneval_program("", {})


# --- real data ----------------------------------------------------------------------------------


@pytest.mark.slow  # every problem of the benchmark through the sandbox
def test_humaneval_canonical_solutions_pass(
    he_records: list[dict[str, Any]], he_refs: list[dict[str, Any]], contained: None
) -> None:
    answers = [r["canonical_solution"] for r in he_records]
    judged = judge_humaneval(answers, he_refs, [{}] * len(answers), timeout_s=10)
    failed = [
        (r["task_id"], j.detail) for r, j in zip(he_records, judged, strict=True) if not j.correct
    ]
    assert failed == []
    assert len(judged) == 164


@pytest.mark.slow  # every problem of the benchmark through the sandbox
def test_humaneval_empty_body_fails(
    he_records: list[dict[str, Any]], he_refs: list[dict[str, Any]], contained: None
) -> None:
    judged = judge_humaneval(
        ["    pass\n"] * len(he_refs), he_refs, [{}] * len(he_refs), timeout_s=10
    )
    passing = [r["task_id"] for r, j in zip(he_records, judged, strict=True) if j.correct]
    assert passing == []  # no HumanEval problem accepts an empty body
    kinds = {(j.detail or "").partition(":")[0] for j in judged}
    assert kinds <= {"wrong answer", "exception"}, kinds


def test_humaneval_fenced_whole_functions_pass(
    he_records: list[dict[str, Any]], he_refs: list[dict[str, Any]], contained: None
) -> None:
    answers = [
        f"Here is the function:\n\n```python\n{r['prompt']}{r['canonical_solution']}```\n"
        for r in he_records[::4]
    ]
    refs = he_refs[::4]
    judged = judge_humaneval(answers, refs, [{}] * len(answers), timeout_s=10)
    assert all(j.correct for j in judged), [j.detail for j in judged if not j.correct]


@pytest.mark.slow  # every problem of the benchmark through the sandbox
def test_mbpp_reference_code_passes(mbpp_records: list[dict[str, Any]], contained: None) -> None:
    records = mbpp_records
    refs = [mbpp.FAMILY.reference(r) for r in records]
    judged = judge_mbpp([r["code"] for r in records], refs, [{}] * len(refs), timeout_s=10)
    failed = [
        (r["task_id"], j.detail) for r, j in zip(records, judged, strict=True) if not j.correct
    ]
    assert failed == []
    fenced = judge_mbpp([f"```python\n{records[0]['code']}\n```"], refs[:1], [{}], timeout_s=10)
    assert fenced[0].correct
    wrong = judge_mbpp(["def remove_Occ(s, ch):\n    return s\n"], refs[:1], [{}], timeout_s=10)
    assert not wrong[0].correct


# --- adversarial samples --------------------------------------------------------------------------


def test_sandbox_environment(monkeypatch: pytest.MonkeyPatch, contained: None) -> None:
    monkeypatch.setenv("DIVTRACE_TEST_SECRET_TOKEN", "hunter2")
    program = (
        "import os\n"
        "assert 'DIVTRACE_TEST_SECRET_TOKEN' not in os.environ, dict(os.environ)\n"
        "assert set(os.environ) <= {'PATH', 'LANG', 'PYTHONHASHSEED', 'HOME', 'TMPDIR', "
        "'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'LC_CTYPE'}, dict(os.environ)\n"
        "assert os.environ['HOME'] == os.getcwd()\n"
        "assert os.path.basename(os.getcwd()).startswith('divtrace-sandbox-')\n"
        "open('scratch.txt', 'w').write('fine inside the sandbox')\n"
        "os.remove('scratch.txt')\n"
    )
    if sandbox.sandbox_mode() == "dedicated-uid":
        program += "assert os.getuid() != 0 and os.getgid() != 0 and os.getgroups() == []\n"
    result = run_program(program, FAST)
    assert result.passed, result


def test_infinite_loop_times_out(contained: None) -> None:
    result = _failed_fast("while True:\n    pass\n")
    assert result.status == "timeout"


def test_fork_bomb_is_refused(contained: None) -> None:
    result = _failed_fast("import os\nwhile True:\n    os.fork()\n")
    assert "PermissionError" in result.detail
    for program in (
        "import posix\nwhile True:\n    posix.fork()\n",
        "import subprocess\nsubprocess.run(['sleep', '60'])\n",
        "import os\nos.system('sleep 60 &')\n",
        "import multiprocessing\nmultiprocessing.Process(target=print).start()\n",
        "import ctypes\n",
    ):
        assert _failed_fast(program).status == "failed"


def test_fork_bomb_without_the_guard_is_bounded(contained: None) -> None:
    """The outer layers alone (own uid, RLIMIT_NPROC, kill by session/uid) contain a fork bomb."""
    if os.geteuid() == 0 and sandbox.sandbox_mode() != "dedicated-uid":
        pytest.skip("as root without a dedicated uid, RLIMIT_NPROC does not apply")
    limits = SandboxLimits(timeout_s=3.0, nproc=8, python_guard=False)
    bomb = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    result = _failed_fast(bomb, limits)
    assert result.status == "timeout"
    escape = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\ntime.sleep(60)\n"
    )
    assert _failed_fast(escape, limits).status == "timeout"


def test_huge_allocation_fails(contained: None) -> None:
    result = _failed_fast("x = bytearray(50 * 2**30)\n")
    assert result.status == "memory"


def test_printing_gigabytes_is_capped(contained: None) -> None:
    _failed_fast('while True:\n    print("x" * 10**6)\n')
    stubborn = (
        'while True:\n    try:\n        print("x" * 10**6)\n    except OSError:\n        pass\n'
    )
    assert _failed_fast(stubborn).status == "timeout"


@pytest.mark.parametrize(
    "tail",
    [
        "import sys\nsys.exit(0)\n",
        "import os\nos._exit(0)\n",
        "raise SystemExit(0)\n",
        "exit()\n",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    ],
)
def test_leaving_before_the_tests_fails(tail: str, contained: None) -> None:
    answer = f"```python\ndef add(a, b):\n    return a + b\n\n{tail}```"
    judged = judge_humaneval([answer], [REF], [{}], timeout_s=3)
    assert not judged[0].correct, judged[0]
    answer_mbpp = f"def twice(x):\n    return 2 * x\n{tail}"
    ref = {"test_list": ["assert twice(2) == 4"], "test_setup_code": ""}
    assert not judge_mbpp([answer_mbpp], [ref], [{}], timeout_s=3)[0].correct


def _attacks(target: Path) -> list[str]:
    sentinel, parent = str(target / "sentinel.txt"), str(target)
    new = str(target / "new.txt")
    return [
        f"open({sentinel!r}, 'w').write('overwritten')\n",
        f"open({sentinel!r}, 'a').write('appended')\n",
        f"import os\nos.remove({sentinel!r})\n",
        f"import os\nos.rename({sentinel!r}, {new!r})\n",
        f"import shutil\nshutil.rmtree({parent!r})\n",
        f"open({new!r}, 'x').write('new')\n",
        f"import pathlib\npathlib.Path({new!r}).write_text('new')\n",
        f"import os\nos.symlink('/etc/passwd', {new!r})\n",
        f"import os\nos.link({sentinel!r}, 'hardlink')\nopen('hardlink', 'w').write('x')\n",
        f"import os\nos.chmod({sentinel!r}, 0o777)\n",
        f"import os\nfd = os.open({new!r}, os.O_CREAT | os.O_WRONLY)\n",
    ]


def _assert_untouched(target: Path, mode: int) -> None:
    assert sorted(p.name for p in target.iterdir()) == ["sentinel.txt"]
    assert (target / "sentinel.txt").read_text() == "keep me"
    assert stat.S_IMODE((target / "sentinel.txt").stat().st_mode) == mode


def test_files_outside_the_sandbox_survive(tmp_path: Path, contained: None) -> None:
    (tmp_path / "sentinel.txt").write_text("keep me")
    mode = stat.S_IMODE((tmp_path / "sentinel.txt").stat().st_mode)
    for program in _attacks(tmp_path):
        _failed_fast(program)
    _assert_untouched(tmp_path, mode)


def test_guard_protects_world_writable_files(contained: None) -> None:
    """Even where file permissions would allow it, the in-process guard refuses."""
    with tempfile.TemporaryDirectory(prefix="divtrace-test-open-") as folder:
        target = Path(folder)
        target.chmod(0o777)
        (target / "sentinel.txt").write_text("keep me")
        (target / "sentinel.txt").chmod(0o666)
        for program in _attacks(target):
            assert "PermissionError" in _failed_fast(program).detail, program
        _assert_untouched(target, 0o666)


def test_own_uid_protects_files_without_the_guard(tmp_path: Path, contained: None) -> None:
    if sandbox.sandbox_mode() != "dedicated-uid":
        pytest.skip("the child does not run under a dedicated uid here")
    (tmp_path / "sentinel.txt").write_text("keep me")
    mode = stat.S_IMODE((tmp_path / "sentinel.txt").stat().st_mode)
    limits = SandboxLimits(timeout_s=3.0, python_guard=False)
    for program in _attacks(tmp_path):
        _failed_fast(program, limits)
    _assert_untouched(tmp_path, mode)


def test_parallel_batch_keeps_order(contained: None) -> None:
    programs = ["assert True\n", "assert False\n", "while True:\n    pass\n", "x = 1\n"]
    results = sandbox.run_programs(programs, SandboxLimits(timeout_s=2.0), workers=4)
    assert [r.status for r in results] == ["passed", "failed", "timeout", "passed"]


def test_gradual_allocation_hits_the_memory_limit(contained: None) -> None:
    limits = SandboxLimits(timeout_s=5.0, memory_bytes=512 * 2**20)
    result = _failed_fast("x = []\nwhile True:\n    x.append(bytearray(10**7))\n", limits)
    assert result.status == "memory"


def test_current_user_mode(monkeypatch: pytest.MonkeyPatch, contained: None) -> None:
    """Without a dedicated uid (not root, or no usable interpreter) the inner layers still hold."""
    monkeypatch.setattr(runner, "_MODE", runner._Mode(False, sys.executable))
    assert sandbox.sandbox_mode() == "current-user"
    assert run_program("import math\nassert math.gcd(4, 6) == 2\n", FAST).passed
    with tempfile.TemporaryDirectory(prefix="divtrace-test-open-") as folder:
        target = Path(folder)
        (target / "sentinel.txt").write_text("keep me")
        mode = stat.S_IMODE((target / "sentinel.txt").stat().st_mode)
        for program in _attacks(target):
            assert "PermissionError" in _failed_fast(program).detail, program
        _assert_untouched(target, mode)
    assert "PermissionError" in _failed_fast("import os\nwhile True:\n    os.fork()\n").detail
    assert _failed_fast("x = bytearray(50 * 2**30)\n").status == "memory"
    assert _failed_fast("import os\nos._exit(0)\n").status == "exited"


def test_wait_without_pidfd(monkeypatch: pytest.MonkeyPatch, contained: None) -> None:
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    assert run_program("assert True\n", FAST).passed
    assert _failed_fast("while True:\n    pass\n", SandboxLimits(timeout_s=1.0)).status == "timeout"


def test_rlimits_for_an_unprivileged_user(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = dict((name, (soft, hard)) for name, soft, hard in rlimits(FAST, True))
    assert limits["RLIMIT_NPROC"] == (FAST.nproc, FAST.nproc)
    assert limits["RLIMIT_CPU"] == (4, 5)
    monkeypatch.setattr(os, "geteuid", lambda: 12345)
    limits = dict((name, (soft, hard)) for name, soft, hard in rlimits(FAST, False))
    assert limits["RLIMIT_NPROC"][0] >= FAST.nproc


# --- the child program --------------------------------------------------------------------------


def test_child_is_a_self_contained_module_that_the_linters_see() -> None:
    assert CHILD.parent == Path(sandbox.__file__).resolve().parent and CHILD.name == "child.py"
    source = CHILD.read_text(encoding="utf-8")
    tree = ast.parse(source, str(CHILD))
    compile(tree, str(CHILD), "exec")
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    # Importing it runs nothing (it would read stdin): the program starts under __main__ only.
    module = importlib.import_module("divtrace.quality.sandbox.child")
    assert Path(module.__file__ or "").resolve() == CHILD
    # Within what mypy and ruff check.
    relative = "src/divtrace/quality/sandbox/child.py"
    assert (REPO / relative).read_bytes() == CHILD.read_bytes()
    with open(REPO / "pyproject.toml", "rb") as handle:
        tools = tomllib.load(handle)["tool"]
    assert any(relative.startswith(f.rstrip("/") + "/") for f in tools["mypy"]["files"])
    excluded = tools["ruff"].get("exclude", []) + tools["ruff"].get("extend-exclude", [])
    assert not any(relative.startswith(e.rstrip("/") + "/") for e in excluded)


def test_child_runs_without_divtrace(tmp_path: Path) -> None:
    """The file is a program of its own: run with ``-I -S`` (no site, so no divtrace) it runs
    a job and reports on its channel."""
    read_fd, write_fd = os.pipe()
    program = "import importlib.util\nassert importlib.util.find_spec('divtrace') is None\n"
    job = {"marker": "m4rk", "channel": write_fd, "program": program, "limits": [], "guard": True}
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", str(CHILD)],
            input=json.dumps(job).encode(),
            cwd=tmp_path,
            pass_fds=(write_fd,),
            capture_output=True,
            timeout=30,
            check=False,
        )
        os.close(write_fd)
        write_fd = -1
        report = os.read(read_fd, 4096).decode()
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
    assert (done.returncode, report) == (0, "m4rk OK\n"), done.stderr


def test_sandbox_launches_the_child_file(monkeypatch: pytest.MonkeyPatch, contained: None) -> None:
    """The child is the package's file run by path (not a ``-c`` string), with ``-s -P -B``."""
    monkeypatch.setattr(runner, "_MODE", runner._Mode(False, sys.executable))
    launched: list[list[str]] = []
    real_popen = subprocess.Popen

    def spy(args: Any, *rest: Any, **kwargs: Any) -> Any:
        launched.append(list(args))
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    assert run_program("assert __name__ == '__candidate__'\n", FAST).passed
    assert launched == [[sys.executable, "-s", "-P", "-B", str(CHILD)]]


def test_private_installation_runs_a_readable_copy(
    monkeypatch: pytest.MonkeyPatch, contained: None
) -> None:
    """Where the sandbox uid could not read the package's file, it runs a world-readable copy."""
    assert runner._child_for(dedicated_uid=False) == str(CHILD)
    if sandbox.sandbox_mode() != "dedicated-uid":
        pytest.skip("the child does not run under a dedicated uid here")
    monkeypatch.setattr(runner, "_others_can_read", lambda path: False)
    monkeypatch.setattr(runner, "_STAGED", None)
    staged = Path(runner._child_for(dedicated_uid=True))
    try:
        assert staged != CHILD and staged.read_bytes() == CHILD.read_bytes()
        assert stat.S_IMODE(staged.stat().st_mode) == 0o644
        assert stat.S_IMODE(staged.parent.stat().st_mode) == 0o755
        mode = runner._Mode(True, runner._mode().python, str(staged))
        monkeypatch.setattr(runner, "_MODE", mode)
        assert run_program("import os\nassert os.getuid() != 0\n", FAST).passed
    finally:
        shutil.rmtree(staged.parent, ignore_errors=True)


def test_a_sandbox_that_cannot_run_is_a_sandbox_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_MODE", None)
    monkeypatch.setattr(runner, "_interpreters", lambda: [])
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    with pytest.raises(SandboxError, match="cannot run programs here") as caught:
        sandbox.sandbox_mode()
    assert isinstance(caught.value, DivtraceError) and runner._MODE is None
    monkeypatch.setattr(runner, "CHILD", Path("/nonexistent/child.py"))
    with pytest.raises(SandboxError, match=r"child program /nonexistent/child\.py is missing"):
        run_program("pass\n", FAST)


# --- forging a verdict (issue #15 item 1) -------------------------------------------------------

REF3 = {
    "prompt": "def add(a, b):\n    pass\n",
    "test": (
        "\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
        "    assert candidate(10, 5) == 15\n"
    ),
    "entry_point": "add",
}
_WALK = (
    "    import sys, os\n"
    "    f = sys._getframe(0)\n"
    "    while f is not None:\n"
    "        for scope in (f.f_locals, f.f_globals):\n"
    "            for key, val in list(scope.items()):\n"
    "                if key in ('report', 'report_ok') and callable(val):\n"
    "                    val('OK')\n"
    "                    os._exit(0)\n"
    "        f = f.f_back\n"
    "    return 0\n"
)
_GC = (
    "    import gc, os\n"
    "    for obj in gc.get_objects():\n"
    "        if callable(obj) and getattr(obj, '__name__', '') == 'report':\n"
    "            obj('OK')\n"
    "            os._exit(0)\n"
    "    return 0\n"
)
_FDS = (
    "    import os\n"
    "    for fd in range(3, 64):\n"
    "        for text in (b'OK\\n', b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x0e{\"value\": 5}'):\n"
    "            try:\n"
    "                os.write(fd, text)\n"
    "            except OSError:\n"
    "                pass\n"
    "    os._exit(0)\n"
)
FORGERIES = {
    "frame walking to the harness": f"def add(a, b):\n{_WALK}",
    "gc.get_objects() for the reporter": f"def add(a, b):\n{_GC}",
    "writing to every descriptor, then os._exit(0)": f"def add(a, b):\n{_FDS}",
    "always-equal object": (
        "class Yes:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\n\n"
        "def add(a, b):\n    return Yes()\n"
    ),
    "int subclass": (
        "class Int(int):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\n\ndef add(a, b):\n    return Int(0)\n"
    ),
    "str subclass": (
        "class Str(str):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = str.__hash__\n\ndef add(a, b):\n    return Str('')\n"
    ),
    "list subclass": (
        "class List(list):\n    def __eq__(self, other):\n        return True\n\n"
        "def add(a, b):\n    return List()\n"
    ),
    "a generator": "def add(a, b):\n    yield a + b\n",
    "a function": "def add(a, b):\n    return lambda *x: True\n",
    "exit(0) at load": "import os\nos._exit(0)\ndef add(a, b):\n    return a + b\n",
    "a non-plain value under a bare except": (
        "def add(a, b):\n    if (a, b) == (2, 3):\n        return object()\n    return a + b\n"
    ),
    "patching the encoder": (
        "import sys\nmain = sys.modules['__main__']\n"
        "main.encode = lambda value: 5\n\ndef add(a, b):\n    return 5\n"
    ),
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_verdicts_are_scored_incorrect(name: str, contained: None) -> None:
    answer = f"```python\n{FORGERIES[name]}```"
    judged = judge_humaneval([answer], [REF3], [{}], timeout_s=5)[0]
    assert not judged.correct, (name, judged)
    forgiving = {
        **REF3,
        "test": REF3["test"].replace(
            "    assert candidate(2, 3) == 5\n",
            "    try:\n        assert candidate(2, 3) == 5\n    except:\n        pass\n",
        ),
    }
    assert not judge_humaneval([answer], [forgiving], [{}], timeout_s=5)[0].correct, name
    mbpp_ref = {"test_list": ["assert add(2, 3) == 5", "assert add(-1, 1) == 0"]}
    assert not judge_mbpp([FORGERIES[name]], [mbpp_ref], [{}], timeout_s=5)[0].correct, name


def test_plain_values_and_exceptions_pass_through(contained: None) -> None:
    """Values of every plain type come through equal; candidate exceptions are raised as their
    builtin type in the tests (so ``except`` in a test works); a mutated argument is mutated."""
    candidate = (
        "def f(kind):\n"
        "    if kind == 'raise':\n        raise KeyError('x')\n"
        "    return {'n': None, 'b': True, 'i': 2**80, 'x': float('inf'), 'c': 1+2j,\n"
        "            's': 'é\\u2603', 'y': b'\\x00\\xff', 'l': [1, (2, 3)], 'set': {1, 2},\n"
        "            'f': frozenset({'a'}), 'neg': -0.0}\n"
        "def g(items):\n    items.append(9)\n    items.sort()\n"
    )
    tests = (
        "import math\n"
        "v = f('x')\n"
        "assert v == {'n': None, 'b': True, 'i': 2**80, 'x': math.inf, 'c': 1+2j, 's': 'é\\u2603',\n"
        "             'y': b'\\x00\\xff', 'l': [1, (2, 3)], 'set': {1, 2}, 'f': frozenset({'a'}),\n"
        "             'neg': -0.0}\n"
        "assert type(v['b']) is bool and type(v['l'][1]) is tuple\n"
        "assert math.copysign(1, v['neg']) == -1\n"
        "try:\n    f('raise')\nexcept KeyError:\n    pass\nelse:\n    raise AssertionError\n"
        "xs = [3, 1]\nassert g(xs) is None and xs == [1, 3, 9]\n"
        "try:\n    f()\nexcept TypeError:\n    pass\nelse:\n    raise AssertionError\n"
    )
    result = sandbox.run_tests([sandbox.TestRun(candidate, tests, ("f", "g"))], FAST)[0]
    assert result.passed, result


def test_run_calls_records_each_call(contained: None) -> None:
    program = (
        "def f(x):\n"
        "    if x == 0:\n        raise ZeroDivisionError\n"
        "    if x == 1:\n        return object()\n"
        "    if isinstance(x, list):\n        x.append(0)\n        return len(x)\n"
        "    return x * 2\n"
    )
    outcomes = sandbox.run_calls(program, "f", [(3,), (0,), (1,), ([5],), ("ab",)], FAST)
    assert [(o.value, o.raised, o.fault) for o in outcomes] == [
        (6, None, None),
        (None, "ZeroDivisionError", None),
        (None, None, "not plain data"),
        (2, None, None),
        ("abab", None, None),
    ]
    assert outcomes[3].mutated == {0: [5, 0]} and outcomes[0].ok and not outcomes[1].ok
    assert sandbox.run_calls("def f(:\n", "f", [(1,), (2,)], FAST)[1].fault == "syntax error"
    slow = sandbox.run_calls(
        "def f(x):\n    while x:\n        pass\n    return 1\n", "f", [(0,), (1,), (0,)], FAST
    )
    assert [(o.value, o.fault) for o in slow] == [(1, None), (None, "timeout"), (None, "timeout")]
    gone = sandbox.run_calls("import os\ndef f(x):\n    os._exit(3)\n", "f", [(1,)], FAST)
    assert gone[0].fault == "exited"
    with pytest.raises(child_codec.NotPlain):
        sandbox.run_calls(program, "f", [(object(),)], FAST)


def test_codec_refuses_what_is_not_plain() -> None:
    for value in (object(), True.__class__, range(3), [[[]]] * 2, {"a": [1, {2: (3,)}]}, 1e308):
        try:
            data = child_codec.encode(value)
        except child_codec.NotPlain:
            continue
        back = child_codec.decode(json.loads(json.dumps(data)))
        assert back == value and type(back) is type(value)
    for data in (["X", 1], ["S", ["L"]], ["D", 1], ["I", "1" * 6000], {"a": 1}, 1.5, ["B", "zz"]):
        with pytest.raises(child_codec.NotPlain):
            child_codec.decode(data)
    deep: Any = []
    for _ in range(child_codec.MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(child_codec.NotPlain):
        child_codec.encode(deep)


# --- containment (issue #15 item 2) -------------------------------------------------------------


def _listener() -> tuple[Any, int]:
    import socket

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    return server, server.getsockname()[1]


def _nothing_arrives(server: Any) -> bool:

    try:
        conn, _ = server.accept()
    except TimeoutError:
        return True
    with conn:
        conn.settimeout(0.5)
        try:
            return conn.recv(100) == b""
        except OSError:
            return True


def _send_program(port: int) -> str:
    return (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'stolen secrets')\ns.close()\n"
    )


def test_no_network_even_to_localhost(contained: None) -> None:
    server, port = _listener()
    with server:
        # as root: a network namespace (even without the guard); otherwise the guard
        limits = SandboxLimits(timeout_s=3.0, python_guard=not runner._mode().isolate)
        assert _failed_fast(_send_program(port), limits).status == "failed"
        assert _nothing_arrives(server)
        assert _failed_fast(_send_program(port)).status == "failed"
        assert _nothing_arrives(server)


def test_no_network_in_current_user_mode(monkeypatch: pytest.MonkeyPatch, contained: None) -> None:
    monkeypatch.setattr(runner, "_MODE", runner._Mode(False, sys.executable))
    server, port = _listener()
    with server:
        result = _failed_fast(_send_program(port))
        assert result.detail.startswith("exception: ModuleNotFoundError"), result
        raw = f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))\n"
        assert _failed_fast(raw).status == "failed"
        assert _nothing_arrives(server)


_DISK = "for i in range(100):\n    open(f'f{i}', 'wb').write(b'x' * 2**20)\n"


@pytest.mark.parametrize("forced", [False, True])
def test_working_directory_size_is_capped(
    forced: bool, monkeypatch: pytest.MonkeyPatch, contained: None
) -> None:
    if forced:  # no namespaces: the host watches the folder
        monkeypatch.setattr(runner, "_MODE", runner._Mode(False, sys.executable))
    limits = SandboxLimits(timeout_s=5.0, disk_bytes=8 * 2**20)
    result = _failed_fast(_DISK, limits)
    assert (result.status, result.kind) == ("disk", "disk limit"), result
    judged = judge_humaneval(
        [
            f"```python\ndef add(a, b):\n    {_DISK.replace(chr(10), chr(10) + '    ')}\n"
            "    return a + b\n```"
        ],
        [REF],
        [{}],
        limits=limits,
    )[0]
    assert not judged.correct and (judged.detail or "").startswith("disk limit"), judged


@pytest.fixture
def readable_secret() -> Any:
    """A world-readable workflow file (as a checkout's are) holding a token."""
    folder = Path(tempfile.mkdtemp(prefix="divtrace-test-workflow-", dir="/tmp"))
    folder.chmod(0o755)
    secret = folder / "Snakefile"
    secret.write_text("rule all:\n    input: 'WORKFLOW-SECRET-7f3a'\n")
    secret.chmod(0o644)
    yield secret
    shutil.rmtree(folder, ignore_errors=True)


def test_detail_never_carries_what_the_candidate_read(
    readable_secret: Path, contained: None
) -> None:
    secret, token = readable_secret, "WORKFLOW-SECRET-7f3a"
    check = run_program(f"assert {token!r} in open({str(secret)!r}).read()\n", FAST)
    assert check.passed, check  # the candidate can read it: only the detail must not carry it
    read = f"open({str(secret)!r}).read()"
    bodies = [
        f"print({read})\n    raise ValueError({read})",
        f"raise type({read}.split()[-1].strip(\"'\").replace('-', '_'), (Exception,), {{}})()",
        f"import sys\n    sys.stderr.write({read})\n    import os\n    os._exit(3)",
        f"assert False, {read}",
        f"return {read}",
    ]
    answers = [f"```python\ndef add(a, b):\n    {body}\n```" for body in bodies]
    judged = judge_humaneval(answers, [REF] * len(answers), [{}] * len(answers), timeout_s=5)
    for j in judged:
        assert not j.correct and j.detail is not None and token not in j.detail, j.detail
        assert token.replace("-", "_") not in j.detail and len(j.detail) <= 200
    programs = [f"def f():\n    {body}\nf()\n" for body in bodies]
    for result in sandbox.run_programs(programs, FAST):
        assert token not in result.detail and token.replace("-", "_") not in result.detail


_DRIVER = """
import sys, tempfile
from divtrace.quality.code import judge_mbpp
from divtrace.quality.sandbox import runner
tempfile.tempdir = sys.argv[1]
if sys.argv[2] == "current-user":
    runner._MODE = runner._Mode(False, sys.executable)
# The mode is chosen first: its probe program runs under the same folder and exits at once.
print(runner.sandbox_mode(), flush=True)
sleeper = "import time\\ndef f():\\n    time.sleep(60)\\n"
print(judge_mbpp([sleeper], [{"test_list": ["assert f()"]}], [{}], timeout_s=60), flush=True)
"""


def _cwd_under(base: str) -> list[int]:
    found = []
    for pid, *_ in processes.proc_entries():
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(base):
                found.append(pid)
        except OSError:
            continue
    return found


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("mode", ["detected", "current-user"])
def test_a_killed_run_leaves_no_candidate(how: str, mode: str, tmp_path: Path) -> None:
    base = tempfile.mkdtemp(prefix="divtrace-test-killed-")
    os.chmod(base, 0o755)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    driver = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, base, mode], env=env, stdout=subprocess.PIPE
    )
    try:
        assert driver.stdout is not None
        # Only once the mode's probe has come and gone is a process under `base` the candidate.
        assert driver.stdout.readline().strip(), "the driver ended before choosing a mode"
        deadline = time.monotonic() + 30
        while not _cwd_under(base) and time.monotonic() < deadline:
            assert driver.poll() is None
            time.sleep(0.05)
        assert _cwd_under(base), "the candidate never started"
        time.sleep(0.3)
        driver.send_signal(getattr(signal, how))
        driver.wait(timeout=20)
        deadline = time.monotonic() + 5
        while _cwd_under(base) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _cwd_under(base) == []  # died with its parent
        if how == "SIGTERM":
            assert os.listdir(base) == []  # the handler removed the folders
        else:
            assert all(n.startswith(runner.PREFIX) for n in os.listdir(base))
            sandbox.sweep_stale(base)
            assert os.listdir(base) == []  # the next run's sweep removed them
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        shutil.rmtree(base, ignore_errors=True)


_UNPRIVILEGED = """
import os, socket
from divtrace.quality import sandbox
from divtrace.quality.code import judge_humaneval
assert sandbox.sandbox_mode() == "current-user" and os.geteuid() != 0
REF = {"prompt": "def add(a, b):\\n    pass\\n", "entry_point": "add",
       "test": "def check(candidate):\\n    assert candidate(2, 3) == 5\\n"}
yes = "```python\\nclass Y:\\n    __eq__ = lambda s, o: True\\ndef add(a, b):\\n    return Y()\\n```"
judged = judge_humaneval(["    return a + b\\n", "    return a - b\\n", yes], [REF] * 3, [{}] * 3)
assert [j.correct for j in judged] == [True, False, False], judged
# Nothing of the host's or the harness's can be opened through /proc (both are not dumpable),
# not even while the candidate's program loads.
probe = '''import os
def probe():
    got = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                fds = os.listdir(f"/proc/{name}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    os.close(os.open(f"/proc/{name}/fd/{fd}", os.O_RDONLY))
                    got.append((int(name), fd))
                except OSError:
                    pass
    return got
EARLY = probe()
def early():
    return EARLY
'''
tests = "assert early() == [], early()\\nassert probe() == [], probe()\\n"
result = sandbox.run_tests([sandbox.TestRun(probe, tests, ("early", "probe"))])[0]
assert result.passed, result
server = socket.create_server(("127.0.0.1", 0))
send = f"import socket\\nsocket.create_connection(('127.0.0.1', {server.getsockname()[1]}))\\n"
assert sandbox.run_program(send).status == "failed"
server.settimeout(0.2)
try:
    server.accept()
    raise AssertionError("the candidate connected")
except TimeoutError:
    pass
disk = "for i in range(100):\\n    open(f'f{i}', 'wb').write(b'x' * 2**20)\\n"
assert sandbox.run_program(disk, sandbox.SandboxLimits(disk_bytes=8 * 2**20)).status == "disk"
print("unprivileged ok")
"""


def test_as_an_unprivileged_user(tmp_path: Path) -> None:
    """The current-user mode for real: divtrace run by ``nobody`` (as root, with runuser)."""
    runuser = shutil.which("runuser")
    version = f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"
    if os.geteuid() != 0 or runuser is None or not os.path.isfile(version):
        pytest.skip("needs root, runuser and a system interpreter of this version")
    src = REPO / "src"
    if not all(os.stat(p).st_mode & stat.S_IXOTH for p in (src, *src.parents)):
        pytest.skip(f"{src} is not reachable by other users")
    base = tempfile.mkdtemp(prefix="divtrace-test-nobody-")
    os.chmod(base, 0o777)
    try:
        done = subprocess.run(
            [
                runuser,
                "-u",
                "nobody",
                "--",
                "env",
                f"PYTHONPATH={src}",
                f"TMPDIR={base}",
                version,
                "-c",
                _UNPRIVILEGED,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd="/",
        )
        assert done.returncode == 0 and "unprivileged ok" in done.stdout, done.stderr[-3000:]
        assert os.listdir(base) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_sweep_removes_only_folders_of_dead_owners(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process (unless reused at once, then it is kept)
    dead = tmp_path / f"{runner.PREFIX}{gone.pid}-0-abc"
    alive = tmp_path / f"{runner.PREFIX}1-0-abc"
    mine = tmp_path / f"{runner.PREFIX}{os.getpid()}-0-abc"
    other = tmp_path / "divtrace-sandbox-notours"
    for folder in (dead, alive, mine, other):
        folder.mkdir()
        (folder / "file").write_text("x")
    assert sandbox.sweep_stale(str(tmp_path)) == [str(dead)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (alive, mine, other)
    )


def test_cleanup_on_signals_restores_and_leaves_ignored_signals_alone() -> None:
    before = {n: signal.getsignal(n) for n in (signal.SIGTERM, signal.SIGINT)}
    hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with sandbox.cleanup_on_signals():
            assert signal.getsignal(signal.SIGTERM) not in (before[signal.SIGTERM], None)
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        assert {n: signal.getsignal(n) for n in before} == before
    finally:
        signal.signal(signal.SIGHUP, hup)


def test_kill_active_can_interrupt_a_run_being_registered() -> None:
    """The signal handler's kill_active may run in the thread that holds the registry's lock
    (between starting a child and registering it): it must not deadlock."""
    assert runner._ACTIVE_LOCK.acquire(timeout=1)
    try:
        assert runner._ACTIVE_LOCK.acquire(timeout=1)  # reentrant
        runner._ACTIVE_LOCK.release()
        runner.kill_active()
    finally:
        runner._ACTIVE_LOCK.release()
