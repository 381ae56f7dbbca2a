"""Stored results that are corrupt or quietly wrong: page checksums, rows that do not belong to
their file's place in the DAG, and ``divtrace verify`` (issue 15, items 5 and 6)."""

from __future__ import annotations

import polars as pl
import pytest

from divtrace import io
from divtrace.cli import main
from divtrace.errors import ContractError
from divtrace.integrity import check_file

from .test_io import _diversity_rows, flip_a_bit_in_answers, generation_rows


def shard(results, model="base", task="t", cot="on", index=0):
    return results / f"generations/{model}/{task}/cot-{cot}/shard-{index:04d}.parquet"


def prompt_rows(task="t", n=50):
    return pl.DataFrame(
        {
            "task": [task] * n,
            "prompt_id": [f"{task}/{i}" for i in range(n)],
            "index": list(range(n)),
            "text": ["q"] * n,
            "messages": ["[]"] * n,
            "reference": ['"4"'] * n,
            "meta": ["{}"] * n,
        }
    )


@pytest.fixture
def results(tmp_path):
    """A small finished results tree: prompts, two shards, diversity, quality, one table."""
    root = tmp_path / "results"
    io.write_table(prompt_rows(), root / "prompts/t.parquet", "prompts")
    for i in range(2):
        io.write_table(generation_rows(model="base", task="t"), shard(root, index=i), "generations")
    diversity = _diversity_rows().with_columns(model=pl.lit("base"))
    io.write_table(diversity, root / "diversity/base/t/cot-on.parquet", "diversity")
    quality = pl.DataFrame(
        {
            "model": ["base"],
            "task": ["t"],
            "cot": ["on"],
            "prompt_id": ["t/0"],
            "sample": [0],
            "correct": [True],
            "score": [1.0],
            "extracted": ["4"],
            "detail": pl.Series([None], dtype=pl.String),
        }
    )
    io.write_table(quality, root / "quality/base/t/cot-on.parquet", "quality")
    io.write_frame(pl.DataFrame({"model": ["base"], "value": [0.5]}), root / "tables/x.parquet")
    return root


# ---------------------------------------------------------------- rows that do not belong here
def test_a_shard_with_rows_of_another_run_is_refused_naming_the_rows(results):
    path = shard(results, index=1)
    rows = generation_rows(model="base", task="t")
    rows = rows.with_columns(
        model=pl.when(pl.int_range(pl.len()).is_in([3, 7])).then(pl.lit("other")).otherwise("model")
    )
    io.write_table(rows, path, "generations")
    with pytest.raises(ContractError) as err:
        io.read_tables([shard(results), path], "generations")
    message = str(err.value)
    assert str(path) in message and "model should be 'base'" in message
    assert "row 3 (model 'other'), row 7 (model 'other')" in message and "2 row(s)" in message
    # Only the columns read are checked: the truncation table's accounting reads model too.
    with pytest.raises(ContractError, match="row 3"):
        io.read_tables([path], "generations", columns=["model", "prompt_id"])


def test_diversity_refuses_shards_of_another_run(results, capsys):
    other = shard(results, model="think", index=0)
    io.write_table(generation_rows(model="think", task="t"), other, "generations")
    out = results / "diversity/base/t/cot-on.parquet"
    args = ["diversity", "--metrics", "ead", "--generations", str(shard(results)), str(other)]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{other}: 200 row(s) do not belong here (model should be 'base')" in err
    # An output with no place in the DAG: the inputs must hold one run.
    assert main([*args, "--out", str(results.parent / "d.parquet")]) == 2
    assert (
        "the inputs hold 2 runs (model/task/cot: base/t/on; think/t/on)" in capsys.readouterr().err
    )
    assert main([*args[:-1], "--out", str(out)]) == 0  # the run's own shard alone


