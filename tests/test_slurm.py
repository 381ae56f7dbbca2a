"""The cluster path for real: the tiny configuration (.test/config.yaml) run through
profiles/slurm, as ``make slurm-profile`` installs it, on a one-node SLURM cluster (``.ci/slurm.sh
up``; CI brings it up and sets DIVTRACE_REQUIRE_SLURM=1, which turns the skips into failures).

One workflow copy, four runs of the users' command line ``snakemake --cores all --profile slurm``
(module fixtures, in this order; five to six minutes in all on two cores):

1. everything, while one sampling job fails every way: its first attempt runs past its time limit
   (lowered to a minute with ``scontrol`` once it runs), the test cancels the two retries with
   ``scancel`` while they run;
2. that shard, named as the target: it alone reruns;
3. a plain run: only what depends on that shard;
4. a plain run: nothing to do.

A ``divtrace`` wrapper first on PATH makes that shard's sampling jobs sleep before they sample, so
that they are surely running when stopped; it also notes what each sampling job saw of its GPU.
The copy's ``profiles/default`` (the workflow profile Snakemake reads over the global one) only
makes the status checks more frequent and asks for a GPU per sampling job: on the CPU the tiny
configuration's rule asks for none.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from divtrace import names
from divtrace.config import load_config
from divtrace.plan import shard_minutes

from .conftest import REPO
from .test_workflow import TINY, TINY_RUNS, TINY_SHARDS, copy_workflow, job_counts

pytestmark = pytest.mark.slurm

PARTITIONS = {"cpu": "main", "gpu": "gpu"}  # the test cluster's (.ci/slurm.sh)
ACCOUNT = "divtrace"  # any name: the test cluster keeps no accounts, so none is checked
COMMAND = ["snakemake", "--cores", "all", "--profile", "slurm"]  # as the README says
RESULTS = "results"
FAILING = ("base", "on", "0001")  # model, CoT, shard of the job that fails every way
ATTEMPTS = 3  # the first and the profile's `retries: 2`
# A job SLURM stopped is reported as failed within this many seconds (the plugin's checks come
# every 3 s here after a job finished, 10 s later each time none did, at most 180 s apart).
REPORT_WITHIN_S = 90
RULE_PARTITION = {
    "sample_shard": "gpu",
    "score_quality": "cpu",
    "diversity": "gpu",
    "summarize": "cpu",
    "figures": "cpu",
}
LOCAL_RULES = {"fetch_model", "fetch_metric_model", "prepare_prompts", "all"}

WRAPPER = """#!/bin/sh
# tests/test_slurm.py: `divtrace sample` notes the job's GPU, and sleeps first when its shard
# has a marker file.
if [ "$1" = sample ]; then
    out=; prev=
    for arg in "$@"; do [ "$prev" = --out ] && out=$arg; prev=$arg; done
    echo "$SLURM_JOB_ID ${{CUDA_VISIBLE_DEVICES-none}}" >> "$DIVTRACE_TEST_DIR/gpus"
    marker="$DIVTRACE_TEST_DIR/slow/$(printf %s "$out" | tr / _)"
    if [ -e "$marker" ]; then
        echo "$SLURM_JOB_ID" >> "$marker.started"
        sleep 600
    fi
