from __future__ import annotations

import json

import pytest

from divtrace import io
from divtrace.cli import main
from divtrace.tasks import FAMILIES, TaskDataError, get_family
from divtrace.tasks.gsm8k import gold_answer
from divtrace.tasks.prompts import build_prompts, read_jsonl, select

from .conftest import REPO

DEMO = REPO / "resources" / "tasks" / "demo"


def test_demo_suite_has_three_families_with_enough_prompts():
    for name in ("gsm8k", "writingprompts", "ifeval"):
        records = read_jsonl(DEMO / f"{name}.jsonl")
        assert len(records) >= 8
        for i, record in enumerate(records):
            FAMILIES[name].check_record(record, f"{name}:{i}")


def test_selection_is_seeded_and_stable():
    assert select(10, 8, 1234, "gsm8k") == select(10, 8, 1234, "gsm8k")
    assert select(10, 8, 1234, "gsm8k") != select(10, 8, 99, "gsm8k")
    assert sorted(select(10, None, 1, "t")) == list(range(10))
    # A larger n extends the same order: the first prompts do not change.
    assert select(10, 8, 1234, "gsm8k")[:5] == select(10, 5, 1234, "gsm8k")


def test_gsm8k_prompts_keep_ids_and_gold_answers():
    records = read_jsonl(DEMO / "gsm8k.jsonl")
    table = build_prompts("gsm8k", FAMILIES["gsm8k"], records, n=8, seed=1, source="demo")
    assert list(table["index"]) == list(range(8))
    assert table["prompt_id"].n_unique() == len(table)
    for row in table.iter_rows(named=True):
        number = int(row["prompt_id"].split("/")[1])
        record = records[number]
        assert row["text"] == f"Question: {record['question']}\n\nAnswer:"
        assert json.loads(row["messages"]) == [{"role": "user", "content": record["question"]}]
        assert json.loads(row["reference"])["answer"] == gold_answer(record["answer"])


def test_n_larger_than_dataset_takes_all():
    records = read_jsonl(DEMO / "writingprompts.jsonl")
    table = build_prompts(
        "writingprompts", FAMILIES["writingprompts"], records, n=500, seed=1, source="demo"
    )
    assert len(table) == len(records)


def test_ifeval_ids_come_from_key_and_padded_kwargs_are_sparsified():
    record = {
        "key": 7,
        "prompt": "Write in lowercase.",
        "instruction_id_list": ["change_case:english_lowercase", "length_constraints:number_words"],
        "kwargs": [{"num_words": None}, {"num_words": 40, "relation": "less than", "x": None}],
    }
    table = build_prompts("ifeval", FAMILIES["ifeval"], [record], n=1, seed=0, source="hub")
    assert table["prompt_id"][0] == "ifeval/7"
    assert json.loads(table["reference"][0])["kwargs"] == [
        {},
        {"num_words": 40, "relation": "less than"},
    ]


