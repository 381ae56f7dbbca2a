"""What the subcommands share: argument types, the log line, the schema's defaults, file lists,
and the ``... --out`` argument groups of a command that writes several files in one call."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Mapping, Sequence
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


class GroupedAppend(argparse.Action):
    """``action="append"`` for an option that may be repeated within one ``--out`` group: each
    value is stored as ``(group, value)``, the group being the number of ``--out`` seen before
    it (a group's values come before its ``--out``)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given = list(getattr(namespace, self.dest, None) or [])
        given.append((len(getattr(namespace, "out", None) or []), values))
        setattr(namespace, self.dest, given)


def each_or_none(values: list[Any] | None, outs: Sequence[str], default: Any = None) -> list[Any]:
    """The values of a flag given once per ``--out`` or not at all (then ``default`` for each)."""
    return values if values is not None else [default for _ in outs]


def out_groups(
    command: str, outs: Sequence[str], values: Mapping[str, Sequence[Any]], hint: str
) -> list[tuple[Any, ...]]:
    """One tuple per ``--out`` group: each flag's value of the group (in the order of
    ``values``), then the ``--out``. Every flag must have one value per ``--out`` (``hint`` says
    which flags may be left out), and no ``--out`` may repeat."""
    from divtrace.errors import UsageError

    wrong = {flag: len(given) for flag, given in values.items() if len(given) != len(outs)}
    if wrong:
        counts = ", ".join(f"{n} {flag}" for flag, n in wrong.items())
        raise UsageError(f"divtrace {command}: {counts} for {len(outs)} --out groups; {hint}")
    repeated = sorted({out for out in outs if outs.count(out) > 1})
    if repeated:
        raise UsageError(f"divtrace {command}: --out {repeated[0]} is given more than once")
    return list(zip(*values.values(), outs, strict=True))