fi
exec {divtrace} "$@"
"""


def shard(model: str, cot: str, number: str) -> str:
    return names.SHARD_FILE.format(
        results=RESULTS, model=model, task="gsm8k", cot=cot, shard=number
    )


SHARDS = [shard(model, cot, number) for model, cot in TINY_RUNS for number in TINY_SHARDS]


# ---------------------------------------------------------------------------- the cluster
def _cluster_problem() -> str | None:
    """Why the cluster tests cannot run here, or None."""
    if shutil.which("sbatch") is None:
        return "no SLURM here (sbatch not found): .ci/slurm.sh up starts a one-node cluster"
    try:
        result = subprocess.run(
            ["sinfo", "--noheader", "--format=%P %a"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return "sinfo does not answer within 30 s: is slurmctld up? (.ci/slurm.sh up)"
    if result.returncode != 0:
        return f"no SLURM cluster answers (.ci/slurm.sh up): {result.stderr.strip()}"
    up = {line.split()[0].rstrip("*") for line in result.stdout.splitlines() if "up" in line}
    if not set(PARTITIONS.values()) <= up:
        return f"not the test cluster of .ci/slurm.sh: the partitions up are {sorted(up)}"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    problem = _cluster_problem()
    if problem and os.environ.get("DIVTRACE_REQUIRE_SLURM"):  # CI: these tests must run
        pytest.fail(problem)
    if problem:
        pytest.skip(problem)


def slurm_jobs(workdir: Path) -> dict[str, dict[str, str]]:
    """``scontrol show job`` of the jobs submitted from ``workdir``, finished ones included
    (SLURM keeps them for MinJobAge seconds), by job id."""
    result = subprocess.run(
        ["scontrol", "--oneliner", "show", "job"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    jobs = {}
    for line in result.stdout.splitlines():
        fields = dict(re.findall(r"(?:^|\s)([\w:/]+)=(\S*)", line))
        if fields.get("WorkDir") == str(workdir) and "JobId" in fields:
            jobs[fields["JobId"]] = fields
    return jobs


def rule_of(job: dict[str, str]) -> str:
    """The rule of a job, from the comment the plugin gives it (rule_<name>_wildcards_...)."""
    match = re.match(r"rule_(\w+?)(?:_wildcards_|$)", job.get("Comment", ""))
    assert match, job
    return match.group(1)


def slurm_time(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    jobs: dict[str, dict[str, str]]  # every job seen from this workdir so far
    submitted: list[str] = field(default_factory=list)  # SLURM ids of this run, in order

    def __post_init__(self) -> None:
        self.submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", self.output)

    def submitted_by_rule(self) -> Counter[str]:
        return Counter(rule_of(self.jobs[job]) for job in self.submitted)

    def through_sbatch(self) -> set[str]:
        """The rules of the jobs that finished after going through sbatch; every other job
        that finished is one of the submit host's rules."""
        finished = re.findall(r"Finished jobid: (\d+) \(Rule: (\w+)\)", self.output)
        sbatch = set(re.findall(r"Job (\d+) has been submitted with SLURM jobid", self.output))
        here = {rule for job, rule in finished if job not in sbatch}
        assert here <= LOCAL_RULES, here
        return {rule for job, rule in finished if job in sbatch}

    def failures(self) -> dict[str, str]:
        """SLURM id -> state, of the jobs Snakemake reported as failed."""
        return dict(re.findall(r"SLURM-job '(\d+)' failed, SLURM status is: '(\w+)'", self.output))