def test_score_refuses_rows_of_another_task(results, capsys):
    wrong = results.parent / "elsewhere.parquet"
    io.write_table(generation_rows(model="base", task="u"), wrong, "generations")
    code = main(
        [
            "score",
            "--task",
            "t",
            "--family",
            "gsm8k",
            "--prompts",
            str(results / "prompts/t.parquet"),
            "--generations",
            str(wrong),
            "--out",
            str(results / "quality/base/t/cot-on.parquet"),
        ]
    )
    assert code == 2
    assert f"{wrong}: 200 row(s) do not belong here (task should be 't')" in capsys.readouterr().err


def test_summarize_inputs_are_checked_against_their_paths(results):
    bad = _diversity_rows().with_columns(model=pl.lit("base"), task=pl.lit("u"))
    path = results / "diversity/base/t/cot-on.parquet"
    io.write_table(bad, path, "diversity")
    with pytest.raises(ContractError, match=r"cot-on\.parquet: 2 row\(s\) do not belong here"):
        io.read_tables([path], "diversity")


# ---------------------------------------------------------------- divtrace verify
def test_verify_passes_clean_results(results, capsys):
    assert main(["verify", str(results)]) == 0
    assert "6 result file(s) under" in capsys.readouterr().out


def test_verify_names_each_bad_file_with_its_regenerate_command(results, capsys):
    flipped = shard(results, index=1)
    flip_a_bit_in_answers(flipped)
    foreign = shard(results, index=0)
    io.write_table(generation_rows(model="think", task="t"), foreign, "generations")
    (results / "prompts/t.parquet").write_bytes(b"PAR1 not parquet")
    assert main(["verify", str(results), "--configfile", "config/olmo3.yaml"]) == 2
    captured = capsys.readouterr()
    out = captured.out
    assert "3 of 6 result file(s)" in captured.err
    assert f"BAD {flipped}: not a readable Parquet file" in out and "CRC" in out
    assert f"BAD {foreign}: 200 row(s) do not belong here (model should be 'base')" in out
    assert f"BAD {results}/prompts/t.parquet: not a readable Parquet file" in out
    command = "snakemake --cores all --configfile config/olmo3.yaml --forcerun"
    assert f"  regenerate: {command} {flipped}\n" in out
    assert (
        f"{results}/quality/base/t/cot-on.parquet {results}/diversity/base/t/cot-on.parquet" in out
    )
    assert f"{results}/generations/*/t/cot-*/shard-*.parquet" in out  # downstream of the prompts
    assert (
        f"all bad files at once: {command} {foreign} {flipped} {results}/prompts/t.parquet" in out
    )


def test_verify_checks_the_contract_of_each_file(results, capsys):
    # A diversity file at a shard's place, and a quality file whose metadata names no contract
    # but whose place says quality and whose column is missing a required value.
    io.write_table(_diversity_rows(), shard(results, index=1), "diversity")
    frame = io.read_table(results / "quality/base/t/cot-on.parquet").drop("sample")
    io.write_frame(frame, results / "quality/base/t/cot-on.parquet")
    assert main(["verify", str(results)]) == 2
    out = capsys.readouterr().out
    assert "a diversity file where a generations file belongs" in out
    assert "quality table lacks column(s) ['sample']" in out


def test_verify_of_no_directory_is_one_line(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "none")]) == 2
    assert "no such results directory" in capsys.readouterr().err


# ---------------------------------------------------------------- types as the contract says
def test_integer_answers_are_refused_on_write_and_on_read(tmp_path):
    import pyarrow.parquet as pq

    rows = generation_rows(8).with_columns(answer=pl.Series([4, 2, 3, 4, 5, 6, 7, 8]))
    with pytest.raises(ContractError, match="'answer' cannot be stored as string: it holds int64"):
        io.write_table(rows, tmp_path / "w.parquet", "generations")
    path = tmp_path / "generations/m/t/cot-on/shard-0000.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(rows.to_arrow(), path)  # written by something other than divtrace
    for read in (
        lambda: io.read_tables([path], "generations", columns=["prompt_id", "answer"]),
        lambda: io.read_table(path, "generations"),
    ):
        with pytest.raises(ContractError, match="column 'answer' holds int64, the contract says"):
            read()
    assert "holds int64" in (check_file(path) or "")


