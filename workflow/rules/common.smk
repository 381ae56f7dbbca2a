"""Config → models, tasks, CoT modes and shards; input functions. No rules here.

Parsing stays cheap: only pure-Python modules of divtrace are imported (config, plan, and names,
which spells every table, figure and file path once for the workflow and the library alike).
"""

import json
import re
import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from divtrace.config import Study, read_yaml, validate_config  # noqa: E402
from divtrace.names import (  # noqa: E402
    BEHAVIOUR_FAMILIES,
    BEHAVIOUR_METRICS,
    CLASS_METRICS,
    DIVERSITY_FILE,
    FIGURE_FILE,
    FIGURE_NAMES,
    JUDGEMENT_FILE,
    METRIC_MODEL_MANIFEST,
    MODEL_MANIFEST,
    PROMPTS_FILE,
    QUALITY_FILE,
    REPORT_TABLES,
    SHARD_FILE,
    TABLE_FILE,
    TABLE_NAMES,
)
from divtrace.plan import (  # noqa: E402
    metrics_gpus,
    model_minutes,
    sampling_gpus,
    score_threads,
    shard_minutes,
)
from divtrace.provenance import (
    prompt_digest,
    prompt_spec,
    recorded_digest,
)  # noqa: E402

# Snakemake reads the config files with a YAML loader that keeps the last of a duplicated key;
# read each again with divtrace's strict one, which refuses it (naming the key and both lines).
for _configfile in workflow.configfiles:
    read_yaml(_configfile)

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
# Our validator first: it fills nested defaults and names the offending key; then Snakemake's.
validate_config(config, SCHEMA)
validate(config, schema="../schemas/config.schema.yaml")

STUDY = Study(config)
RESULTS = STUDY.results
SAMPLING = config["sampling"]
METRICS = config["metrics"]
METRIC_MODELS = STUDY.metric_models()  # role (sbert, nli) → (model, revision)


def _alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    model=_alternatives(STUDY.models),
    task=_alternatives(STUDY.tasks),
    cot="on|off",
    shard=r"\d{4}",
    role="sbert|nli|code",


# ---------------------------------------------------------------- paths
# The templates of divtrace.names, filled in (a wildcard passed as "{model}" stays a wildcard).
def model_manifest(model):
    return MODEL_MANIFEST.format(model=model)


def metric_model_manifest(role):
    return METRIC_MODEL_MANIFEST.format(role=role)


def metric_model_manifests():
    """Manifests of the models the configured metrics load (none for EAD alone)."""
    return [metric_model_manifest(role) for role in METRIC_MODELS]


def prompts_file(task):
    return PROMPTS_FILE.format(results=RESULTS, task=task)


def shard_file(model, task, cot, shard):
    return SHARD_FILE.format(
        results=RESULTS, model=model, task=task, cot=cot, shard=shard
    )


def quality_file(model, task, cot):
    return QUALITY_FILE.format(results=RESULTS, model=model, task=task, cot=cot)


def diversity_file(model, task, cot):
    return DIVERSITY_FILE.format(results=RESULTS, model=model, task=task, cot=cot)


# Tables (TABLE_NAMES; the HTML report shows REPORT_TABLES beside the figures) and figures
# (FIGURE_NAMES), as divtrace.analysis and divtrace.figures write them.
TABLES = {
    (name, ext): TABLE_FILE.format(results=RESULTS, name=name, ext=ext)
    for name in TABLE_NAMES
    for ext in ("parquet", "csv")
}
FIGURES = {
    (name, ext): FIGURE_FILE.format(results=RESULTS, name=name, ext=ext)
    for name in FIGURE_NAMES
    for ext in ("pdf", "png")
}


def all_shards():
    return [
        shard_file(model, task, cot, shard)
        for model, task, cot in STUDY.runs()
        for shard in STUDY.shards(task)
    ]


def all_targets():
    """Tables and figures, plus every shard: the raw generations are a deliverable too, and
    naming them here means a deleted shard is regenerated (with what depends on it)."""
    return list(TABLES.values()) + list(FIGURES.values()) + all_shards()


# ---------------------------------------------------------------- input functions and params
def parent_manifest(wildcards):
    """A toy post-training recipe starts from its parent's weights."""
    spec = STUDY.model(wildcards.model)
    if spec["source"] == "toy" and spec.get("parent"):
        return model_manifest(spec["parent"])
    return []


def fetch_threads(wildcards):
    """Torch threads of a toy build: two for the root (nothing else can run beside it), one for
    the post-training recipes, which run side by side."""
    spec = STUDY.model(wildcards.model)
    return 2 if spec["source"] == "toy" and not spec.get("parent") else 1


# The keys of a model entry that decide its weights. Only these reach fetch_model, so editing a
# label (stage, lineage) or how a model is sampled (format, reasoning) rebuilds nothing.
FETCH_KEYS = ("source", "repo", "revision", "parent", "toy")


