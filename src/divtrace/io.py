"""Parquet file contracts (docs/design.md §3) and atomic writes.

Every table the workflow writes goes through :func:`write_table`: the rows are checked against the
file's contract, written to a temporary file in the destination directory, flushed to disk, read
back, and only then moved onto the final path with :func:`os.replace`. A killed step therefore
never leaves a file at the output path that looks complete.

Integrity: every data page is written with a CRC-32 checksum (Parquet's page checksums) and
:func:`read_table` / :func:`read_tables` verify them on read (through pyarrow: polars' reader does
not check them). A flipped bit in a stored file is a :class:`ContractError` naming the file and the
Snakemake command that regenerates it (:func:`regenerate_hint`), never a changed value.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import polars.selectors as cs
import pyarrow as pa
import pyarrow.parquet as pq

from divtrace.errors import ContractError, MissingFileError
from divtrace.names import DIVERSITY_FILE, PROMPTS_FILE, QUALITY_FILE, SHARD_FILE

METADATA_KEY = b"divtrace"


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

#: ``divtrace judge``'s rows (:data:`divtrace.names.JUDGEMENT_COLUMNS`, in that order).
JUDGEMENTS = pa.schema(
    [
        ("model", pa.string()),
        ("task", pa.string()),
        ("cot", pa.string()),
        ("prompt_id", pa.string()),
        ("sample", pa.int64()),
        ("protocol", pa.string()),
        ("opponent", pa.string()),
        ("swapped", pa.bool_()),
        ("raw", pa.string()),
        ("parsed", pa.bool_()),
        ("verdict", pa.string()),
        ("score", pa.float64()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("judge_model", pa.string()),
        ("template_version", pa.string()),
    ]
)

CONTRACTS: dict[str, pa.Schema] = {
    "prompts": PROMPTS,
    "generations": GENERATIONS,
    "quality": QUALITY,
    "diversity": DIVERSITY,
    "judgements": JUDGEMENTS,
}

# Columns that may hold nulls; every other contract column must be filled in every row.
NULLABLE: dict[str, set[str]] = {
    "prompts": {"text", "messages"},
    "generations": {"reasoning", "think_closed"},
    "quality": {"extracted", "detail"},
    "diversity": {"prompt_id", "value"},  # value: null for a set of fewer than 2 outputs
    # verdict, score: null for an answer that could not be parsed; tokens: null if not reported
    "judgements": {"verdict", "score", "prompt_tokens", "completion_tokens"},
}


#: Where each contract's files live in the DAG (the templates of :mod:`divtrace.names`).
PLACES: dict[str, str] = {
    "prompts": PROMPTS_FILE,
    "generations": SHARD_FILE,
    "quality": QUALITY_FILE,
    "diversity": DIVERSITY_FILE,
}
#: The columns of a file that its place in the DAG fixes (a wildcard of its path).
PLACE_COLUMNS: tuple[str, ...] = ("model", "task", "cot")


def _place_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template.removeprefix("{results}/"))
    body = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return re.compile(rf"(?:^|/){body}$")


_PLACE_PATTERNS = {contract: _place_pattern(t) for contract, t in PLACES.items()}


def place_of(path: str | os.PathLike[str]) -> tuple[str, dict[str, str]] | None:
    """The contract and the wildcards of a path laid out as the workflow lays out its files
    (``…/generations/{model}/{task}/cot-{cot}/shard-{shard}.parquet`` → ``("generations",
    {"model": …, "task": …, "cot": …, "shard": …})``); None for any other path."""
    text = Path(path).as_posix()
    for contract, pattern in _PLACE_PATTERNS.items():
        match = pattern.search(text)
        if match:
            return contract, match.groupdict()
    return None


def check_place(
    frame: pl.DataFrame, path: str | os.PathLike[str], expected: Mapping[str, str]
) -> None:
    """Refuse rows whose ``model``/``task``/``cot`` differ from what ``expected`` says (the
    file's place in the DAG), naming the rows: a shard of one run holds that run's rows only."""
    indexed = frame.with_row_index("row")
    for column, value in expected.items():
        if column not in PLACE_COLUMNS or column not in frame.columns:
            continue
        bad = indexed.filter(pl.col(column).ne_missing(value))
        if bad.height:
            rows = ", ".join(
                f"row {r} ({column} {v!r})" for r, v in bad.select("row", column).head(5).rows()
            )
            more = f" and {bad.height - 5} more" if bad.height > 5 else ""
            raise ContractError(
                f"{path}: {bad.height} row(s) do not belong here ({column} should be {value!r}): "
                f"{rows}{more}"
            )


def expected_run(out: str | os.PathLike[str], frame: pl.DataFrame) -> dict[str, str]:
    """The run (model, task, cot) whose rows a step writing ``out`` may read: the wildcards of
    ``out``'s place in the DAG, else the one run of ``frame`` (several runs are refused)."""
    place = place_of(out)
    if place is not None and place[0] in ("quality", "diversity"):
        return {k: v for k, v in place[1].items() if k in PLACE_COLUMNS}
    keys = [c for c in PLACE_COLUMNS if c in frame.columns]
    runs = frame.select(keys).unique(maintain_order=True)
    if runs.height > 1:
        listed = "; ".join("/".join(str(v) for v in row) for row in runs.head(5).rows())
        raise ContractError(
            f"{out}: the inputs hold {runs.height} runs ({'/'.join(keys)}: {listed}); "
            "one output is computed from the rows of one run"
        )
    return dict(zip(keys, runs.row(0), strict=True)) if runs.height else {}


def conform(frame: pl.DataFrame, contract: str) -> pa.Table:
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
        source = _arrow(frame.get_column(field.name))
        if _kind(source.type) not in (_kind(field.type), "null"):
            raise ContractError(
                f"{contract} column {field.name!r} cannot be stored as {field.type}: "
                f"it holds {source.type}"
            )
        try:
            array = source.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
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
            arrays.append(_arrow(frame.get_column(name)))
            fields.append(pa.field(name, arrays[-1].type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _kind(arrow_type: pa.DataType) -> str:
    """The family of an Arrow type that a contract column accepts: integers are numbers too."""
    if pa.types.is_null(arrow_type):
        return "null"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    ):
        return "string"
    return str(arrow_type)


def _arrow(column: pl.Series) -> pa.Array:
    """A polars column as one Arrow array, with polars' large/view strings as plain strings
    (the contracts' type)."""
    array = column.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        array = array.cast(pa.string())
    if column.dtype == pl.Null:
        array = pa.nulls(len(array))
    return array


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
    frame: pl.DataFrame,
    path: str | os.PathLike[str],
    contract: str,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Atomically write ``frame`` as Parquet following ``contract``, with JSON file metadata."""
    table = conform(frame, contract)
    return _write_arrow(table, path, {"contract": contract, **(metadata or {})})


def _summary_arrow(frame: pl.DataFrame) -> pa.Table:
    """A summary table as Arrow: NaN stored as null (a missing value), strings as strings."""
    frame = frame.with_columns(cs.float().fill_nan(None))
    return pa.Table.from_arrays(
        [_arrow(frame.get_column(name)) for name in frame.columns], names=frame.columns
    )


def write_frame(
    frame: pl.DataFrame, path: str | os.PathLike[str], metadata: Mapping[str, Any] | None = None
) -> Path:
    """Atomically write a table that has no docs/design.md §3 contract (summary tables).

    NaN (what numpy gives for a missing ratio or interval) is stored as null.
    """
    return _write_arrow(_summary_arrow(frame), path, metadata or {})


def write_table_pair(
    frame: pl.DataFrame,
    parquet_path: str | os.PathLike[str],
    csv_path: str | os.PathLike[str],
    metadata: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """A summary table as Parquet (with JSON metadata) and as a spreadsheet-ready CSV (missing
    values empty)."""
    parquet = write_frame(frame, parquet_path, metadata)
    clean = frame.with_columns(cs.float().fill_nan(None))
    csv = write_text(clean.write_csv(line_terminator="\n"), csv_path)
    return parquet, csv


def workflow_path(path: str | os.PathLike[str]) -> str:
    """``path`` as Snakemake names its outputs: relative to the working directory when it lies
    inside it (Snakemake matches an absolute ``--forcerun`` path against no output)."""
    text = os.fspath(path)
    if os.path.isabs(text):
        here = os.path.abspath(os.getcwd())
        if os.path.commonpath([here, os.path.abspath(text)]) == here:
            return os.path.relpath(text, here)
    return text


def regenerate_hint(path: str | os.PathLike[str]) -> str:
    """How to make ``path`` again: force the rule that wrote it (Snakemake then reruns every job
    downstream of it, whose input is now newer)."""
    return (
        f"regenerate it with: snakemake --cores all --forcerun {workflow_path(path)} "
        "(with the run's --configfile; what depends on it reruns too)"
    )


def _unreadable(path: Path, err: Exception) -> ContractError:
    detail = " ".join(str(err).split())
    return ContractError(f"{path}: not a readable Parquet file ({detail}); {regenerate_hint(path)}")


def _read_arrow(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """Every row of ``columns`` (default all) of a Parquet file, its page checksums verified."""
    try:
        return pq.read_table(
            path,
            columns=list(columns) if columns is not None else None,
            page_checksum_verification=True,
        )
    except (pa.ArrowException, OSError) as err:
        raise _unreadable(path, err) from err


def _write_arrow(
    table: pa.Table, path: str | os.PathLike[str], metadata: Mapping[str, Any]
) -> Path:
    meta = json.dumps(dict(metadata), sort_keys=True, default=str)
    table = table.replace_schema_metadata({METADATA_KEY: meta})
    with atomic_path(path, ".parquet") as tmp:
        pq.write_table(table, tmp, write_page_checksum=True)
        written = pq.read_table(tmp, page_checksum_verification=True)
        if written.num_rows != table.num_rows or written.schema.names != table.schema.names:
            raise RuntimeError(f"{path}: read-back check failed")  # pyarrow or the disk
    return Path(path)


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Atomically write a text file (CSV, JSON manifests)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _check_file(path: Path, contract: str | None, columns: Sequence[str] | None) -> list[str]:
    """The column names of a readable Parquet file that has what is asked of it."""
    if not path.exists():
        raise MissingFileError(f"{path}: no such file")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as err:
        raise _unreadable(path, err) from err
    names = list(schema.names)
    if contract is not None:
        missing = [n for n in CONTRACTS[contract].names if n not in names]
        if missing:
            raise ContractError(
                f"{path}: {contract} file lacks column(s) {missing}; {regenerate_hint(path)}"
            )
        # Types as the contract says: integer answers are not quietly read as numbers (and
        # turned into strings downstream).
        for field in CONTRACTS[contract]:
            stored = schema.field(field.name).type
            if _kind(stored) not in (_kind(field.type), "null"):
                raise ContractError(
                    f"{path}: {contract} column {field.name!r} holds {stored}, the contract says "
                    f"{field.type}; {regenerate_hint(path)}"
                )
    if columns is not None:
        absent = [c for c in columns if c not in names]
        if absent:
            raise ContractError(f"{path}: file lacks column(s) {absent}")
    return names


def read_table(
    path: str | os.PathLike[str],
    contract: str | None = None,
    columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Read a Parquet file, checking it is readable and (optionally) has the contract's columns.

    ``columns`` reads only those columns (each must exist).
    """
    path = Path(path)
    _check_file(path, contract, columns)
    frame = pl.from_arrow(_read_arrow(path, columns))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _checked_columns(
    files: Sequence[Path], contract: str, wanted: list[str], optional: Sequence[str]
) -> list[str]:
    """Check every file (:func:`_check_file`); ``wanted`` plus each ``optional`` column that
    every file has."""
    for path in files:
        _check_file(path, contract, wanted)
    if not optional:
        return wanted
    names = [set(pq.read_schema(path).names) for path in files]
    return wanted + [c for c in optional if c not in wanted and all(c in n for n in names)]


def scan_tables(
    paths: Sequence[str | os.PathLike[str]],
    contract: str,
    columns: Sequence[str] | None = None,
    optional: Sequence[str] = (),
) -> pl.LazyFrame:
    """A lazy scan of many files of one contract, reading only ``columns`` (default: the
    contract's) when collected, and each of the ``optional`` columns that every file has.

    Every file is checked first (readable, with the columns asked for), so a bad file is named;
    files are concatenated in the order given. No file gives an empty frame of the contract.
    Page checksums are not verified here (polars does not check them): :func:`read_tables` does.
    """
    wanted = list(columns) if columns is not None else list(CONTRACTS[contract].names)
    if not paths:
        return empty_frame(contract).select(wanted).lazy()
    files = [Path(p) for p in paths]
    wanted = _checked_columns(files, contract, wanted, optional)
    return pl.scan_parquet(files, missing_columns="insert", extra_columns="ignore").select(wanted)


def read_tables(
    paths: Sequence[str | os.PathLike[str]],
    contract: str,
    columns: Sequence[str] | None = None,
    optional: Sequence[str] = (),
    expect: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """:func:`scan_tables`, collected: the files' rows concatenated in order, each file's page
    checksums verified (pyarrow reads the columns asked for; polars concatenates).

    A file at a place of the workflow's layout (:func:`place_of`) must hold the rows of that
    place only: a shard of ``base/gsm8k/cot-on`` with a row of another model is refused.
    ``expect`` adds what the caller knows (``{"model": …, "task": …, "cot": …}`` of the run it
    computes), checked in every file the same way (:func:`check_place`)."""
    wanted = list(columns) if columns is not None else list(CONTRACTS[contract].names)
    if not paths:
        return empty_frame(contract).select(wanted)
    files = [Path(p) for p in paths]
    wanted = _checked_columns(files, contract, wanted, optional)
    frames = []
    for path in files:
        frame = pl.from_arrow(_read_arrow(path, wanted))
        assert isinstance(frame, pl.DataFrame)
        place = place_of(path)
        here = dict(place[1]) if place is not None and place[0] == contract else {}
        check_place(frame, path, {**here, **(expect or {})})
        frames.append(frame)
    try:
        return pl.concat(frames, how="vertical_relaxed")
    except pl.exceptions.PolarsError as err:
        raise ContractError(f"{contract} files cannot be read together: {err}") from err


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the JSON file metadata written by :func:`write_table` (empty if none)."""
    if not Path(path).exists():
        raise MissingFileError(f"{path}: no such file")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as err:
        raise _unreadable(Path(path), err) from err
    raw = (schema.metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def empty_frame(contract: str) -> pl.DataFrame:
    """An empty frame with the contract's columns and types (for shards with no prompts)."""
    frame = pl.from_arrow(CONTRACTS[contract].empty_table())
    assert isinstance(frame, pl.DataFrame)
    return frame
