"""``divtrace summarize``: every analysis table, from the diversity, quality and shard files."""

from __future__ import annotations

import argparse

from divtrace.cli.common import json_arg, log, schema_default

NAME = "summarize"
HELP = "every analysis table, with lineage labels and intervals"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--diversity", nargs="+", required=True, help="diversity Parquet files")
    p.add_argument("--quality", nargs="*", default=[], help="quality Parquet files")
    p.add_argument(
        "--generations",
        nargs="*",
        default=[],
        help="generation shards (the truncation table; only their accounting columns are read)",
    )
    p.add_argument("--lineage", required=True, type=json_arg, help="lineage tree (JSON)")
    p.add_argument(
        "--runs",
        type=json_arg,
        default=None,
        help="the study's runs, [[model, task, cot, verifiable], ...] (JSON): each gets its "
        "cells in the tables, null where it has no value, listed in the missing table",
    )
    p.add_argument(
        "--judgements",
        nargs="*",
        default=[],
        help="judgement Parquet files of divtrace judge (the judge table)",
    )
    p.add_argument(
        "--judge-runs",
        type=json_arg,
        default=None,
        help="the judged cells, [[model, task, cot], ...] (JSON): each gets its row in the judge "
        "table, null where it has no value, listed in the missing table",
    )
    p.add_argument(
        "--judge-backend",
        default=None,
        help="the judge backend (openai-batch: the price table's batch discount applies)",
    )
    p.add_argument(
        "--judge-prices",
        type=json_arg,
        default=None,
        help="judge model → {input_per_mtok, output_per_mtok, batch_discount} (JSON)",
    )
    p.add_argument("--out-dir", required=True, help="directory of {table}.parquet and .csv")
    p.add_argument(
        "--n-boot",
        type=int,
        default=schema_default("analysis.n_boot"),
        help="bootstrap resamples of prompts",
    )
    p.add_argument(
        "--seed", type=int, default=schema_default("analysis.seed"), help="bootstrap seed"
    )
    p.add_argument(
        "--equivalence-margin",
        type=float,
        default=schema_default("analysis.equivalence_margin"),
        help="CoT table: equivalence margin δ as a fraction of the CoT-on value (TOST)",
    )


def quality_families(paths: list[str]) -> dict[str, str]:
    """Task → task family, as ``divtrace score`` recorded them in each quality file's metadata
    (a file without them names no family: its task is taken to be its family)."""
    from divtrace import io
    from divtrace.errors import ContractError

    families: dict[str, str] = {}
    for path in paths:
        meta = io.read_metadata(path)
        task, family = meta.get("task"), meta.get("family")
        if task is None or family is None:
            continue
        if families.setdefault(str(task), str(family)) != str(family):
            raise ContractError(
                f"{path}: task {task!r} is of family {family!r} here but "
                f"{families[str(task)]!r} in another quality file"
            )
    return families


def judge_protocols(runs: list[tuple[str, str, str]], families: dict[str, str]) -> dict[str, str]:
    """Task → judge protocol of the judged tasks (by family; a task is its own family unless
    a quality file says otherwise), to label the rows of cells without judgements."""
    from divtrace.names import JUDGE_TASK_PROTOCOLS

    tasks = {task for _m, task, _c in runs}
    return {
        task: JUDGE_TASK_PROTOCOLS[families.get(task, task)]
        for task in tasks
        if families.get(task, task) in JUDGE_TASK_PROTOCOLS
    }


def run(args: argparse.Namespace) -> None:
    import polars as pl

    from divtrace import io
    from divtrace.analysis.judge import READ_COLUMNS as JUDGE_INPUT
    from divtrace.analysis.tables import build_tables, write_tables
    from divtrace.analysis.truncation import INPUT_COLUMNS as TRUNCATION_INPUT
    from divtrace.lineage import Lineage
    from divtrace.metrics.api import K_COLUMNS
    from divtrace.metrics.api import OUTPUT_COLUMNS as DIVERSITY_COLUMNS
    from divtrace.names import TABLE_NAMES
    from divtrace.quality.votes import VOTE

    lineage = Lineage.from_dict(args.lineage)
    # The diversity contract and the drop counts compute_diversity adds to it.
    # (and the k and se columns of rows at a fixed set size, where every file has them: the
    # tables use the whole sets' rows)
    diversity = io.read_tables(
        args.diversity, "diversity", columns=DIVERSITY_COLUMNS, optional=K_COLUMNS
    )
    # Every quality column: the summary averages ``score``, votes with ``extracted`` (majority@K),
    # by the answer classes ``divtrace score`` wrote where every file has them (quality.votes),
    # and counts unclosed traces by ``detail``.
    quality = io.read_tables(args.quality, "quality", optional=[VOTE]) if args.quality else None
    families = quality_families(args.quality)
    generations = (
        io.read_tables(args.generations, "generations", columns=TRUNCATION_INPUT)
        if args.generations
        else None
    )
    # Each judgement file read for the columns the judge table needs (validate_judgements
    # checks their meaning); the judgement contract itself is the judge command's.
    judgements = (
        pl.concat(
            [io.read_table(path, columns=list(JUDGE_INPUT)) for path in args.judgements],
            how="vertical_relaxed",
        )
        if args.judgements
        else None
    )
    judge_runs = [(str(m), str(t), str(c)) for m, t, c in args.judge_runs or []]
    tables = build_tables(
        diversity,
        quality,
        lineage,
        generations=generations,
        families=families,
        n_boot=args.n_boot,
        seed=args.seed,
        equivalence_margin=args.equivalence_margin,
        runs=(
            None
            if args.runs is None
            else [(str(m), str(t), str(c), bool(v)) for m, t, c, v in args.runs]
        ),
        judgements=judgements,
        judge_runs=judge_runs,
        judge_protocols=judge_protocols(judge_runs, families),
        judge_prices=args.judge_prices or {},
        judge_backend=args.judge_backend,
    )
    for name in TABLE_NAMES:  # every table exists, empty where the study has no data for it
        tables.setdefault(name, pl.DataFrame())
    metadata = {
        "n_boot": args.n_boot,
        "seed": args.seed,
        "equivalence_margin": args.equivalence_margin,
    }
    write_tables(tables, args.out_dir, metadata=metadata)
    sizes = ", ".join(f"{name} {len(table)}" for name, table in tables.items())
    log(f"tables → {args.out_dir} ({sizes} rows)")
