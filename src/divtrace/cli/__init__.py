"""The ``divtrace`` command line: one subcommand per workflow step, one module per subcommand.

Every Snakemake rule runs one of these, so each step also runs by hand. Each module holds its
subcommand's parser (``add_arguments``) next to its handler (``run``); defaults that a config
also sets are read from the config schema, so a command run by hand samples, scores and
measures as the workflow does. Heavy libraries are imported inside the handlers, so
``divtrace --help`` answers at once.

Input errors (:class:`divtrace.errors.DivtraceError`) are reported in one line naming the
culprit, with exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from divtrace.cli import (
    diversity,
    fetch_metric_model,
    fetch_model,
    figures,
    judge,
    plan,
    prompts,
    sample,
    score,
    summarize,
    verify,
)
from divtrace.errors import DivtraceError

#: The subcommands, in the order of the workflow.
COMMANDS: tuple[ModuleType, ...] = (
    fetch_model,
    fetch_metric_model,
    prompts,
    sample,
    score,
    judge,
    diversity,
    summarize,
    figures,
    plan,
    verify,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="divtrace",
        description="Measure where output diversity collapses along a post-training lineage.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(
            command.NAME,
            help=command.HELP,
            description=command.HELP,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        command.add_arguments(p)
        p.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.environ.get("DIVTRACE_DEBUG"):
        args.handler(args)
        return 0
    try:
        args.handler(args)
    except DivtraceError as err:
        print(f"divtrace {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


__all__ = ["COMMANDS", "build_parser", "main"]
