"""Parquet file contracts (DESIGN §3) and atomic writes.

Every table the workflow writes goes through :func:`write_table`: the rows are checked against the
file's contract, written to a temporary file in the destination directory, flushed to disk, read
back, and only then moved onto the final path with :func:`os.replace`. A killed step therefore
never leaves a file at the output path that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

METADATA_KEY = b"divtrace"


class ContractError(ValueError):
    """A table or file does not follow its DESIGN §3 contract."""


PROMPTS = pa.schema(
    [
        ("task", pa.string()),
        ("prompt_id", pa.string()),
        ("index", pa.int64()),
        ("text", pa.string()),
        ("messages", pa.string()),
        ("reference", pa.string()),
        ("meta", pa.string()),
    ]
)

GENERATIONS = pa.schema(
    [
        ("model", pa.string()),
        ("task", pa.string()),
        ("cot", pa.string()),
        ("prompt_id", pa.string()),
        ("sample", pa.int64()),
        ("seed", pa.int64()),
        ("prompt_text", pa.string()),
        ("raw", pa.string()),
        ("reasoning", pa.string()),
        ("answer", pa.string()),
        ("think_closed", pa.bool_()),
        ("n_tokens", pa.int64()),
        ("finish_reason", pa.string()),
        ("backend", pa.string()),
    ]
)

QUALITY = pa.schema(
    [
        ("model", pa.string()),
        ("task", pa.string()),
        ("cot", pa.string()),
        ("prompt_id", pa.string()),
        ("sample", pa.int64()),
        ("correct", pa.bool_()),
        ("score", pa.float64()),
        ("extracted", pa.string()),
        ("detail", pa.string()),
    ]
)

DIVERSITY = pa.schema(
    [
        ("model", pa.string()),
        ("task", pa.string()),
        ("cot", pa.string()),
        ("scope", pa.string()),
        ("subset", pa.string()),
        ("prompt_id", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("n_outputs", pa.int64()),
    ]
)

CONTRACTS: dict[str, pa.Schema] = {
    "prompts": PROMPTS,
    "generations": GENERATIONS,
    "quality": QUALITY,
    "diversity": DIVERSITY,
}

# Columns that may hold nulls; every other contract column must be filled in every row.
NULLABLE: dict[str, set[str]] = {
    "prompts": {"text", "messages"},
    "generations": {"reasoning", "think_closed"},
    "quality": {"extracted", "detail"},
    "diversity": {"prompt_id"},
}


def conform(frame: pd.DataFrame, contract: str) -> pa.Table:
    """Return ``frame`` as an Arrow table in the contract's column order and types.

    Extra columns are kept after the contract's columns. Missing columns, uncastable values and
    nulls in required columns raise :class:`ContractError` naming the column.
    """
    schema = CONTRACTS[contract]
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise ContractError(f"{contract} table lacks column(s) {missing}")
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    for field in schema:
        column = frame[field.name]
        try:
            array = pa.array(column.tolist(), type=field.type, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as err:
            raise ContractError(
                f"{contract} column {field.name!r} cannot be stored as {field.type}: {err}"
            ) from err
        if array.null_count and field.name not in NULLABLE[contract]:
            raise ContractError(
                f"{contract} column {field.name!r} has {array.null_count} null value(s)"
            )
        arrays.append(array)
        fields.append(field)
    for name in frame.columns:
        if name not in schema.names:
            arrays.append(pa.array(frame[name].tolist(), from_pandas=True))
            fields.append(pa.field(name, arrays[-1].type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=f"{suffix}.tmp", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file 0600; give the result the mode a plain open() would (umask applies).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_table(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    contract: str,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Atomically write ``frame`` as Parquet following ``contract``, with JSON file metadata."""
    table = conform(frame, contract)
    return _write_arrow(table, path, {"contract": contract, **(metadata or {})})


def write_frame(
    frame: pd.DataFrame, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None
) -> Path:
    """Atomically write a table that has no DESIGN §3 contract (summary tables)."""
    return _write_arrow(pa.Table.from_pandas(frame, preserve_index=False), path, metadata or {})


def write_table_pair(
    frame: pd.DataFrame,
    parquet_path: str | os.PathLike[str],
    csv_path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """A summary table as Parquet (with JSON metadata) and as a spreadsheet-ready CSV."""
    parquet = write_frame(frame, parquet_path, metadata)
    csv = write_text(frame.to_csv(index=False, lineterminator="\n"), csv_path)
    return parquet, csv


def _write_arrow(
    table: pa.Table, path: str | os.PathLike[str], metadata: Mapping[str, Any]
) -> Path:
    meta = json.dumps(dict(metadata), sort_keys=True, default=str)
    table = table.replace_schema_metadata({METADATA_KEY: meta})
    with atomic_path(path, ".parquet") as tmp:
        pq.write_table(table, tmp)
        written = pq.read_table(tmp)
        if written.num_rows != table.num_rows or written.schema.names != table.schema.names:
            raise ContractError(f"{path}: read-back check failed")
    return Path(path)


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Atomically write a text file (CSV, JSON manifests)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_table(
    path: str | os.PathLike[str],
    contract: str | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a Parquet file, checking it is readable and (optionally) has the contract's columns.

    ``columns`` reads only those columns (each must exist; with a contract, each must be one of
    its columns).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as err:
        raise ContractError(f"{path}: not a readable Parquet file ({err})") from err
    if contract is not None:
        missing = [n for n in CONTRACTS[contract].names if n not in names]
        if missing:
            raise ContractError(f"{path}: {contract} file lacks column(s) {missing}")
    if columns is not None:
        absent = [c for c in columns if c not in names]
        if absent:
            raise ContractError(f"{path}: file lacks column(s) {absent}")
    try:
        table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    except (pa.ArrowInvalid, OSError) as err:
        raise ContractError(f"{path}: not a readable Parquet file ({err})") from err
    return table.to_pandas()


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the JSON file metadata written by :func:`write_table` (empty if none)."""
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ContractError(f"{path}: not a readable Parquet file ({err})") from err
    raw = (schema.metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def empty_frame(contract: str) -> pd.DataFrame:
    """An empty DataFrame with the contract's columns (for shards with no prompts)."""
    return CONTRACTS[contract].empty_table().to_pandas()
