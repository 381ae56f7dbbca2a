"""``divtrace figures``: every figure, drawn from the analysis tables."""

from __future__ import annotations

import argparse

from divtrace.cli.common import json_arg, log

NAME = "figures"
HELP = "draw every figure from the analysis tables"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables-dir", required=True, help="results/tables")
    p.add_argument("--lineage", required=True, type=json_arg, help="lineage tree (JSON)")
    p.add_argument("--out-dir", required=True)


def run(args: argparse.Namespace) -> None:
    from divtrace.analysis.tables import read_tables
    from divtrace.figures import draw_figures
    from divtrace.lineage import Lineage

    lineage = Lineage.from_dict(args.lineage)
    written = draw_figures(read_tables(args.tables_dir), lineage, args.out_dir)
    log(f"{len(written)} figure files → {args.out_dir}")
