"""The judge stage in the workflow: its config block, the plan's count and cost of judge calls,
the judge jobs of the DAG (dry runs) and, once ``divtrace judge`` exists, the tiny workflow with
the judge on."""

from __future__ import annotations

import copy
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from divtrace.config import Study, load_config, validate_config
from divtrace.errors import ConfigError
from divtrace.plan import format_plan, plan

from .conftest import REPO
from .test_workflow import TINY, copy_workflow, job_counts, snakemake

#: The tiny configuration plus a judged task (writingprompts: the base model's answers are the
#: opponent) and a reference-judged one (tldr), judge on, against a server nobody listens on.
JUDGE_OVERLAY = {
    "tasks": {
        "writingprompts": {
            "source": "resources/tasks/demo/writingprompts.jsonl",
            "n_prompts": 2,
            "max_tokens": 16,
        },
        "tldr": {"source": "resources/tasks/demo/tldr.jsonl", "n_prompts": 2, "max_tokens": 16},
    },
    "judge": {
        "enabled": True,
        "backend": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "prices": {"gpt-4.1-mini": {"input_per_mtok": 0.4, "output_per_mtok": 1.6}},
    },
}


def demo_with_judge(demo_config: dict, **judge: object) -> dict:
    config = copy.deepcopy(demo_config)
    config["judge"] = {"enabled": True, **judge}
    return validate_config(config)


# ---------------------------------------------------------------------------- config
def test_the_judge_is_off_by_default_with_its_defaults_filled_in(demo_config):
    config = validate_config(demo_config)
    judge = config["judge"]
    assert judge["enabled"] is False
    assert (judge["backend"], judge["api_key_env"], judge["samples_per_prompt"]) == (
        "openai",
        "OPENAI_API_KEY",
        1,
    )
    assert judge["temperature"] == 0 and judge["templates"] == {} and judge["prices"] == {}
    assert "tasks" not in judge  # default: every judged task of the run
    assert Study(config).judge_runs() == []


def test_the_study_config_names_the_papers_judge_and_its_price():
    config = load_config(REPO / "config/olmo3.yaml")
    judge = config["judge"]
    assert judge["enabled"] is False  # switched on by an overlay: no API key needed to sample
    assert (judge["backend"], judge["judge_model"], judge["temperature"]) == (
        "openai-batch",
        "gpt-4.1-mini",
        0,
    )
    assert judge["prices"]["gpt-4.1-mini"]["batch_discount"] == 0.5
    batch = Study(load_config([REPO / "config/olmo3.yaml", REPO / "config/olmo3-judge-batch.yaml"]))
    assert batch.judge_tasks() == [
        "tldr",
        "cnn_dailymail",
        "xsum",
        "alpaca",
        "writingprompts",
        "prism",
        "wildbench",
    ]
    local = load_config([REPO / "config/olmo3.yaml", REPO / "config/olmo3-judge-local.yaml"])
    assert local["judge"]["backend"] == "vllm" and local["judge"]["enabled"] is True


def test_judged_cells_leave_out_the_base_where_it_is_the_opponent(demo_config):
    study = Study(demo_with_judge(demo_config))
    assert study.judge_tasks() == ["writingprompts"]  # gsm8k and ifeval have no judge
    assert study.judge_opponent("writingprompts") == "base"
    runs = study.judge_runs()
    assert len(runs) == 10  # 11 runs of the task, less the base's own
    assert ("think-sft", "writingprompts", "off") in runs
    assert not any(model == "base" for model, _t, _c in runs)


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ({"backend": "anthropic"}, "judge.backend"),
        ({"tasks": ["nowhere"]}, "judge.tasks: 'nowhere' is not a task"),
        ({"tasks": ["gsm8k"]}, "task 'gsm8k' (family 'gsm8k') has no judge protocol"),
        ({"samples_per_prompt": 5}, "judge.samples_per_prompt: 5 is more than the 4"),
        ({"api_key_env": "my key"}, "judge.api_key_env"),
        ({"templates": {"elo": "x.txt"}}, "judge.templates"),
        ({"prices": {"m": {"input_per_mtok": 1}}}, "judge.prices.m"),
        ({"prices": {"m": {"input_per_mtok": 1, "output_per_mtok": 2, "batch_discount": 2}}}, "m"),
    ],
)
def test_a_bad_judge_block_is_refused_naming_the_key(demo_config, judge, message):
    config = copy.deepcopy(demo_config)
    config["judge"] = judge
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_config(config)


