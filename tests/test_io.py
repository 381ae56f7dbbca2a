from __future__ import annotations

import os
import stat

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from divtrace import io
from divtrace.errors import MissingFileError


def _diversity_rows(n: int = 2) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "model": ["m"] * n,
            "task": ["t"] * n,
            "cot": ["on"] * n,
            "scope": ["per_input"] * n,
            "subset": ["all"] * n,
            "prompt_id": [f"t/{i}" for i in range(n)],
            "metric": ["ead"] * n,
            "value": [0.5] * n,
            "n_outputs": [4] * n,
        }
    )


def test_write_and_read_round_trip_with_metadata(tmp_path):
    path = tmp_path / "sub" / "d.parquet"
    io.write_table(_diversity_rows(), path, "diversity", metadata={"metrics": ["ead"]})
    back = io.read_table(path, "diversity")
    assert list(back.columns[:9]) == io.DIVERSITY.names
    assert io.read_metadata(path) == {"contract": "diversity", "metrics": ["ead"]}
    assert pq.read_schema(path).field("value").type == pa.float64()
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp file left behind


def test_written_files_get_umask_permissions(tmp_path):
    path = io.write_table(_diversity_rows(), tmp_path / "d.parquet", "diversity")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_missing_column_is_named(tmp_path):
    frame = _diversity_rows().drop("metric")
    with pytest.raises(io.ContractError, match="metric"):
        io.write_table(frame, tmp_path / "d.parquet", "diversity")
    assert not (tmp_path / "d.parquet").exists()


def test_null_in_required_column_is_named(tmp_path):
    frame = _diversity_rows().with_columns(
        model=pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("model"))
    )
    with pytest.raises(io.ContractError, match="'model' has 1 null"):
        io.write_table(frame, tmp_path / "d.parquet", "diversity")


