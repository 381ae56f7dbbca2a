"""``divtrace score``: the correctness of every sample of a verifiable task."""

from __future__ import annotations

import argparse

from divtrace.cli.common import log

NAME = "score"
HELP = "judge the correctness of every sample of a verifiable task"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="task name (also its family unless --family)")
    p.add_argument("--family", help="task family (default: the task name)")
    p.add_argument("--prompts", required=True, help="prompts Parquet file of the task")
    p.add_argument("--generations", nargs="+", required=True, help="generations Parquet file(s)")
    p.add_argument(
        "--prompts-digest",
        help="the digest the prompts file must record (divtrace.provenance; the workflow's)",
    )
    p.add_argument("--out", required=True, help="output quality Parquet file")


def run(args: argparse.Namespace) -> None:
    from divtrace import io
    from divtrace.errors import ContractError
    from divtrace.provenance import DIGEST_KEY, check_prompts
    from divtrace.quality.score import INPUT_COLUMNS, score_generations

    digest = check_prompts(args.prompts, args.prompts_digest)
    # Each shard records the prompts it was sampled from: they must be these (shards made
    # before digests were recorded have none and are taken as they are).
    for path in args.generations:
        made_from = io.read_metadata(path).get(DIGEST_KEY)
        if digest is not None and made_from is not None and made_from != digest:
            raise ContractError(
                f"{path}: sampled from other prompts (digest {made_from}) than {args.prompts} "
                f"({digest})"
            )
    prompts = io.read_table(args.prompts, "prompts")
    # Only the columns the judges need: never the prompt texts, raw outputs or reasoning.
    # The rows of one run of this task only (that of the output's place in the DAG, if it has
    # one): a row of another model, task or CoT mode is refused, naming its file and row.
    expect = {**io.expected_run(args.out, io.empty_frame("generations")), "task": args.task}
    generations = io.read_tables(
        args.generations, "generations", columns=INPUT_COLUMNS, expect=expect
    )
    io.expected_run(args.out, generations)  # one run, wherever the output goes
    family = args.family or args.task
    style = io.read_metadata(args.prompts).get("prompt_style")
    quality = score_generations(family, prompts, generations, prompt_style=style)
    io.write_table(
        quality,
        args.out,
        "quality",
        metadata={
            "task": args.task,
            "family": family,
            "prompt_style": style,
            "inputs": [str(p) for p in args.generations],
            DIGEST_KEY: digest,
        },
    )
    n_correct = int(quality.get_column("correct").sum())
    log(f"{args.task}: {n_correct}/{len(quality)} correct → {args.out}")