# ---------------------------------------------------------------------------- plan
def test_the_plan_counts_judge_calls_tokens_and_cost(demo_config):
    prices = {"gpt-4.1-mini": {"input_per_mtok": 0.4, "output_per_mtok": 1.6}}
    online = plan(demo_with_judge(demo_config, prices=prices))
    judge = online["judge"]
    assert online["jobs"]["judge"] == 10
    # 10 cells x 8 prompts x 1 sample x 2 orders; per call the instructions (400), the item
    # (50), the answer and the base's answer (each its mean length, capped at max_tokens 96).
    (row,) = judge["tasks"]
    assert (row["task"], row["protocol"], row["cells"], row["calls"]) == (
        "writingprompts",
        "base_pairwise",
        10,
        160,
    )
    assert row["prompt_tokens"] == 160 * (400 + 50 + 96 + 96)
    assert row["completion_tokens"] == 160 * 500
    cost = (160 * 642 * 0.4 + 160 * 500 * 1.6) / 1e6
    assert judge["totals"]["cost_usd"] == pytest.approx(cost)
    batch = plan(demo_with_judge(demo_config, prices=prices, backend="openai-batch"))["judge"]
    assert batch["totals"]["cost_usd"] == pytest.approx(cost * 0.5)  # the default discount
    two = plan(demo_with_judge(demo_config, prices=prices, samples_per_prompt=2))["judge"]
    assert two["totals"]["calls"] == 320
    unpriced = plan(demo_with_judge(demo_config, backend="vllm"))
    assert unpriced["judge"]["totals"]["cost_usd"] is None
    assert unpriced["judge"]["totals"]["gpu_hours"] > 0
    text = format_plan(online)
    assert "LLM judge" in text and "writingprompts" in text and f"${cost:,.2f}" in text
    off = plan(validate_config(copy.deepcopy(demo_config)))
    assert off["judge"] is None and "judge" not in off["jobs"]
    assert "LLM judge" not in format_plan(off)


def test_the_plan_prices_the_reference_protocols_by_their_references(demo_config):
    config = copy.deepcopy(demo_config)
    config["tasks"] = {
        "tldr": {"source": "resources/tasks/demo/tldr.jsonl", "n_prompts": 8, "max_tokens": 96}
    }
    result = plan(demo_with_judge(config))["judge"]
    (row,) = result["tasks"]
    # every one of the 11 runs (the base too: its opponent is the reference), one order each
    assert (row["cells"], row["calls"]) == (11, 88)
    # chat answers cap at 96; the base's completions too (1024 > 96): all answers are 96
    assert row["prompt_tokens"] == 88 * (250 + 400 + 96 + 40)
    assert row["completion_tokens"] == 88 * 40


# ---------------------------------------------------------------------------- the DAG
@pytest.fixture(scope="module")
def judged_workflow(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("judged"))
    (workdir / "judge.yaml").write_text(yaml.safe_dump(JUDGE_OVERLAY))
    return workdir


def _jobs(stdout: str) -> dict[str, str]:
    """Output of each judge job → its shell command, from a dry run with -p."""
    commands = {}
    for line in stdout.splitlines():
        if line.startswith("Shell command: divtrace judge"):
            argv = shlex.split(line.removeprefix("Shell command: ").split(" > ")[0])
            commands[argv[argv.index("--out") + 1]] = line
    return commands


def test_the_dry_run_lists_a_judge_job_per_judged_run(judged_workflow):
    result = snakemake(judged_workflow, "-n", "-p", "--configfile", TINY, "judge.yaml")
    counts = job_counts(result.stdout)
    # writingprompts: think-sft on and off (the base is the opponent); tldr: the three runs
    assert counts["judge"] == 5
    config = load_config([judged_workflow / TINY, judged_workflow / "judge.yaml"])
    assert plan(config)["jobs"] == counts
    jobs = _jobs(result.stdout)
    assert set(jobs) == {
        "results/judgements/think-sft/writingprompts/cot-on.parquet",
        "results/judgements/think-sft/writingprompts/cot-off.parquet",
        "results/judgements/base/tldr/cot-on.parquet",
        "results/judgements/think-sft/tldr/cot-on.parquet",
        "results/judgements/think-sft/tldr/cot-off.parquet",
    }
    off = shlex.split(jobs["results/judgements/think-sft/writingprompts/cot-off.parquet"])
    flag = off.index("--generations")
    assert off[flag + 1 : flag + 3] == [
        "results/generations/think-sft/writingprompts/cot-off/shard-0000.parquet",
        "results/generations/think-sft/writingprompts/cot-off/shard-0001.parquet",
    ]
    # CoT off meets the base's answers too: the base has CoT on only
    opponent = off.index("--opponent-generations")
    assert off[opponent + 1 : opponent + 3] == [
        "results/generations/base/writingprompts/cot-on/shard-0000.parquet",
        "results/generations/base/writingprompts/cot-on/shard-0001.parquet",
    ]
    for name, value in {
        "--task": "writingprompts",
        "--prompts": "results/prompts/writingprompts.parquet",
        "--backend": "openai",
        "--base-url": "http://127.0.0.1:9/v1",
        "--judge-model": "gpt-4.1-mini",
        "--cache-dir": "results/judge_cache",
    }.items():
        assert off[off.index(name) + 1] == value, name
    tldr = shlex.split(jobs["results/judgements/base/tldr/cot-on.parquet"])
    assert "--opponent-generations" not in tldr  # the reference is in the prompts file
    assert "resources: tmpdir=/tmp, judge_api=1, gpu=0" in result.stdout
    summary = next(
        line for line in result.stdout.splitlines() if "Shell command: divtrace summarize" in line
    )
    argv = shlex.split(summary.split(" > ")[0].removeprefix("Shell command: "))
    start = argv.index("--judgements") + 1
    assert set(argv[start : start + 5]) == set(jobs) and argv[start + 5].startswith("--")
    runs = json.loads(argv[argv.index("--judge-runs") + 1])
    assert len(runs) == 5 and ["think-sft", "writingprompts", "off"] in runs
    prices = json.loads(argv[argv.index("--judge-prices") + 1])
    assert prices == {
        "gpt-4.1-mini": {"input_per_mtok": 0.4, "output_per_mtok": 1.6, "batch_discount": 0.5}
    }