def model_spec_json(wildcards):
    spec = STUDY.model(wildcards.model)
    return json.dumps({k: spec[k] for k in FETCH_KEYS if k in spec}, sort_keys=True)


def task_source(wildcards):
    """Local task files are inputs, HF ids are not. Their bytes are in the prompts digest (a
    param of prepare_prompts), so editing one re-prepares its prompts and touching one does not.
    """
    source = STUDY.task(wildcards.task)["source"]
    return ancient(source) if source.endswith(".jsonl") else []


def _flag_list(values):
    """``{"--flag": value}`` → a list of arguments (None and False values are left out)."""
    args = []
    for flag, value in values.items():
        if value is True:
            args.append(flag)
        elif value is not None and value is not False:
            args += [flag, str(value)]
    return args


def _flags(values):
    """``{"--flag": value}`` → a shell-quoted argument string (None values are left out)."""
    return shlex.join(_flag_list(values))


# ---------------------------------------------------------------- prompts: finished shards stay
# What a prompts file is made from (divtrace.provenance) is a digest computed here from the config
# (and a local task file's bytes), a param of every rule that reads the file; the file records it
# and those rules refuse another. Its modification time counts for nothing (ancient()): a touched
# or corrupt prompts file replans no shard, while the task's shards record the config's digest.
# Where the config asks for other prompts, the file is an ordinary input, so prepare_prompts and
# every job that reads it rerun (docs/design.md §2).
_PROMPT_DIGESTS = {}


def prompts_digest(task):
    if task not in _PROMPT_DIGESTS:
        spec = STUDY.task(task)
        _PROMPT_DIGESTS[task] = prompt_digest(
            prompt_spec(
                task=task,
                family=STUDY.family(task),
                source=spec["source"],
                n=spec["n_prompts"],
                seed=config["seed"],
                prompt_style=spec["prompt_style"],
                hf_config=spec.get("hf_config"),
                split=spec.get("split"),
                revision=spec.get("revision"),
            )
        )
    return _PROMPT_DIGESTS[task]


_PROMPTS_CURRENT = {}


def prompts_current(task):
    """The task's finished shards were sampled from the prompts the config asks for: the first
    readable shard records the config's digest. The prompts file's own mtime, bytes or recorded
    digest do not decide it: a touched, corrupt or replaced file keeps its shards (and is named
    here, and refused by every job that reads it)."""
    if task in _PROMPTS_CURRENT:
        return _PROMPTS_CURRENT[task]
    current = False
    for model, task_, cot in STUDY.runs():
        for shard in STUDY.shards(task) if task_ == task else ():
            path = shard_file(model, task, cot, shard)
            if not Path(path).exists():
                continue
            try:
                current = recorded_digest(path) == prompts_digest(task)
            except Exception:  # noqa: BLE001 - an unreadable shard says nothing
                continue
            break
        else:
            continue
        break
    prompts = prompts_file(task)
    if current and Path(prompts).exists():
        try:
            problem = None
            if recorded_digest(prompts) != prompts_digest(task):
                problem = "records other prompts than the config asks for"
        except Exception as err:  # noqa: BLE001 - any unreadable footer
            problem = f"is unreadable ({type(err).__name__})"
        if problem:
            print(
                f"divtrace: {prompts} {problem}; its finished shards are kept, jobs that read "
                f"it stop; remake it alone with `snakemake --forcerun prepare_prompts {prompts}`",
                file=sys.stderr,
            )
    _PROMPTS_CURRENT[task] = current
    return current


def prompts_input_of(task):
    """The prompts file as the input of a job that reads it: ancient() while it is current."""
    path = prompts_file(task)
    return ancient(path) if prompts_current(task) else path


def prompts_input(wildcards):
    return prompts_input_of(wildcards.task)


def prompts_args(wildcards):
    task = STUDY.task(wildcards.task)
    return _flags(
        {
            "--family": STUDY.family(wildcards.task),
            "--source": task["source"],
            "--n": task["n_prompts"],
            "--seed": config["seed"],
            "--prompt-style": task["prompt_style"],
            "--hf-config": task.get("hf_config"),
            "--split": task.get("split"),
            "--revision": task.get("revision"),
        }
    )


