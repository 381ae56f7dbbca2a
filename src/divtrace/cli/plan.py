"""``divtrace plan``: the jobs a config schedules and the GPU-hours its sampling costs."""

from __future__ import annotations

import argparse
import json

from divtrace.plan import (
    DEFAULT_LOAD_SECONDS,
    DEFAULT_MEAN_TOKENS,
    DEFAULT_TOKENS_PER_SECOND,
    MODES,
)

NAME = "plan"
HELP = "jobs per rule and the GPU-hours a config will cost"


def mode_tokens(text: str) -> tuple[str, int]:
    mode, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return mode.strip(), int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MODE=N, got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
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
        type=mode_tokens,
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


def run(args: argparse.Namespace) -> None:
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
