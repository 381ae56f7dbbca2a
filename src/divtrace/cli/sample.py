"""``divtrace sample``: K samples for every prompt of one shard (the GPU step)."""

from __future__ import annotations

import argparse

from divtrace.cli.common import json_arg, log, schema_default

NAME = "sample"
HELP = "sample K outputs for the prompts of one shard"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompts", required=True, help="prompts Parquet file of the task")
    p.add_argument("--manifest", required=True, help="model manifest.json")
    p.add_argument("--model", required=True, help="model name (recorded in the output)")
    p.add_argument("--task", required=True)
    p.add_argument("--family", help="task family (default: the task name)")
    p.add_argument("--cot", choices=["on", "off"], default="on")
    p.add_argument("--shard", type=int, required=True, help="shard number (0-based)")
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
    p.add_argument("--max-tokens", type=int, required=True)
    p.add_argument(
        "--stop", action="append", help="stop sequence (completion format; default: the task's)"
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
        help="the digest the prompts file must record (divtrace.provenance; the workflow's)",
    )
    p.add_argument("--out", required=True, help="output shard Parquet file")


def run(args: argparse.Namespace) -> None:
    from divtrace import io
    from divtrace.generation.backend import SamplingParams
    from divtrace.generation.sample import ShardSpec, make_backend, sample_shard
    from divtrace.models import read_manifest
    from divtrace.provenance import DIGEST_KEY, check_prompts
    from divtrace.tasks import get_family, styles

    manifest = read_manifest(args.manifest)
    digest = check_prompts(args.prompts, args.prompts_digest)
    prompts = io.read_table(args.prompts, "prompts")
    # The prompts file says in which style it was written; the style decides the stop sequences.
    style = io.read_metadata(args.prompts).get("prompt_style", styles.DEFAULT_PROMPT_STYLE)
    family = get_family(args.family or args.task)
    stop = tuple(args.stop) if args.stop is not None else styles.completion_stop(family, style)
    spec = ShardSpec(
        model=args.model,
        task=args.task,
        cot=args.cot,
        shard=args.shard,
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
        max_tokens=args.max_tokens,
        stop=stop if args.format == "completion" else (),
    )
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
    frame, metadata = sample_shard(prompts, spec, params, backend, manifest)
    metadata[DIGEST_KEY] = digest
    io.write_table(frame, args.out, "generations", metadata=metadata)
    log(
        f"{args.model}/{args.task}/cot-{args.cot} shard {args.shard}: {len(frame)} samples, "
        f"{metadata['generated_tokens']} tokens in {metadata['seconds']} s → {args.out}"
    )