def _sample_settings(model, task):
    """Every setting that changes a shard's content, as ``{"--flag": value}``."""
    spec, task_spec = STUDY.model(model), STUDY.task(task)
    return {
        "--family": STUDY.family(task),
        "--prompts-per-shard": SAMPLING["prompts_per_shard"],
        "--k": SAMPLING["k"],
        "--seed": config["seed"],
        "--format": spec["format"],
        "--reasoning": bool(spec.get("reasoning")),
        "--prefill": SAMPLING["cot_off_prefill"],
        "--temperature": SAMPLING["temperature"],
        "--top-p": SAMPLING["top_p"],
        "--top-k": SAMPLING["top_k"],
        "--max-tokens": task_spec["max_tokens"],
        "--backend": SAMPLING["backend"],
        "--device": SAMPLING["device"],
        "--dtype": SAMPLING["dtype"],
        "--batch-rows": SAMPLING["batch_rows"],
        "--engine": (
            json.dumps(SAMPLING["engine"], sort_keys=True)
            if SAMPLING["backend"] == "vllm"
            else None
        ),
    }


# The settings of _sample_settings that differ between the tasks of a model (with --stop): one
# of each per shard of a `divtrace sample` call that samples several.
TASK_SAMPLE_FLAGS = ("--family", "--max-tokens")


def _stop_flags(task):
    return [
        token for stop in STUDY.task(task).get("stop", []) for token in ("--stop", stop)
    ]


def sample_args(wildcards):
    """Every setting that changes a shard's content, as command-line flags."""
    args = _flags(_sample_settings(wildcards.model, wildcards.task))
    return " ".join([args, shlex.join(_stop_flags(wildcards.task))]).strip()


def sample_model_args(wildcards):
    """The settings of a model's shards that every task shares, as command-line flags."""
    settings = _sample_settings(wildcards.model, STUDY.tasks[0])
    return _flags({k: v for k, v in settings.items() if k not in TASK_SAMPLE_FLAGS})


def sample_model_shards(wildcards):
    """Every shard file of one model and CoT mode, all tasks (one sampling job)."""
    return [
        shard_file(wildcards.model, task, wildcards.cot, shard)
        for task in STUDY.tasks
        for shard in STUDY.shards(task)
    ]


def sample_model_prompts(wildcards):
    """Every task's prompts file, as the inputs of one sampling job."""
    return [prompts_input_of(task) for task in STUDY.tasks]


def sample_model_groups(wildcards):
    """One ``--prompts ... --out ...`` group per shard of a sampling job (every task of a model
    and CoT mode), with what differs between its tasks."""
    args = []
    for task in STUDY.tasks:
        settings = _sample_settings(wildcards.model, task)
        task_flags = _flag_list({k: settings[k] for k in TASK_SAMPLE_FLAGS})
        for shard in STUDY.shards(task):
            args += ["--prompts", prompts_file(task), "--task", task, "--shard", shard]
            args += task_flags + _stop_flags(task)
            args += ["--prompts-digest", prompts_digest(task)]
            args += ["--out", shard_file(wildcards.model, task, wildcards.cot, shard)]
    return shlex.join(args)


def sample_model_minutes(wildcards, attempt):
    """A sampling job's SLURM runtime: its shards' planned minutes, summed."""
    return model_minutes(config, wildcards.model, wildcards.cot, attempt)


def shards_of(wildcards):
    return [
        shard_file(wildcards.model, wildcards.task, wildcards.cot, shard)
        for shard in STUDY.shards(wildcards.task)
    ]


def verifiable(task):
    return STUDY.is_verifiable(task)


def verified_runs():
    return [(m, t, c) for m, t, c in STUDY.runs() if verifiable(t)]


def quality_of(wildcards):
    """Verifiable tasks get a correct-subset diversity: the quality file is an input."""
    if verifiable(wildcards.task):
        return quality_file(wildcards.model, wildcards.task, wildcards.cot)
    return []


def diversity_args():
    """The metric settings of ``divtrace diversity``, as command-line flags."""
    return _flags(
        {
            "--metrics": ",".join(METRICS["names"]),
            "--sbert-model": METRICS["sbert_model"],
            "--ead-vocab-size": METRICS["ead_vocab_size"],
            "--ead-tokenize": METRICS["ead_tokenize"],
            "--nli-model": METRICS["nli_model"],
            "--nli-max-length": METRICS["nli_max_length"],
            "--code-model": METRICS["code_model"],
            "--code-max-length": METRICS["code_max_length"],
            "--device": METRICS["device"],
            "--k-grid": ",".join(str(k) for k in METRICS["k_grid"]) or None,
        }
    )


def runs_behaviours(task):
    """Code tasks with answer-class or behaviour metrics run their programs on the tests."""
    wanted = set(METRICS["names"]) & {*CLASS_METRICS, *BEHAVIOUR_METRICS}
    return bool(wanted) and STUDY.family(task) in BEHAVIOUR_FAMILIES


def behaviour_prompts(wildcards):
    """The prompts file (the tests) as an input of the diversity job that needs it."""
    return prompts_input(wildcards) if runs_behaviours(wildcards.task) else []


def behaviour_args(wildcards, input):
    if not runs_behaviours(wildcards.task):
        return ""
    return _flags(
        {
            "--prompts": input.prompts,
            "--prompts-digest": prompts_digest(wildcards.task),
        }
    )