class Workflow:
    """A copy of the workflow whose default config is the tiny one, a private config home for
    the profile, and the runs made in it."""

    def __init__(self, root: Path) -> None:
        self.dir = copy_workflow(root / "workflow")
        shutil.copy2(REPO / TINY, self.dir / "config" / "config.yaml")
        self.test_dir = root / "test"
        (self.test_dir / "slow").mkdir(parents=True)
        (self.test_dir / "gpus").touch()
        self.config_home = root / "config-home"
        self.bin = root / "bin"
        self.bin.mkdir()
        divtrace = Path(sys.executable).parent / "divtrace"
        assert divtrace.is_file(), f"no divtrace entry point beside {sys.executable}"
        wrapper = self.bin / "divtrace"
        wrapper.write_text(WRAPPER.format(divtrace=divtrace))
        wrapper.chmod(0o755)
        self.jobs: dict[str, dict[str, str]] = {}
        self.runs: list[Run] = []

    def env(self) -> dict[str, str]:
        """What Snakemake and, through sbatch --export=ALL, its jobs run with: the wrapper,
        then the venv's entry points; the copy's library; the private config home."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}
        path = [str(self.bin), str(Path(sys.executable).parent), env.get("PATH", "")]
        env["PATH"] = os.pathsep.join(path)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in [str(self.dir / "src"), env.get("PYTHONPATH", "")] if p
        )
        env["XDG_CONFIG_HOME"] = str(self.config_home)
        env["DIVTRACE_TEST_DIR"] = str(self.test_dir)
        env["MAKEFLAGS"] = ""
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        return env

    def slow(self, path: str) -> Path:
        marker = self.test_dir / "slow" / path.replace("/", "_")
        marker.touch()
        return marker

    def started(self, marker: Path) -> list[str]:
        """SLURM ids of the jobs that began to sleep on ``marker``, in order."""
        started = marker.with_name(marker.name + ".started")
        return started.read_text().split() if started.exists() else []

    def run(self, *args: str, timeout: float, watch: Callable[[str], None] | None = None) -> Run:
        """The users' command line (plus ``args``) under a hard timeout; ``watch`` gets the
        output so far every second while it runs."""
        log = self.test_dir / f"run-{len(self.runs) + 1}.log"
        start = time.monotonic()
        with open(log, "w") as out:
            process = subprocess.Popen(
                [*COMMAND, *args],
                cwd=self.dir,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                while process.poll() is None:
                    if time.monotonic() - start > timeout:
                        # Ctrl-C: Snakemake cancels its jobs (on SIGTERM it would wait for them)
                        process.send_signal(signal.SIGINT)
                        process.wait(timeout=120)
                        raise AssertionError(
                            f"snakemake {' '.join(args)} still running after {timeout} s:\n"
                            + log.read_text()[-5000:]
                        )
                    self.jobs.update(slurm_jobs(self.dir))
                    if watch:
                        watch(log.read_text())
                    time.sleep(1)
            finally:
                if process.poll() is None:
                    process.kill()
        self.jobs.update(slurm_jobs(self.dir))
        run = Run(process.returncode, log.read_text(), time.monotonic() - start, self.jobs)
        self.runs.append(run)
        unknown = [job for job in run.submitted if job not in self.jobs]
        assert not unknown, f"submitted, but SLURM does not know them: {unknown}"
        return run

    def gpus(self) -> dict[str, str]:
        """SLURM id -> CUDA_VISIBLE_DEVICES of each sampling job, as the wrapper saw it."""
        lines = (self.test_dir / "gpus").read_text().splitlines()
        return dict(line.split() for line in lines)

    def mtimes(self) -> dict[str, int]:
        """mtime of each shard on disk."""
        files = {path: self.dir / path for path in SHARDS}
        return {path: file.stat().st_mtime_ns for path, file in files.items() if file.exists()}

    def cancel_leftovers(self) -> None:
        jobs = slurm_jobs(self.dir).items()
        live = [j for j, job in jobs if job["JobState"] in ("PENDING", "RUNNING")]
        if live:
            subprocess.run(["scancel", *live], check=False, timeout=60)


# ---------------------------------------------------------------------------- the runs
@pytest.fixture(scope="module")
def workflow(cluster, tmp_path_factory) -> Iterator[Workflow]:
    flow = Workflow(tmp_path_factory.mktemp("slurm"))
    yield flow
    flow.cancel_leftovers()


def make_profile(workflow: Workflow, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "slurm-profile", *args],
        cwd=REPO,
        env=workflow.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def installed_profile(workflow) -> Path:
    """`make slurm-profile` with the test cluster's account and partitions, into the private
    config home; the copy's workflow profile over it."""
    cluster = [f"ACCOUNT={ACCOUNT}", f"PARTITION={PARTITIONS['cpu']}"]
    result = make_profile(workflow, *cluster, f"GPU_PARTITION={PARTITIONS['gpu']}")
    assert result.returncode == 0, result.stdout + result.stderr
    profile = workflow.config_home / "snakemake" / "slurm" / "config.yaml"
    settings = yaml.safe_load(profile.read_text())
    # A workflow profile replaces whole top-level keys: set-resources is the installed one's,
    # plus the GPU a sampling job asks for on a GPU cluster.
    resources = copy.deepcopy(settings["set-resources"])
    resources["sample_shard"]["gpu"] = 1
    overrides = {
        # The plugin checks after this many seconds (its default: 40), then 10 s later each
        # time nothing finished, and again after this many once something did.
        "slurm-init-seconds-before-status-checks": 3,
        "seconds-between-status-checks": 3,
        "set-resources": resources,
    }
    (workflow.dir / "profiles" / "default").mkdir(parents=True)
    (workflow.dir / "profiles" / "default" / "config.yaml").write_text(yaml.safe_dump(overrides))
    return profile


@dataclass
class FirstRun:
    run: Run
    attempts: list[str]  # SLURM ids of the failing shard's jobs
    limits: dict[str, str]  # their time limits as submitted
    stopped: dict[str, float]  # when the test cancelled them (time.time())
    reported: dict[str, float]  # when Snakemake reported a job failed


