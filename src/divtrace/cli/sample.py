"""``divtrace sample``: K samples for every prompt of one shard (the GPU step).

Several shards of one model and CoT mode may be sampled in one call (one process, the model
loaded once): each shard is a ``--prompts ... --task ... --shard ... --max-tokens ... --out ...``
group (with its ``--family``, ``--stop`` and ``--prompts-digest``), its ``--stop`` values before
its ``--out``; the model's settings are given once. Each shard is sampled as in a call of its
own: its file holds the same table and the same metadata but for the timings (``seconds``,
``tokens_per_second``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from divtrace.cli.common import (
    GroupedAppend,
    each_or_none,
    json_arg,
    log,
    out_groups,
    schema_default,
)

if TYPE_CHECKING:
    import polars as pl

    from divtrace.generation.backend import Backend, SamplingParams
    from divtrace.generation.sample import ShardSpec

T = TypeVar("T")

NAME = "sample"
HELP = "sample K outputs for the prompts of one shard (or of several, one model loaded once)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    # One per shard (repeat the group for more shards):
    p.add_argument(
        "--prompts", action="append", required=True, help="prompts Parquet file of the task"
    )
    p.add_argument("--manifest", required=True, help="model manifest.json")
    p.add_argument("--model", required=True, help="model name (recorded in the output)")
    p.add_argument("--task", action="append", required=True)
    p.add_argument(
        "--family",
        action="append",
        help="task family (default: the task name; for several shards, one per shard or none)",
    )
    p.add_argument("--cot", choices=["on", "off"], default="on")
    p.add_argument(
        "--shard", type=int, action="append", required=True, help="shard number (0-based)"
    )
    p.add_argument("--prompts-per-shard", type=int, required=True)
    p.add_argument("--k", type=int, required=True, help="samples per prompt")
    p.add_argument("--seed", type=int, required=True, help="global seed")
    p.add_argument("--format", choices=["chat", "completion"], required=True)
    p.add_argument("--reasoning", action="store_true", help="the model writes a think block")
    p.add_argument(
        "--prefill",
        default=schema_default("sampling.cot_off_prefill"),
        help="CoT-off assistant prefill",
    )
    p.add_argument("--temperature", type=float, required=True)
    p.add_argument("--top-p", type=float, default=schema_default("sampling.top_p"))
    p.add_argument("--top-k", type=int, default=schema_default("sampling.top_k"))
    p.add_argument("--max-tokens", type=int, action="append", required=True)
    p.add_argument(
        "--stop",
        action=GroupedAppend,
        help="stop sequence (completion format; default: the task's); repeat it for more; with "
        "several shards, a shard's stops come before its --out",
    )
    p.add_argument(
        "--backend",
        choices=["transformers", "vllm"],
        default=schema_default("sampling.backend"),
    )
    p.add_argument("--device", default=schema_default("sampling.device"))
    p.add_argument("--dtype", default=schema_default("sampling.dtype"))
    p.add_argument("--threads", type=int, default=schema_default("sampling.threads"))
    p.add_argument(
        "--batch-rows",
        type=int,
        default=schema_default("sampling.batch_rows"),
        help="transformers: rows per generate call",
    )
    p.add_argument("--engine", type=json_arg, default={}, help="vLLM engine settings (JSON object)")
    p.add_argument(
        "--prompts-digest",
        action="append",
        help="the digest the prompts file must record (divtrace.provenance; the workflow's; for "
        "several shards, one per shard or none)",
    )
    p.add_argument(
        "--out",
        action="append",
        required=True,
        help="output shard Parquet file of the shard given before it",
    )


class Shard(NamedTuple):
    """One shard of a ``divtrace sample`` call."""

    prompts: str
    task: str
    family: str | None
    shard: int
    max_tokens: int
    stop: list[str] | None  # None: the task's
    prompts_digest: str | None
    out: str

    @property
    def label(self) -> str:
        return f"{self.task} shard {self.shard} ({self.out})"


def shards(args: argparse.Namespace) -> list[Shard]:
    """The shards given: one ``--prompts``, ``--task``, ``--shard`` and ``--max-tokens`` per
    ``--out``, one ``--family`` and ``--prompts-digest`` each per ``--out`` or none, and each
    shard's ``--stop`` values before its ``--out`` (with one ``--out``, anywhere)."""
    from divtrace.errors import UsageError

    outs = args.out
    stops: list[list[str] | None] = [None for _ in outs]
    for group, stop in args.stop or []:
        group = 0 if len(outs) == 1 else group
        if group >= len(outs):
            raise UsageError(
                f"divtrace sample: --stop {stop!r} after the last --out; give a shard's --stop "
                "before its --out"
            )
        stops[group] = [*(stops[group] or []), stop]
    rows = out_groups(
        "sample",
        outs,
        {
            "--prompts": args.prompts,
            "--task": args.task,
            "--family": each_or_none(args.family, outs),
            "--shard": args.shard,
            "--max-tokens": args.max_tokens,
            "--stop": stops,
            "--prompts-digest": each_or_none(args.prompts_digest, outs),
        },
        "give one --prompts, --task, --shard and --max-tokens per --out, and one --family and "
        "--prompts-digest each per --out or none",
    )
    return [Shard(*row) for row in rows]


