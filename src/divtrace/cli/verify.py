"""``divtrace verify``: read every result file in full; name the bad ones and how to remake them."""

from __future__ import annotations

import argparse

NAME = "verify"
HELP = "check every result file (checksums, contract, rows) and say how to regenerate bad ones"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="?", default="results", help="the results directory")
    p.add_argument(
        "--configfile",
        nargs="+",
        default=[],
        help="the run's config file(s), spelled into the regenerate commands",
    )


def run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from divtrace.errors import ContractError, MissingFileError
    from divtrace.integrity import regenerate_command, verify

    if not Path(args.results).is_dir():
        raise MissingFileError(f"{args.results}: no such results directory")
    files, problems = verify(args.results)
    for problem in problems:
        print(f"BAD {problem.path}: {problem.reason}")
        print(f"  regenerate: {regenerate_command([problem.path], args.configfile)}")
        if problem.downstream:
            print(f"  reruns too: {' '.join(problem.downstream)}")
    if problems:
        print(
            f"all bad files at once: {regenerate_command([p.path for p in problems], args.configfile)}"
        )
        raise ContractError(
            f"{len(problems)} of {len(files)} result file(s) under {args.results} are bad"
        )
    print(f"{len(files)} result file(s) under {args.results}: all good")