@pytest.fixture(scope="module")
def first_run(workflow, installed_profile) -> FirstRun:
    """Everything, while the failing shard's jobs sleep: the first runs past its time limit
    (lowered to a minute once it runs), the test cancels the next two while they run."""
    marker = workflow.slow(shard(*FAILING))
    first = FirstRun(Run(0, "", 0, {}), [], {}, {}, {})

    def watch(output: str) -> None:
        for job in workflow.started(marker):
            if job in first.attempts:
                continue
            first.attempts.append(job)
            first.limits[job] = slurm_jobs(workflow.dir)[job]["TimeLimit"]
            if len(first.attempts) == 1:
                update = ["scontrol", "update", f"jobid={job}", "TimeLimit=1"]  # a minute
                subprocess.run(update, check=True, timeout=60)
            else:
                subprocess.run(["scancel", job], check=True, timeout=60)
                first.stopped[job] = time.time()
        for job in re.findall(r"SLURM-job '(\d+)' failed", output):
            first.reported.setdefault(job, time.time())

    first.run = workflow.run(timeout=900, watch=watch)
    marker.unlink()
    return first


@pytest.fixture(scope="module")
def rerun_by_name(workflow, first_run) -> tuple[Run, dict[str, int]]:
    """The failed shard named as the target; the shards' mtimes before."""
    before = workflow.mtimes()
    return workflow.run(shard(*FAILING), timeout=300), before


@pytest.fixture(scope="module")
def plain_run(workflow, rerun_by_name) -> tuple[Run, dict[str, int]]:
    before = workflow.mtimes()
    return workflow.run(timeout=400), before


@pytest.fixture(scope="module")
def last_run(workflow, plain_run) -> Run:
    return workflow.run(timeout=120)


# ---------------------------------------------------------------------------- the tests
def test_the_profile_installs_with_the_clusters_names(workflow, installed_profile):
    """`make slurm-profile` fills in the account and partitions and changes nothing else; it
    keeps a profile that is already there."""
    template = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    expected = template.replace("slurm_account: YOUR_ACCOUNT", f"slurm_account: {ACCOUNT}")
    expected = expected.replace("slurm_partition: CPU_PARTITION", "slurm_partition: main")
    expected = expected.replace("slurm_partition: GPU_PARTITION", "slurm_partition: gpu")
    installed = installed_profile.read_text()
    header, rest = installed.split("\n", 1)
    assert header.startswith("# Installed by `make slurm-profile` from ")
    assert rest == expected
    assert yaml.safe_load(installed)["slurm-status-command"] == "squeue"
    again = make_profile(workflow, "PARTITION=a", "GPU_PARTITION=b")
    assert again.returncode != 0 and "FORCE=1" in again.stderr
    assert installed_profile.read_text() == installed


