"""What the subcommands share: argument types, the log line, the schema's defaults, file lists."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from divtrace.names import CONFIG_SCHEMA


def json_arg(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err.msg}") from err


def csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@functools.cache
def _schema() -> dict[str, Any]:
    import yaml

    path = Path(__file__).resolve().parents[3] / CONFIG_SCHEMA
    with open(path, encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


def schema_default(key: str) -> Any:
    """The config schema's default of a dotted key (``"sampling.top_p"``): a command run by hand
    behaves as the workflow does when the config leaves the key out."""
    node: dict[str, Any] = _schema()
    parts = key.split(".")
    for part in parts[:-1]:
        node = node["properties"][part]
    return node["properties"][parts[-1]]["default"]