class Job(NamedTuple):
    """What one shard is sampled from, read and checked before the model loads."""

    prompts: pl.DataFrame
    digest: str | None
    spec: ShardSpec
    params: SamplingParams


def run(args: argparse.Namespace) -> None:
    from divtrace.generation.sample import make_backend
    from divtrace.models import read_manifest

    given = shards(args)
    manifest = read_manifest(args.manifest)
    # Every shard's prompts are read and checked before the model loads, which it does once.
    jobs = [_naming(shard, len(given), prepare, args, shard) for shard in given]
    backend = make_backend(
        args.backend,
        manifest["path"],
        {
            "device": args.device,
            "dtype": args.dtype,
            "threads": args.threads,
            "batch_rows": args.batch_rows,
            "engine": args.engine,
        },
    )
    for shard, job in zip(given, jobs, strict=True):
        _naming(shard, len(given), sample, args, shard, job, backend, manifest)


def _naming(shard: Shard, n_shards: int, step: Callable[..., T], *step_args: Any) -> T:
    """``step(*step_args)``; with several shards in the call, an input error names the shard."""
    from divtrace.errors import DivtraceError

    try:
        return step(*step_args)
    except DivtraceError as err:
        if n_shards == 1:
            raise
        raise type(err)(f"{shard.label}: {err}") from err


def prepare(args: argparse.Namespace, shard: Shard) -> Job:
    """The prompts (checked against their digest), spec and sampling parameters of a shard."""
    from divtrace import io
    from divtrace.generation.backend import SamplingParams
    from divtrace.generation.sample import ShardSpec
    from divtrace.provenance import check_prompts
    from divtrace.tasks import get_family, styles

    digest = check_prompts(shard.prompts, shard.prompts_digest)
    prompts = io.read_table(shard.prompts, "prompts")
    # The prompts file says in which style it was written; the style decides the stop sequences.
    style = io.read_metadata(shard.prompts).get("prompt_style", styles.DEFAULT_PROMPT_STYLE)
    family = get_family(shard.family or shard.task)
    stop = tuple(shard.stop) if shard.stop is not None else styles.completion_stop(family, style)
    spec = ShardSpec(
        model=args.model,
        task=shard.task,
        cot=args.cot,
        shard=shard.shard,
        prompts_per_shard=args.prompts_per_shard,
        k=args.k,
        seed=args.seed,
        prompt_format=args.format,
        reasoning=args.reasoning,
        prefill=args.prefill,
        prompt_style=style,
    )
    params = SamplingParams(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        max_tokens=shard.max_tokens,
        stop=stop if args.format == "completion" else (),
    )
    return Job(prompts, digest, spec, params)


def sample(
    args: argparse.Namespace,
    shard: Shard,
    job: Job,
    backend: Backend,
    manifest: dict[str, Any],
) -> None:
    """Sample one shard with the loaded model and write its file (atomically)."""
    from divtrace import io
    from divtrace.generation.sample import sample_shard
    from divtrace.provenance import DIGEST_KEY

    frame, metadata = sample_shard(job.prompts, job.spec, job.params, backend, manifest)
    metadata[DIGEST_KEY] = job.digest
    io.write_table(frame, shard.out, "generations", metadata=metadata)
    log(
        f"{args.model}/{shard.task}/cot-{args.cot} shard {shard.shard}: {len(frame)} samples, "
        f"{metadata['generated_tokens']} tokens in {metadata['seconds']} s → {shard.out}"
    )