def test_regenerate_commands_name_files_as_snakemake_does(results, monkeypatch, capsys):
    # Snakemake's outputs are relative to the working directory; an absolute --forcerun path
    # inside it would match none of them.
    monkeypatch.chdir(results.parent)
    flip_a_bit_in_answers(shard(results))
    assert main(["verify", str(results)]) == 2
    out = capsys.readouterr().out
    rel = "results/generations/base/t/cot-on/shard-0000.parquet"
    assert f"  regenerate: snakemake --cores all --forcerun {rel}\n" in out
    with pytest.raises(ContractError, match=f"--forcerun {rel} "):
        io.read_table(shard(results))


def test_diversity_of_several_runs_in_one_call_equals_one_call_per_run(results, tmp_path):
    """The workflow measures every task of a model and CoT mode in one job: each run's file is
    the one a call of its own writes (same rows, same metadata), and no run sees another's rows."""
    other = shard(results, task="u", index=0)
    io.write_table(generation_rows(n=120, model="base", task="u"), other, "generations")
    base = (shard(results),)
    alone = [tmp_path / "alone-t.parquet", tmp_path / "alone-u.parquet"]
    flags = ["--metrics", "ead"]
    assert (
        main(["diversity", "--generations", *map(str, base), "--out", str(alone[0]), *flags]) == 0
    )
    assert main(["diversity", "--generations", str(other), "--out", str(alone[1]), *flags]) == 0
    outs = [
        results / "diversity/base/t/cot-on.parquet",
        results / "diversity/base/u/cot-on.parquet",
    ]
    argv = ["diversity", "--generations", *map(str, base), "--quality", "--out", str(outs[0])]
    argv += ["--generations", str(other), "--quality", "--out", str(outs[1]), *flags]
    assert main(argv) == 0
    for one, many in zip(alone, outs, strict=True):
        assert io.read_table(many, "diversity").equals(io.read_table(one, "diversity"))
        assert io.read_metadata(many) == io.read_metadata(one)
    assert set(io.read_table(outs[1], "diversity")["task"]) == {"u"}
    assert io.read_metadata(outs[1])["inputs"] == [str(other)]


def test_an_empty_prompts_value_gives_its_run_no_prompts(results, tmp_path):
    """The workflow's one job per model gives the prompts (the tests) to its code tasks only:
    the others get an empty --prompts and --prompts-digest, the same as giving none."""
    alone = tmp_path / "alone.parquet"
    flags = ["--metrics", "ead"]
    assert (
        main(["diversity", "--generations", str(shard(results)), "--out", str(alone), *flags]) == 0
    )
    out = results / "diversity/base/t/cot-on.parquet"
    argv = ["diversity", "--generations", str(shard(results)), "--quality", "--out", str(out)]
    assert main([*argv, "--prompts", "", "--prompts-digest", "", *flags]) == 0
    assert io.read_table(out, "diversity").equals(io.read_table(alone, "diversity"))
    assert io.read_metadata(out)["prompts"] is None
    assert io.read_metadata(out) == io.read_metadata(alone)


@pytest.mark.parametrize(
    "groups",
    [
        ["--generations", "a", "--out", "x", "--generations", "b"],  # a run without --out
        ["--generations", "a", "--quality", "--out", "x", "--generations", "b", "--out", "y"],
        ["--generations", "a", "--out", "x", "--generations", "b", "--out", "x"],
    ],
)
def test_diversity_refuses_groups_that_do_not_pair_up(groups, capsys):
    assert main(["diversity", *groups, "--metrics", "ead"]) == 2
    err = capsys.readouterr().err
    assert "divtrace diversity: error:" in err
    assert "--out x is given more than once" in err or "give one --generations" in err