def test_the_local_judge_takes_a_gpu_and_no_api_slot(judged_workflow):
    overlay = copy.deepcopy(JUDGE_OVERLAY)
    overlay["judge"]["backend"] = "vllm"
    (judged_workflow / "vllm.yaml").write_text(yaml.safe_dump(overlay))
    result = snakemake(judged_workflow, "-n", "-p", "--configfile", TINY, "vllm.yaml")
    assert result.stdout.count("resources: tmpdir=/tmp, judge_api=0, gpu=1") == 5
    assert result.stdout.count("--backend vllm") == 5


def test_without_the_judge_the_dag_has_no_judge_job(judged_workflow):
    result = snakemake(judged_workflow, "-n", "-p", "--configfile", TINY)
    assert "judge" not in job_counts(result.stdout)
    assert "--judge-runs" not in result.stdout


# ---------------------------------------------------------------------------- end to end
@pytest.mark.workflow
def test_the_tiny_workflow_judges_summarises_and_draws_with_a_judge(tmp_path):
    """The tiny configuration with the judge on, end to end, the real `divtrace judge` asking a
    chat-completions stand-in on 127.0.0.1 (tests/judge_stub.py): the judge jobs run, the judge
    table has a row per judged cell, the figure is drawn, the key is in no file, a second run has
    nothing to do and a forced rerun of the judge jobs asks the server nothing (the cache)."""
    import polars as pl

    from .judge_stub import JudgeStub
    from .test_workflow import _env

    secret = "sk-judge-workflow-secret"
    workdir = copy_workflow(tmp_path / "wf")
    overlay = copy.deepcopy(JUDGE_OVERLAY)
    del overlay["tasks"]["tldr"]  # one judged task keeps the run short
    env = _env()
    env["OPENAI_API_KEY"] = secret
    stub = JudgeStub()
    overlay["judge"]["base_url"] = stub.url
    (workdir / "judge.yaml").write_text(yaml.safe_dump(overlay))

    SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*SNAKEMAKE, "--configfile", TINY, "judge.yaml", *args],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    with stub:
        first = run()
        assert job_counts(first.stderr)["judge"] == 2
        # two runs (CoT on, off) x two prompts x two orders, each distinct question asked once
        # (a CoT-off answer equal to the CoT-on one is the same question: answered by the cache)
        asked = [r["body"] for r in stub.state.requests if r["path"].endswith("/completions")]
        chat = len(asked)
        assert 0 < chat <= 8 and len(set(asked)) == chat
        judge = pl.read_parquet(workdir / "results/tables/judge.parquet")
        assert sorted(zip(judge["model"], judge["cot"], strict=True)) == [
            ("think-sft", "off"),
            ("think-sft", "on"),
        ]
        assert set(judge["protocol"]) == {"base_pairwise"}
        assert set(judge["opponent"]) == {"base"}
        assert judge["n_judged"].to_list() == [4, 4] and judge["n_failed"].to_list() == [0, 0]
        assert judge["n_prompts"].to_list() == [2, 2]
        assert judge["value"].is_between(0, 1).all()
        assert judge["position_consistency"].is_between(0, 1).all()
        assert (judge["prompt_tokens"] > 0).all() and (judge["cost_usd"] > 0).all()
        assert (workdir / "results/figures/quality_by_stage.png").stat().st_size > 1000
        again = run("-n")
        assert "Nothing to be done" in again.stdout + again.stderr
        run("--forcerun", "judge")
        assert stub.state.count("/v1/chat/completions") == chat  # every answer cached
    # the key went to the server as the bearer token, and into no file
    assert {r["authorization"] for r in stub.state.requests} == {f"Bearer {secret}"}
    leaked = [p for p in workdir.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaked
