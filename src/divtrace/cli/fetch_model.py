"""``divtrace fetch-model``: build a toy checkpoint or fetch a pinned Hugging Face snapshot."""

from __future__ import annotations

import argparse

from divtrace.cli.common import json_arg, log

NAME = "fetch-model"
HELP = "build a toy checkpoint or fetch a HF snapshot"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", required=True, help="model key in config.models")
    p.add_argument("--spec", required=True, type=json_arg, help="the model's config entry (JSON)")
    p.add_argument("--out-dir", required=True, help="directory that receives manifest.json")
    p.add_argument("--parent-manifest", help="manifest of the parent (toy post-training recipes)")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads of a toy build (same bytes for any)"
    )


def run(args: argparse.Namespace) -> None:
    from divtrace.models import fetch_model

    manifest = fetch_model(
        args.name, args.spec, args.out_dir, args.parent_manifest, threads=args.threads
    )
    log(f"model {args.name}: {manifest['path']} ({len(manifest['files'])} files)")