def test_bad_type_is_named(tmp_path):
    frame = _diversity_rows().with_columns(n_outputs=pl.Series(["four", "five"]))
    with pytest.raises(io.ContractError, match="n_outputs"):
        io.write_table(frame, tmp_path / "d.parquet", "diversity")


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = io.write_table(_diversity_rows(1), tmp_path / "d.parquet", "diversity")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        io.write_table(_diversity_rows(3), path, "diversity")
    assert len(io.read_table(path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.parquet"]


def test_corrupt_parquet_is_reported_with_its_path(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(io.ContractError, match=r"bad\.parquet: not a readable Parquet"):
        io.read_table(bad)


def test_contract_columns_checked_on_read(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": [1]}), path)
    with pytest.raises(io.ContractError, match="diversity file lacks column"):
        io.read_table(path, "diversity")


def test_empty_frame_has_contract_columns():
    assert list(io.empty_frame("generations").columns) == io.GENERATIONS.names


def test_read_tables_concatenates_in_order_and_projects(tmp_path):
    first = _diversity_rows(2).with_columns(n_dropped=pl.lit(0, dtype=pl.Int64))
    second = _diversity_rows(3).with_columns(
        model=pl.lit("m2"), prompt_id=pl.lit(None, dtype=pl.String), n_dropped=pl.lit(1, pl.Int64)
    )
    paths = [
        io.write_table(second, tmp_path / "b.parquet", "diversity"),
        io.write_table(first, tmp_path / "a.parquet", "diversity"),
    ]
    both = io.read_tables(paths, "diversity")
    assert both.columns == io.DIVERSITY.names  # the contract's columns by default
    assert both["model"].to_list() == ["m2"] * 3 + ["m"] * 2  # files in the order given
    assert both["prompt_id"].null_count() == 3
    assert both.schema["n_outputs"] == pl.Int64 and both.schema["value"] == pl.Float64
    some = io.read_tables(paths, "diversity", columns=["model", "n_dropped"])
    assert some.columns == ["model", "n_dropped"]
    assert some["n_dropped"].to_list() == [1, 1, 1, 0, 0]


def test_read_tables_adds_an_optional_column_only_when_every_file_has_it(tmp_path):
    with_it = _diversity_rows(2).with_columns(n_dropped=pl.lit(0, dtype=pl.Int64))
    without = _diversity_rows(3)
    a = io.write_table(with_it, tmp_path / "a.parquet", "diversity")
    b = io.write_table(without, tmp_path / "b.parquet", "diversity")
    assert "n_dropped" in io.read_tables([a], "diversity", optional=["n_dropped"]).columns
    mixed = io.read_tables([a, b], "diversity", optional=["n_dropped"])
    assert mixed.columns == io.DIVERSITY.names and mixed.height == 5


def test_read_tables_names_the_bad_file(tmp_path):
    good = io.write_table(_diversity_rows(), tmp_path / "good.parquet", "diversity")
    with pytest.raises(io.ContractError, match=r"good\.parquet: file lacks column\(s\) \['x'\]"):
        io.read_tables([good], "diversity", columns=["model", "x"])
    pq.write_table(pa.table({"a": [1]}), tmp_path / "other.parquet")
    with pytest.raises(io.ContractError, match=r"other\.parquet: diversity file lacks"):
        io.read_tables([good, tmp_path / "other.parquet"], "diversity")
    with pytest.raises(MissingFileError, match="gone"):
        io.read_tables([good, tmp_path / "gone.parquet"], "diversity")


def test_read_tables_of_no_file_is_an_empty_contract_frame():
    empty = io.read_tables([], "quality")
    assert empty.is_empty() and empty.schema == io.empty_frame("quality").schema
    assert io.read_tables([], "quality", columns=["model", "correct"]).columns == [
        "model",
        "correct",
    ]


def generation_rows(n: int = 200, model: str = "m", task: str = "t", cot: str = "on"):
    """A generations table of ``n`` rows (four samples a prompt), answers "The answer is 0..9"."""
    return pl.DataFrame(
        {
            "model": [model] * n,
            "task": [task] * n,
            "cot": [cot] * n,
            "prompt_id": [f"{task}/{i // 4}" for i in range(n)],
            "sample": [i % 4 for i in range(n)],
            "seed": list(range(n)),
            "prompt_text": ["q"] * n,
            "raw": [f"raw {i}" for i in range(n)],
            "reasoning": pl.Series([None] * n, dtype=pl.String),
            "answer": [f"The answer is {i % 10}" for i in range(n)],
            "think_closed": pl.Series([None] * n, dtype=pl.Boolean),
            "n_tokens": [5] * n,
            "finish_reason": ["stop"] * n,
            "backend": ["transformers"] * n,
        }
    )


def flip_a_bit_in_answers(path) -> None:
    """Flip one bit inside the ``answer`` column chunk of ``path``, at the first byte whose flip a
    reader without checksums decodes silently into different answers (the bug: "4" became "2")."""
    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(0).column(meta.schema.names.index("answer"))
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    original = pq.read_table(path).column("answer").to_pylist()
    data = path.read_bytes()
    for offset in range(
        start + chunk.total_compressed_size // 2, start + chunk.total_compressed_size
    ):
        flipped = bytearray(data)
        flipped[offset] ^= 0x04
        path.write_bytes(bytes(flipped))
        try:
            changed = pq.read_table(path).column("answer").to_pylist() != original
        except (pa.ArrowException, OSError):
            changed = False
        if changed:
            return
    raise AssertionError("no bit flip in the answer column changes the answers silently")


def test_files_carry_page_checksums_that_reads_verify(tmp_path):
    path = io.write_table(generation_rows(), tmp_path / "shard-0000.parquet", "generations")
    assert pq.ParquetFile(path).metadata.num_row_groups == 1
    flip_a_bit_in_answers(path)  # a plain read now returns other answers, with no error
    with pytest.raises(io.ContractError) as err:
        io.read_table(path, "generations")
    message = str(err.value)
    assert f"{path}: not a readable Parquet file" in message and "CRC" in message
    assert f"snakemake --cores all --forcerun {path}" in message
    with pytest.raises(io.ContractError, match=r"shard-0000\.parquet: not a readable"):
        io.read_tables([path], "generations", columns=["prompt_id", "answer"])
    # Columns the corrupt page does not belong to still read (only what is read is verified).
    assert io.read_tables([path], "generations", columns=["prompt_id"]).height == 200
