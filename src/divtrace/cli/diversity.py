"""``divtrace diversity``: the diversity metrics of one run, per input and across inputs.

Several runs may be measured in one call (one process, each metric model loaded once): each run
is a ``--generations ... [--quality ...] --out ...`` group, in that order. Each run is measured
on its own, as in a call of its own, so its file is the same either way.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from divtrace.cli.common import csv_list, log, schema_default

if TYPE_CHECKING:
    from divtrace.metrics.embeddings import Embedder
    from divtrace.metrics.nli import HFNLIScorer

NAME = "diversity"
HELP = "diversity metrics per input and across inputs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--generations",
        nargs="+",
        action="append",
        required=True,
        help="generations Parquet file(s) of one run (repeat the group for more runs)",
    )
    p.add_argument(
        "--out",
        action="append",
        required=True,
        help="output diversity Parquet file of the run given before it",
    )
    p.add_argument(
        "--metrics",
        type=csv_list,
        default=list(schema_default("metrics.names")),
        help="comma-separated metric names",
    )
    p.add_argument(
        "--sbert-model", default=schema_default("metrics.sbert_model"), help="name or local path"
    )
    p.add_argument("--ead-vocab-size", type=int, default=schema_default("metrics.ead_vocab_size"))
    p.add_argument(
        "--ead-tokenize",
        choices=["words", "paper"],
        default=schema_default("metrics.ead_tokenize"),
        help="EAD words: split at whitespace, or the paper's rule (delete '.' and newlines first)",
    )
    p.add_argument(
        "--nli-model",
        default=schema_default("metrics.nli_model"),
        help="MNLI classifier: name or path",
    )
    p.add_argument(
        "--nli-max-length",
        type=int,
        default=schema_default("metrics.nli_max_length"),
        help="tokens of each sentence pair given to the NLI model (longer ones are truncated)",
    )
    p.add_argument(
        "--code-model",
        default=schema_default("metrics.code_model"),
        help="code encoder of code_sbert/code_vendi: name or path",
    )
    p.add_argument(
        "--code-max-length",
        type=int,
        default=schema_default("metrics.code_max_length"),
        help="tokens of code the code encoder sees",
    )
    p.add_argument(
        "--device", default=schema_default("metrics.device"), help="device of the SBERT/NLI models"
    )
    p.add_argument(
        "--family",
        action="append",
        help="task family of the run (default: the task's name; for several runs, one --family "
        "per run or none); the code metrics run on code families only",
    )
    p.add_argument(
        "--k-grid",
        default="",
        help="comma-separated set sizes k: add per-input rows with the mean of each metric over "
        "the k-subsets of a prompt's outputs (columns k and se)",
    )
    p.add_argument(
        "--quality",
        nargs="*",
        action="append",
        help="quality Parquet file(s) of the run (none for an unscored task; for several runs, "
        "one --quality per run, empty where unscored)",
    )
    p.add_argument(
        "--model-manifests",
        nargs="*",
        default=[],
        help="manifests of fetch-metric-model: load the SBERT/NLI models from their paths",
    )


def cells(args: argparse.Namespace) -> list[tuple[list[str], list[str], str, str | None]]:
    """(generations, quality, out, family) of each run given: one ``--quality`` and one
    ``--family`` per ``--out``, or none at all (no run scored; every family its task's name)."""
    from divtrace.errors import UsageError

    generations, outs = args.generations, args.out
    quality = args.quality if args.quality is not None else [[] for _ in outs]
    families = args.family if args.family is not None else [None for _ in outs]
    if len(generations) != len(outs) or len(quality) != len(outs) or len(families) != len(outs):
        raise UsageError(
            f"divtrace diversity: {len(generations)} --generations, {len(quality)} --quality, "
            f"{len(families)} --family and {len(outs)} --out groups; give one --generations (and "
            "one --quality and --family each, or none for any run) per --out"
        )
    repeated = sorted({out for out in outs if outs.count(out) > 1})
    if repeated:
        raise UsageError(f"divtrace diversity: --out {repeated[0]} is given more than once")
    return list(zip(generations, quality, outs, families, strict=True))


def run(args: argparse.Namespace) -> None:
    from divtrace.errors import ContractError
    from divtrace.metrics.api import check_metrics
    from divtrace.metrics.embeddings import Embedder
    from divtrace.metrics.nli import HFNLIScorer
    from divtrace.models import read_manifest

    runs = cells(args)
    # Manifests of fetch-metric-model: load each model from its local copy (offline nodes).
    load = {"sbert": args.sbert_model, "nli": args.nli_model, "code": args.code_model}
    fetched: dict[str, dict[str, object]] = {}
    for path in args.model_manifests:
        manifest = read_manifest(path, "metric model manifest", "fetch_metric_model")
        role = manifest.get("role")
        if role not in load:
            raise ContractError(f"{path}: not a metric model manifest (role {role!r})")
        load[role] = manifest["path"]
        fetched[role] = {k: manifest.get(k) for k in ("model", "source", "revision", "commit")}
    device = None if args.device == "auto" else args.device
    # Built lazily (nothing loads before a text needs it); each run gets a fresh cache over the
    # one loaded model, so its texts are batched as in a call of its own.
    embedder = Embedder(load["sbert"], device=device, show_progress_bar=True)
    scorer = (
        HFNLIScorer(load["nli"], device=device, max_length=args.nli_max_length)
        if "nli" in check_metrics(args.metrics)
        else None
    )
    for generations, quality, out, family in runs:
        measure(args, generations, quality, out, family, load, embedder, scorer, fetched)
        embedder = embedder.fresh()
        scorer = scorer.fresh() if scorer is not None else None


def measure(
    args: argparse.Namespace,
    paths: list[str],
    quality_paths: list[str],
    out: str,
    family: str | None,
    load: dict[str, str],
    embedder: Embedder,
    scorer: HFNLIScorer | None,
    fetched: dict[str, dict[str, object]],
) -> None:
    """Measure one run and write its diversity file."""
    from divtrace import io
    from divtrace.metrics.api import INPUT_COLUMNS, QUALITY_COLUMNS, compute_diversity
    from divtrace.metrics.classes import SOURCE_COLUMNS, class_keys
    from divtrace.metrics.fixed_k import parse_k_grid
    from divtrace.names import CLASS_METRICS, CODE_EMBEDDING_METRICS

    # Only the columns the metrics read: the keys, the answers and what drops an output.
    # The rows of one run only: the run of the output's place in the DAG (or the inputs' one
    # run); a row of another model, task or CoT mode is refused, naming its file and row.
    run = io.expected_run(out, io.empty_frame("generations"))  # {} if out has no place
    generations = io.read_tables(paths, "generations", columns=INPUT_COLUMNS, expect=run)
    run = io.expected_run(out, generations)
    wants_classes = bool(set(args.metrics) & set(CLASS_METRICS))
    quality = (
        io.read_tables(
            quality_paths,
            "quality",
            columns=QUALITY_COLUMNS,
            expect=run,
            # what the answer classes are built from, where the files have it
            optional=list(SOURCE_COLUMNS) if wants_classes else (),
        )
        if quality_paths
        else None
    )
    if quality is not None and wants_classes and run.get("task"):
        keys = class_keys(quality, family or run["task"])
        if keys is not None:
            quality = quality.with_columns(keys)
    k_grid = parse_k_grid(args.k_grid) if args.k_grid.strip() else []
    families = (
        {str(t): family for t in generations.get_column("task").unique().to_list()}
        if family
        else None
    )
    table = compute_diversity(
        generations,
        args.metrics,
        sbert_model=args.sbert_model,
        ead_vocab_size=args.ead_vocab_size,
        ead_tokenize=args.ead_tokenize,
        quality=quality,
        embedder=embedder,
        nli_model=args.nli_model,
        nli_max_length=args.nli_max_length,
        nli_scorer=scorer,
        device=None if args.device == "auto" else args.device,
        families=families,
        k_grid=k_grid,
        code_model=load["code"],
        code_max_length=args.code_max_length,
    )
    io.write_table(
        table,
        out,
        "diversity",
        metadata={
            "metrics": args.metrics,
            "sbert_model": args.sbert_model,
            "ead_vocab_size": args.ead_vocab_size,
            "ead_tokenize": args.ead_tokenize,
            "nli_model": args.nli_model if "nli" in args.metrics else None,
            "nli_max_length": args.nli_max_length if "nli" in args.metrics else None,
            "metric_models": fetched,
            "family": family,
            "code_model": args.code_model
            if set(args.metrics) & set(CODE_EMBEDDING_METRICS)
            else None,
            "k_grid": k_grid,
            "inputs": [str(p) for p in paths],
        },
    )
    log(f"{len(generations)} generations → {len(table)} diversity rows → {out}")
