"""The prompts digest (divtrace.provenance, issue 15.3): what decides a prompts file's content,
recorded by `divtrace prompts`, checked by `divtrace sample` and `divtrace score`."""

from __future__ import annotations

import shutil

import pytest

from divtrace import io
from divtrace.cli import main
from divtrace.errors import ContractError
from divtrace.provenance import DIGEST_KEY, check_prompts, prompt_digest, prompt_spec

from .conftest import REPO

TASK_FILE = REPO / "resources/tasks/demo/gsm8k.jsonl"


def spec(source, **change):  # type: ignore[no-untyped-def]
    base = dict(task="gsm8k", family="gsm8k", source=str(source), n=2, seed=1,
                prompt_style="instructed")  # fmt: skip
    return prompt_spec(**{**base, **change})


def test_digest_follows_what_decides_the_prompts(tmp_path):
    source = tmp_path / "gsm8k.jsonl"
    shutil.copy(TASK_FILE, source)
    first = prompt_digest(spec(source))
    assert prompt_digest(spec(source)) == first and len(first) == 16
    for change in ({"n": 3}, {"seed": 2}, {"prompt_style": "paper"}, {"task": "other"}):
        assert prompt_digest(spec(source, **change)) != first, change
    source.touch()  # an mtime is not content
    assert prompt_digest(spec(source)) == first
    source.write_text(source.read_text() + "\n")  # bytes are
    assert prompt_digest(spec(source)) != first
    hub = prompt_spec(task="t", family="gsm8k", source="openai/gsm8k", n=2, seed=1,
                      prompt_style="paper", revision="abc")  # fmt: skip
    assert hub["source_sha256"] is None


def test_prompts_file_records_its_digest_and_consumers_check_it(tmp_path):
    out = tmp_path / "gsm8k.parquet"
    args = ["prompts", "--task", "gsm8k", "--source", str(TASK_FILE), "--n", "2", "--seed", "1",
            "--prompt-style", "instructed", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    digest = prompt_digest(spec(TASK_FILE))
    assert io.read_metadata(out)[DIGEST_KEY] == digest
    assert check_prompts(out, digest) == digest
    with pytest.raises(ContractError, match=f"{out}: prompts made from another spec"):
        check_prompts(out, "0" * 16)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet")
    with pytest.raises(ContractError, match=f"{garbage}: not a readable Parquet file"):
        check_prompts(garbage, digest)
    # `divtrace score` refuses a shard sampled from other prompts, naming it.
    shard = tmp_path / "shard-0000.parquet"
    io.write_table(io.empty_frame("generations"), shard, "generations",
                   metadata={DIGEST_KEY: "f" * 16})  # fmt: skip
    score = ["score", "--task", "gsm8k", "--prompts", str(out), "--prompts-digest", digest,
             "--generations", str(shard), "--out", str(tmp_path / "q.parquet")]  # fmt: skip
    assert main(score) == 2
    assert not (tmp_path / "q.parquet").exists()
    assert main([*score[:6], "0" * 16, *score[7:]]) == 2  # the prompts file itself