def test_bad_records_are_named(tmp_path):
    with pytest.raises(
        TaskDataError, match=r"record 0: gsm8k record lacks field\(s\) \['answer'\]"
    ):
        build_prompts("gsm8k", FAMILIES["gsm8k"], [{"question": "q"}], n=1, seed=0, source="x")
    with pytest.raises(TaskDataError, match="####"):
        build_prompts(
            "gsm8k", FAMILIES["gsm8k"], [{"question": "q", "answer": "7"}], n=1, seed=0, source="x"
        )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "#### 1"}\n{oops\n')
    with pytest.raises(TaskDataError, match=r"bad.jsonl:2: not valid JSON"):
        read_jsonl(bad)
    with pytest.raises(TaskDataError, match="unknown task family 'chess'"):
        get_family("chess")


def test_prompts_command_writes_the_contract(tmp_path, capsys):
    out = tmp_path / "p.parquet"
    rc = main(
        [
            "prompts",
            "--task",
            "gsm8k",
            "--source",
            str(DEMO / "gsm8k.jsonl"),
            "--n",
            "8",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    table = io.read_table(out, "prompts")
    assert len(table) == 8
    assert io.read_metadata(out)["n_available"] == 10


def test_prompts_command_reports_missing_source(tmp_path, capsys):
    rc = main(
        [
            "prompts",
            "--task",
            "gsm8k",
            "--source",
            str(tmp_path / "nope.jsonl"),
            "--out",
            str(tmp_path / "p.parquet"),
        ]
    )
    assert rc == 2
    assert "nope.jsonl: no such file" in capsys.readouterr().err
    assert not (tmp_path / "p.parquet").exists()


def test_real_gsm8k_subset_loads(shared_real):
    records = read_jsonl(shared_real / "gsm8k_test_100.jsonl")
    table = build_prompts("gsm8k", FAMILIES["gsm8k"], records, n=100, seed=1234, source="real")
    assert len(table) == len(records)
    answers = [json.loads(r)["answer"] for r in table["reference"]]
    assert all(a.lstrip("-").replace(".", "").isdigit() for a in answers)


def test_real_ifeval_prompts_load(shared_real):
    records = read_jsonl(shared_real / "ifeval_input_data.jsonl")
    table = build_prompts("ifeval", FAMILIES["ifeval"], records, n=None, seed=1234, source="real")
    assert len(table) == len(records)
    assert table["prompt_id"].n_unique() == len(table)


def test_prompts_table_has_the_contract_types_even_when_empty():
    records = read_jsonl(DEMO / "gsm8k.jsonl")
    contract = io.empty_frame("prompts").schema
    table = build_prompts("gsm8k", FAMILIES["gsm8k"], records, n=3, seed=1, source="demo")
    assert table.schema == contract
    assert build_prompts("gsm8k", FAMILIES["gsm8k"], records, n=0, seed=1, source="d").schema == (
        contract
    )
    io.conform(table, "prompts")  # raises if the contract is broken


def test_a_non_utf8_byte_is_named_with_file_and_line(tmp_path, capsys):
    source = tmp_path / "bad.jsonl"
    good = b'{"question": "1+1?", "answer": "#### 2"}\n'
    source.write_bytes(good + b'{"question": "caf\xe9?", "answer": "#### 3"}\n')
    with pytest.raises(
        TaskDataError, match=r"bad\.jsonl:2: not UTF-8 text \(byte 0xe9 at column 18\)"
    ):
        read_jsonl(source)
    rc = main(["prompts", "--task", "gsm8k", "--source", str(source), "--out", str(tmp_path / "p")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "task 'gsm8k':" in err and "bad.jsonl:2: not UTF-8" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("kind", ["directory", "hub id"])
def test_an_unloadable_source_is_one_line_naming_task_and_source(
    tmp_path, monkeypatch, capsys, kind, hub_offline
):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    if kind == "directory":
        source = tmp_path / "a-dir"
        (source / "sub").mkdir(parents=True)
        (source / "notes.bin").write_bytes(b"\x00\x01")
    else:
        source = "nobody-here/no-such-dataset-divtrace"
    rc = main(["prompts", "--task", "gsm8k", "--source", str(source), "--out", str(tmp_path / "p")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith(f"divtrace prompts: error: task 'gsm8k': {source}: ")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_duplicate_source_records_are_dropped_and_counted(tmp_path, capsys):
    from divtrace.tasks.prompts import build_prompts_and_selection

    records = [{"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"} for i in range(6)]
    records += [dict(records[2]), dict(records[4]), dict(records[2])]  # rows 6, 7, 8
    family = get_family("gsm8k")
    table, report = build_prompts_and_selection(
        "gsm8k", family, records, n=None, seed=1, source="s.jsonl"
    )
    assert table.height == 6 and table.get_column("text").n_unique() == 6
    assert table.get_column("index").to_list() == list(range(6))
    assert report["n_duplicates_dropped"] == 3
    # [row, the earlier row of the selection order whose prompt it repeats]
    for row, first in report["duplicates"]:
        assert row != first and records[row] == records[first]
    kept = {json.loads(m)["row"] for m in table.get_column("meta")}
    dropped = {row for row, _ in report["duplicates"]}
    assert len(dropped) == 3 and kept | dropped == set(range(9)) and not kept & dropped
    # n prompts are still n distinct ones when the source has them.
    table, _ = build_prompts_and_selection("gsm8k", family, records, n=5, seed=1, source="s")
    assert table.height == 5 and table.get_column("text").n_unique() == 5
    # The command warns with the count and records it in the file's metadata.
    source = tmp_path / "dups.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "p.parquet"
    assert main(["prompts", "--task", "gsm8k", "--source", str(source), "--out", str(out)]) == 0
    assert "warning: gsm8k: dropped 3 record(s)" in capsys.readouterr().err
    assert io.read_metadata(out)["selection"]["n_duplicates_dropped"] == 3
    # The paper's style selects what the paper's code selected: duplicates stay, counted.
    paper, report = build_prompts_and_selection(
        "gsm8k", family, records, n=None, seed=1, source="s.jsonl", style="paper"
    )
    assert paper.height == 9 and paper.get_column("text").n_unique() == 6
    assert (report["n_duplicates_dropped"], report["n_duplicates_kept"]) == (0, 3)
