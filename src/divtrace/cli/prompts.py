"""``divtrace prompts``: one task's prompts table (rendered, selected, with gold references)."""

from __future__ import annotations

import argparse

from divtrace.cli.common import log, schema_default
from divtrace.tasks.styles import DEFAULT_PROMPT_STYLE, PROMPT_STYLES

NAME = "prompts"
HELP = "prepare one task's prompts table"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="task name (also its family unless --family)")
    p.add_argument("--source", required=True, help="HF dataset id or local .jsonl file")
    p.add_argument("--out", required=True, help="output Parquet file")
    p.add_argument("--n", type=int, default=None, help="number of prompts (default: all)")
    p.add_argument(
        "--seed", type=int, default=schema_default("seed"), help="seed of the prompt shuffle"
    )
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


def run(args: argparse.Namespace) -> None:
    from divtrace import io
    from divtrace.errors import DivtraceError
    from divtrace.provenance import DIGEST_KEY, prompt_digest, prompt_spec
    from divtrace.tasks import get_family, styles
    from divtrace.tasks.prompts import build_prompts_and_selection, load_records

    family = get_family(args.family or args.task)
    try:
        records = load_records(
            args.source, family, hf_config=args.hf_config, split=args.split, revision=args.revision
        )
    except DivtraceError as err:  # name the task too: the config key that holds the source
        raise type(err)(f"task {args.task!r}: {err}") from err
    table, selection = build_prompts_and_selection(
        args.task,
        family,
        records,
        n=args.n,
        seed=args.seed,
        source=args.source,
        style=args.prompt_style,
    )
    spec = prompt_spec(
        task=args.task,
        family=args.family or args.task,
        source=args.source,
        n=args.n,
        seed=args.seed,
        prompt_style=args.prompt_style,
        hf_config=args.hf_config,
        split=args.split,
        revision=args.revision,
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
            "spec": spec,
            DIGEST_KEY: prompt_digest(spec),
        },
    )
    for count, what in (
        (selection["n_duplicates_dropped"], "dropped"),
        (selection["n_duplicates_kept"], "kept (the paper's style sends them as they come)"),
    ):
        if count:
            pairs = ", ".join(f"{row} (= {first})" for row, first in selection["duplicates"][:5])
            log(
                f"warning: {args.task}: {what} {count} record(s) of {args.source} whose prompt "
                f"repeats an earlier one's: source rows {pairs}"
            )
    log(
        f"{args.task}: {len(table)} prompts ({args.prompt_style} style) of {len(records)} "
        f"records → {args.out}"
    )