def shards_of_model(wildcards):
    """Every shard of one model and CoT mode, all tasks (one diversity job)."""
    return [
        shard_file(wildcards.model, task, wildcards.cot, shard)
        for task in STUDY.tasks
        for shard in STUDY.shards(task)
    ]


def quality_of_model(wildcards):
    """Verifiable tasks get a correct-subset diversity: their quality files are inputs."""
    return [
        quality_file(wildcards.model, task, wildcards.cot)
        for task in STUDY.tasks
        if verifiable(task)
    ]


def behaviour_prompts_of_model(wildcards):
    """The prompts files (the tests) of the tasks that run their programs on them."""
    return [prompts_input_of(task) for task in STUDY.tasks if runs_behaviours(task)]


def diversity_cells(wildcards):
    """One ``--generations ... --quality ... --out ...`` group per task of a diversity job."""
    args = []
    for task in STUDY.tasks:
        args += ["--generations"]
        args += [
            shard_file(wildcards.model, task, wildcards.cot, shard)
            for shard in STUDY.shards(task)
        ]
        args += ["--quality"]
        if verifiable(task):
            args += [quality_file(wildcards.model, task, wildcards.cot)]
        args += ["--family", STUDY.family(task)]
        # one --prompts per run (an empty one where the task runs no tests), or none
        if runs_behaviours(task):
            args += ["--prompts", prompts_file(task)]
            args += ["--prompts-digest", prompts_digest(task)]
        elif any(runs_behaviours(t) for t in STUDY.tasks):
            args += ["--prompts", "", "--prompts-digest", ""]
        args += ["--out", diversity_file(wildcards.model, task, wildcards.cot)]
    return shlex.join(args)


def all_quality_files(wildcards):
    return [quality_file(m, t, c) for m, t, c in verified_runs()]


def all_diversity_files(wildcards):
    return [diversity_file(m, t, c) for m, t, c in STUDY.runs()]


def runs_json(wildcards):
    """Every run of the study, with whether its task is scored: each gets its table cells."""
    return json.dumps([[m, t, c, verifiable(t)] for m, t, c in STUDY.runs()])


def lineage_json(wildcards):
    return json.dumps(STUDY.lineage.to_dict(), sort_keys=True)


# ---------------------------------------------------------------- LLM judges (workflow/rules/judge.smk)
JUDGE = STUDY.judge  # the judge block, defaults filled in
JUDGE_RUNS = (
    STUDY.judge_runs()
)  # (model, task, cot) cells judged; none while judge.enabled is off
JUDGE_CACHE = JUDGE["cache_dir"] or f"{RESULTS}/judge_cache"


def judgement_file(model, task, cot):
    return JUDGEMENT_FILE.format(results=RESULTS, model=model, task=task, cot=cot)


def all_judgement_files(wildcards):
    return [judgement_file(m, t, c) for m, t, c in JUDGE_RUNS]


def judge_opponent_shards(wildcards):
    """The base model's shards of the same task where the protocol compares with it (the base
    has CoT on only, so a CoT-off run meets its CoT-on answers); none for a reference.
    """
    opponent = STUDY.judge_opponent(wildcards.task)
    if opponent is None:
        return []
    return [
        shard_file(opponent, wildcards.task, "on", s)
        for s in STUDY.shards(wildcards.task)
    ]


def judge_args(wildcards):
    """Every setting of a judge job, as command-line flags (the template file by its path)."""
    protocol = STUDY.judge_protocol(wildcards.task)
    return _flags(
        {
            "--backend": JUDGE["backend"],
            "--judge-model": JUDGE["judge_model"],
            "--base-url": JUDGE["base_url"],
            "--api-key-env": JUDGE["api_key_env"],
            "--concurrency": JUDGE["concurrency"],
            "--max-retries": JUDGE["max_retries"],
            "--timeout": JUDGE["timeout_s"],
            "--temperature": JUDGE["temperature"],
            "--samples-per-prompt": JUDGE["samples_per_prompt"],
            "--template": JUDGE["templates"].get(protocol),
            "--family": STUDY.family(wildcards.task),
            "--judge-engine": (
                json.dumps(JUDGE["engine"], sort_keys=True)
                if JUDGE["backend"] == "vllm" and JUDGE["engine"]
                else None
            ),
        }
    )


def judge_summary_args(wildcards):
    """The summary's judge flags: the expected cells, the backend and the price table (empty
    while the judge is off, so that turning it on is the only change the summary sees).
    """
    if not JUDGE_RUNS:
        return ""
    return _flags(
        {
            "--judge-runs": json.dumps([list(run) for run in JUDGE_RUNS]),
            "--judge-backend": JUDGE["backend"],
            "--judge-prices": json.dumps(JUDGE["prices"], sort_keys=True),
        }
    )