def test_every_job_goes_through_sbatch_to_its_partition(workflow, first_run):
    run = first_run.run
    assert "Using profiles slurm and workflow specific profile profiles/default" in run.output
    assert run.through_sbatch() == {"sample_shard", "score_quality", "diversity"}
    local = set(re.findall(r"^localrule (\w+):", run.output, flags=re.MULTILINE))
    assert local == LOCAL_RULES - {"all"}  # `all` did not run: the run failed
    # 6 shards and 2 more attempts of the failing one; scores and diversity of the two runs whose
    # shards all came through; nothing of the failing shard's run, no tables.
    assert run.submitted_by_rule() == {
        "sample_shard": 6 + ATTEMPTS - 1,
        "score_quality": 2,
        "diversity": 2,
    }
    for job in run.submitted:
        info = run.jobs[job]
        assert info["Partition"] == PARTITIONS[RULE_PARTITION[rule_of(info)]], info
        assert info["Account"] == ACCOUNT and info["WorkDir"] == str(workflow.dir)
    # Each job's SLURM log is under .snakemake/slurm_logs; the plugin keeps the failed ones'.
    logs = sorted((workflow.dir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {log.stem for log in logs} == set(first_run.attempts)
    assert {log.parent.parent.name for log in logs} == {"rule_sample_shard"}


def test_the_sampling_jobs_ask_for_a_gpu_and_get_one(workflow, first_run):
    run = first_run.run
    seen = workflow.gpus()
    sampling = [job for job in run.submitted if rule_of(run.jobs[job]) == "sample_shard"]
    for job in sampling:
        assert run.jobs[job]["TresPerJob"] == "gres:gpu:1", run.jobs[job]  # sbatch --gpus=1
        assert run.jobs[job]["Partition"] == "gpu"
        assert seen[job] in {"0", "1", "2", "3"}, (job, seen)  # one of the node's four GPUs
    others = [job for job in run.submitted if job not in sampling]
    assert others and not any(run.jobs[job].get("TresPerJob") for job in others)


def test_a_job_past_its_time_limit_is_reported_and_retried_with_more_time(workflow, first_run):
    run, attempts = first_run.run, first_run.attempts
    comment = run.jobs[attempts[0]]["Comment"]
    assert [job for job in run.submitted if run.jobs[job]["Comment"] == comment] == attempts
    timed_out = attempts[0]
    assert run.jobs[timed_out]["JobState"] == "TIMEOUT"
    assert run.failures()[timed_out] == "TIMEOUT"
    ended = datetime.fromisoformat(run.jobs[timed_out]["EndTime"]).timestamp()
    assert first_run.reported[timed_out] - ended < REPORT_WITHIN_S
    # Each attempt asked for the rule's runtime of that attempt (divtrace.plan.shard_minutes):
    # 30, 60, 120 minutes.
    config = load_config(REPO / TINY)
    model, cot, _ = FAILING
    minutes = [shard_minutes(config, model, "gsm8k", cot, n) for n in range(1, ATTEMPTS + 1)]
    assert minutes == sorted(set(minutes))
    assert [first_run.limits[job] for job in attempts] == [slurm_time(m) for m in minutes]
    assert "Trying to restart job" in run.output


def test_a_cancelled_sampling_job_is_reported_failed_at_once(workflow, first_run):
    run, cancelled = first_run.run, first_run.attempts[1:]
    assert len(cancelled) == ATTEMPTS - 1 and set(first_run.stopped) == set(cancelled)
    for job in cancelled:
        assert run.jobs[job]["JobState"] == "CANCELLED"
        assert run.failures()[job] == "CANCELLED"
        assert first_run.reported[job] - first_run.stopped[job] < REPORT_WITHIN_S
    assert run.returncode != 0
    # The shard is absent (written atomically, never begun), its sibling and the other runs are
    # there, and nothing that needs it ran.
    failing = workflow.dir / shard(*FAILING)
    assert not failing.exists() and not list(failing.parent.glob(f".{failing.name}*"))
    assert set(workflow.mtimes()) == set(SHARDS) - {shard(*FAILING)}
    run_files = dict(results=RESULTS, model=FAILING[0], task="gsm8k", cot=FAILING[1])
    assert not (workflow.dir / names.QUALITY_FILE.format(**run_files)).exists()
    assert not (workflow.dir / names.DIVERSITY_FILE.format(**run_files)).exists()
    assert not (workflow.dir / RESULTS / "tables").exists()


def test_naming_the_failed_shard_reruns_only_it(workflow, rerun_by_name):
    run, before = rerun_by_name
    assert run.returncode == 0, run.output[-5000:]
    assert job_counts(run.output) == {"sample_shard": 1}
    assert run.submitted_by_rule() == {"sample_shard": 1}
    assert run.through_sbatch() == {"sample_shard"}
    after = workflow.mtimes()
    assert set(after) == set(SHARDS)
    assert {path: after[path] for path in before} == before


def test_the_next_plain_run_does_only_what_depends_on_it(workflow, plain_run):
    run, before = plain_run
    assert run.returncode == 0, run.output[-5000:]
    jobs = {"score_quality": 1, "diversity": 1, "summarize": 1, "figures": 1}
    assert job_counts(run.output) == {**jobs, "all": 1}
    assert run.submitted_by_rule() == jobs
    assert run.through_sbatch() == set(jobs)
    for job in run.submitted:
        assert run.jobs[job]["Partition"] == PARTITIONS[RULE_PARTITION[rule_of(run.jobs[job])]]
    assert workflow.mtimes() == before
    for name in names.TABLE_NAMES:
        table = names.TABLE_FILE.format(results=RESULTS, name=name, ext="parquet")
        assert (workflow.dir / table).stat().st_size > 0
    for name in names.FIGURE_NAMES:
        figure = names.FIGURE_FILE.format(results=RESULTS, name=name, ext="png")
        assert (workflow.dir / figure).stat().st_size > 1000


def test_the_second_plain_run_has_nothing_to_do(workflow, last_run):
    assert last_run.returncode == 0, last_run.output[-5000:]
    assert "Nothing to be done" in last_run.output
    assert last_run.submitted == []
    print("\nseconds per cluster run:", [round(run.seconds) for run in workflow.runs])
