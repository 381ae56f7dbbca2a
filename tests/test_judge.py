"""LLM judges: protocols (parse, swap, score), templates, the cache, and ``divtrace judge`` against
a real chat-completions / Batch API stand-in on 127.0.0.1 (:mod:`tests.judge_stub`)."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import polars as pl
import pytest

from divtrace import io
from divtrace.cli import main
from divtrace.errors import ContractError, UsageError
from divtrace.judge import protocols as P
from divtrace.judge.cache import AnswerCache, ChatRequest
from divtrace.judge.templates import load_template, parse_template
from divtrace.names import JUDGE_PROTOCOLS, JUDGE_TASK_PROTOCOLS, JUDGEMENT_COLUMNS
from tests.judge_stub import JudgeStub, StubState

SECRET = "sk-divtrace-test-7f3a91c2e5"
KEY_ENV = "DIVTRACE_TEST_JUDGE_KEY"


# --------------------------------------------------------------------------- protocols
def _paper_swap(source: str, a: str, b: str) -> bool:
    """PAPER.md §6.5: swapped when the last hex digit of SHA-256(source||a||b) is odd."""
    h = hashlib.sha256(f"{source}\n||\n{a}\n||\n{b}".encode()).hexdigest()
    return h[-1] in "13579bdf"


def test_ranking_swap_is_the_papers_parity_rule_and_about_half() -> None:
    rng = random.Random(0)
    flags = []
    for _ in range(400):
        s, a, b = (" ".join(rng.choice("abcdefgh") for _ in range(6)) for _ in range(3))
        flags.append(P.ranking_swapped(s, a, b))
        assert P.ranking_swapped(s, a, b) == _paper_swap(s, a, b)
        assert P.ranking_swapped(s, a, b) == P.ranking_swapped(s, a, b)
    assert 150 < sum(flags) < 250


@pytest.mark.parametrize(
    ("text", "swapped", "verdict"),
    [
        ("[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]", False, "win"),
        ("[{'model': 'model_1', 'rank': 1}, {'model': 'model_2', 'rank': 2}]", True, "loss"),
        ("Ranking: [{'model': 'model_2', 'rank': 1}, {'model': 'model_1', 'rank': 2}].", False,
         "loss"),
        ("[{'model': 'model_2', 'rank': 1}, {'model': 'model_1', 'rank': 2}]", True, "win"),
        ('[{"model": "model_1", "rank": 1}, {"model": "model_2", "rank": 1}]', True, "tie"),
    ],
)  # fmt: skip
def test_parse_ranking_undoes_the_swap(text: str, swapped: bool, verdict: str) -> None:
    parsed = P.parse_ranking(text, swapped)
    assert parsed.verdict == verdict
    assert parsed.score == {"win": 1.0, "tie": 0.5, "loss": 0.0}[verdict]


@pytest.mark.parametrize(
    "text",
    [
        "model_1 is better",
        "[{'model': 'model_1', 'rank': 1}, {'model': 'model_1', 'rank': 2}]",
        "[{'model': 'model_1', 'rank': 3}, {'model': 'model_2', 'rank': 1}]",
        "[{'model': 'model_1', 'rank': True}, {'model': 'model_2', 'rank': 2}]",
        "",
    ],
)
def test_parse_ranking_failure_is_missing_not_a_tie(text: str) -> None:
    parsed = P.parse_ranking(text, False)
    assert parsed == P.UNPARSED and not parsed.ok and parsed.score is None


def test_parse_pairwise_labels_and_flip() -> None:
    expected = {"A>>B": 1.0, "A>B": 0.75, "A=B": 0.5, "B>A": 0.25, "B>>A": 0.0}
    for label, score in expected.items():
        text = f"Reasons. My final verdict is [[{label}]]. Again: [[{label}]]"
        assert P.parse_pairwise(text, False).score == score
        assert P.parse_pairwise(text, True).score == 1.0 - score
        assert P.parse_pairwise(text, True).verdict == f"[[{label}]]"
    assert not P.parse_pairwise("[[A>B]] or maybe [[B>A]]", False).ok
    assert not P.parse_pairwise("A is better", False).ok
    assert not P.parse_pairwise("[A>B]", False).ok


def test_parse_wb_score() -> None:
    assert P.parse_wb_score('```json\n{"score": 7, "x": "y"}\n```').score == 7.0
    assert P.parse_wb_score('Here: {"strengths": "a", "score": "8"} done').score == 8.0
    assert P.parse_wb_score('{"score": 7.5}').verdict == "7.5"
    for bad in ('{"score": 11}', '{"score": 0}', '{"rating": 5}', "score: 7", '{"score": true}'):
        assert P.parse_wb_score(bad) == P.UNPARSED, bad
    assert P.wb_score([7.0, 8.0, 6.0]) == pytest.approx(4.0)  # (7 − 5) × 2
    assert P.wb_score([5.0]) == 0.0


def test_combine_orders_mean_and_consistency() -> None:
    base = {
        "model": "m",
        "task": "wp",
        "cot": "on",
        "opponent": "base",
        "protocol": "base_pairwise",
    }
    rows = [
        {**base, "prompt_id": "p1", "sample": 0, "swapped": False, "score": 1.0},
        {**base, "prompt_id": "p1", "sample": 0, "swapped": True, "score": 0.75},
        {**base, "prompt_id": "p2", "sample": 0, "swapped": False, "score": 0.75},
        {**base, "prompt_id": "p2", "sample": 0, "swapped": True, "score": 0.25},
        {**base, "prompt_id": "p3", "sample": 0, "swapped": False, "score": 0.75},
        {**base, "prompt_id": "p3", "sample": 0, "swapped": True, "score": None},
    ]
    out = P.combine_orders(pl.DataFrame(rows)).sort("prompt_id")
    assert out.get_column("score").to_list() == [0.875, 0.5, None]
    assert out.get_column("consistent").to_list() == [True, False, None]


def test_every_task_protocol_has_a_template_and_the_names_agree() -> None:
    assert set(JUDGE_TASK_PROTOCOLS.values()) == set(JUDGE_PROTOCOLS)
    assert tuple(io.JUDGEMENTS.names) == JUDGEMENT_COLUMNS
    assert len(JUDGE_TASK_PROTOCOLS) == 7
    for protocol in JUDGE_PROTOCOLS:
        template = load_template(protocol)
        assert template.protocol == protocol and template.version.startswith("1+")
    assert load_template("reference_ranking").max_tokens == 256
    assert load_template("base_pairwise").max_tokens == 1024
    assert load_template("wb_score").system is None  # the paper's WB-Score has none


def test_template_version_follows_content_and_bad_templates_are_refused(tmp_path: Path) -> None:
    text = "version: 1\nprotocol: wb_score\nmax_tokens: 9\n=== user ===\n${source} ${answer}\n"
    one = parse_template(text, "a")
    two = parse_template(text + "x", "b")
    assert one.version != two.version and one.version.startswith("1+")
    assert one.messages(source="S", answer="A", checklist="C") == [
        {"role": "user", "content": "S A"}
    ]
    with pytest.raises(UsageError, match="unknown placeholder"):
        parse_template(text.replace("${answer}", "${answer_a}"), "c")
    with pytest.raises(UsageError, match="is for"):
        parse_template(text, "d", protocol="base_pairwise")
    with pytest.raises(UsageError, match="no file"):
        load_template("wb_score", tmp_path / "absent.txt")


def test_cache_key_covers_model_template_messages_and_sampling(tmp_path: Path) -> None:
    msg = ({"role": "user", "content": "hi"},)
    base = ChatRequest("judge-a", "1+abc", msg, 256)
    assert base.key == ChatRequest("judge-a", "1+abc", msg, 256).key
    for other in (
        ChatRequest("judge-b", "1+abc", msg, 256),
        ChatRequest("judge-a", "1+abd", msg, 256),
        ChatRequest("judge-a", "1+abc", ({"role": "user", "content": "ho"},), 256),
        ChatRequest("judge-a", "1+abc", msg, 255),
        ChatRequest("judge-a", "1+abc", msg, 256, temperature=0.7),
    ):
        assert other.key != base.key
    cache = AnswerCache(tmp_path)
    assert cache.missing([base, base]) == [base]
    from divtrace.judge.cache import Answer

    cache.put(base, Answer("ok", 3, 1))
    assert cache.get(base.key) == Answer("ok", 3, 1)
    assert cache.missing([base]) == []
    path = next(tmp_path.rglob("*.json"))
    path.write_text("{broken")
    with pytest.raises(ContractError, match="damaged"):
        cache.get(base.key)


# --------------------------------------------------------------------------- input files
ANSWERS = {  # prompt → (model's answer, reference): the stub prefers the longer one
    "0": ("a long and careful summary of the post", "short ref"),
    "1": ("tiny", "a reference that is longer than the answer"),
    "2": ("same!", "equal"),
    "3": ("another long answer that wins", "brief"),
    "4": ("no", "the reference wins here"),
    "5": ("medium length answer", "ref"),
}


def _prompts(path: Path, task: str, family: str, reference: dict[str, dict]) -> Path:
    rows = [
        {
            "task": task,
            "prompt_id": f"{task}/{pid}",
            "index": i,
            "text": f"Post {pid}\nTL;DR:",
            "messages": json.dumps([{"role": "user", "content": f"Summarise post {pid}."}]),
            "reference": json.dumps(ref),
            "meta": json.dumps({"family": family}),
        }
        for i, (pid, ref) in enumerate(reference.items())
    ]
    io.write_table(pl.DataFrame(rows), path, "prompts")
    return path


def _generations(path: Path, model: str, task: str, answers: dict[str, list[str]]) -> Path:
    rows = [
        {
            "model": model,
            "task": task,
            "cot": "on",
            "prompt_id": f"{task}/{pid}",
            "sample": k,
            "seed": k,
            "prompt_text": "",
            "raw": f"<think>hidden reasoning that is very long indeed</think>{text}",
            "reasoning": "hidden reasoning that is very long indeed",
            "answer": text,
            "think_closed": True,
            "n_tokens": 5,
            "finish_reason": "stop",
            "backend": "hf",
        }
        for pid, texts in answers.items()
        for k, text in enumerate(texts)
    ]
    io.write_table(pl.DataFrame(rows), path, "generations")
    return path


def _judge(stub: JudgeStub, tmp_path: Path, *extra: str, out: str = "j.parquet") -> int:
    return main(
        [
            "judge",
            "--backend",
            "openai",
            "--base-url",
            stub.url,
            "--judge-model",
            "stub-judge",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--api-key-env",
            KEY_ENV,
            "--max-retries",
            "3",
            "--timeout",
            "10",
            "--concurrency",
            "2",
            "--out",
            str(tmp_path / out),
            *extra,
        ]
    )


@pytest.fixture
def tldr(tmp_path: Path) -> list[str]:
    prompts = _prompts(
        tmp_path / "tldr.parquet",
        "tldr",
        "tldr",
        {pid: {"reference": ref} for pid, (_, ref) in ANSWERS.items()},
    )
    # sample 1 exists but is not judged by default (the paper judges sample 0 only)
    gens = _generations(
        tmp_path / "g.parquet", "sft", "tldr", {p: [a, "x" * 200] for p, (a, _) in ANSWERS.items()}
    )
    return ["--task", "tldr", "--prompts", str(prompts), "--generations", str(gens)]


def _expected_ranking(answer: str, reference: str) -> str:
    if len(answer) == len(reference):
        return "tie"
    return "win" if len(answer) > len(reference) else "loss"


def _files_text(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_ranking_against_a_stub_server_swaps_undone_cached_key_private(
    tmp_path: Path, tldr: list[str], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    with JudgeStub() as stub:
        assert _judge(stub, tmp_path, *tldr) == 0
        sent = stub.state.count("/v1/chat/completions")
        out = io.read_table(tmp_path / "j.parquet", "judgements")
        assert out.columns == list(JUDGEMENT_COLUMNS)
        assert sent == len(ANSWERS) == out.height  # sample 0 only
        assert out.get_column("sample").unique().to_list() == [0]
        assert set(out.get_column("swapped")) == {True, False}  # both positions occur
        for row in out.iter_rows(named=True):
            answer, reference = ANSWERS[row["prompt_id"].split("/")[1]]
            assert row["verdict"] == _expected_ranking(answer, reference), row
            assert row["parsed"] and row["opponent"] == "reference"
            assert row["protocol"] == "reference_ranking" and row["judge_model"] == "stub-judge"
            assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
        # the CoT never reaches the judge
        bodies = [json.loads(r["body"]) for r in stub.state.requests]
        assert all("hidden reasoning" not in json.dumps(b) for b in bodies)
        assert all(b["temperature"] == 0 and b["max_tokens"] == 256 for b in bodies)
        # the key travels as the bearer token only
        assert {r["authorization"] for r in stub.state.requests} == {f"Bearer {SECRET}"}
        # a second run asks nothing and writes the same rows
        first = out
        assert _judge(stub, tmp_path, *tldr, out="j2.parquet") == 0
        assert stub.state.count("/v1/chat/completions") == sent
        assert io.read_table(tmp_path / "j2.parquet", "judgements").equals(first)
    captured = capsys.readouterr()
    assert SECRET not in captured.err + captured.out
    assert SECRET.encode() not in _files_text(tmp_path)


def test_retries_on_429_and_500(tmp_path: Path, tldr: list[str], monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    with JudgeStub(state=StubState(fail=[429, 500, 503])) as stub:
        assert _judge(stub, tmp_path, *tldr, "--concurrency", "1") == 0
        assert stub.state.count("/v1/chat/completions") == len(ANSWERS) + 3
    out = io.read_table(tmp_path / "j.parquet", "judgements")
    assert out.get_column("parsed").all()


def test_unanswered_requests_fail_the_run_and_a_rerun_asks_only_for_them(
    tmp_path: Path, tldr: list[str], monkeypatch, capsys
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    # the first request fails 1 + 1 retry times; the others are answered
    with JudgeStub(state=StubState(fail=[500, 500])) as stub:
        assert _judge(stub, tmp_path, *tldr, "--concurrency", "1", "--max-retries", "1") == 2
        assert "1 of 6 judge request(s) got no answer" in capsys.readouterr().err
        assert not (tmp_path / "j.parquet").exists()
        before = stub.state.count("/v1/chat/completions")
        assert _judge(stub, tmp_path, *tldr) == 0
        assert stub.state.count("/v1/chat/completions") == before + 1


def test_parse_failures_stay_missing_and_counted(
    tmp_path: Path, tldr: list[str], monkeypatch, capsys
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    with JudgeStub(state=StubState(garbage=True)) as stub:
        assert _judge(stub, tmp_path, *tldr) == 0
    out = io.read_table(tmp_path / "j.parquet", "judgements")
    assert not out.get_column("parsed").any()
    assert out.get_column("score").null_count() == out.height
    assert out.get_column("verdict").null_count() == out.height
    assert out.get_column("raw").to_list() == ["I would rather not say."] * out.height
    assert f"{len(ANSWERS)} unparsed" in capsys.readouterr().err


def test_no_key_refused_without_base_url(tmp_path: Path, tldr: list[str], monkeypatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    code = main(
        [
            "judge",
            *tldr,
            *("--backend", "openai", "--judge-model", "j", "--api-key-env", KEY_ENV),
            *("--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "o.parquet")),
        ]
    )
    assert code == 2


def test_pairwise_against_the_base_in_both_orders(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    model = {"a": ["a much longer story than the base wrote"], "b": ["short"], "c": ["same"]}
    base = {"a": ["tiny tale"], "b": ["a long long base story"], "c": ["SAME"]}
    prompts = _prompts(tmp_path / "p.parquet", "wp", "writingprompts", {k: {} for k in model})
    gens = _generations(tmp_path / "g.parquet", "dpo", "wp", model)
    opp = _generations(tmp_path / "b.parquet", "base", "wp", base)
    args = ["--task", "wp", "--prompts", str(prompts), "--generations", str(gens)]
    with JudgeStub() as stub:
        assert _judge(stub, tmp_path, *args) == 2  # the opponent is required
        assert _judge(stub, tmp_path, *args, "--opponent-generations", str(opp)) == 0
        assert stub.state.count("/v1/chat/completions") == 2 * len(model)
    out = io.read_table(tmp_path / "j.parquet", "judgements")
    assert out.height == 6 and set(out.get_column("opponent")) == {"base"}
    by = {(r["prompt_id"], r["swapped"]): r for r in out.iter_rows(named=True)}
    # a: the model's story is over twice the base's: A>>B in order 1, B>>A in order 2; both 1.0
    assert by[("wp/a", False)]["verdict"] == "[[A>>B]]" and by[("wp/a", True)]["verdict"] == (
        "[[B>>A]]"
    )
    assert by[("wp/a", False)]["score"] == by[("wp/a", True)]["score"] == 1.0
    combined = P.combine_orders(out).sort("prompt_id")
    assert combined.get_column("score").to_list() == [1.0, 0.0, 0.5]
    assert combined.get_column("consistent").all()


def test_wb_score_against_the_checklist(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    answers = {"s1": ["one two three"], "s2": ["w " * 30]}
    refs = {"s1": {"checklist": ["Is it kind?"], "single_turn": True}, "s2": {"single_turn": False}}
    prompts = _prompts(tmp_path / "p.parquet", "wildbench", "wildbench", refs)
    gens = _generations(tmp_path / "g.parquet", "rl", "wildbench", answers)
    args = ["--task", "wildbench", "--prompts", str(prompts), "--generations", str(gens)]
    with JudgeStub() as stub:
        assert _judge(stub, tmp_path, *args) == 0
        bodies = [json.loads(r["body"]) for r in stub.state.requests]
    assert all(len(b["messages"]) == 1 for b in bodies)  # no system message
    assert any("- Is it kind?" in b["messages"][0]["content"] for b in bodies)
    out = io.read_table(tmp_path / "j.parquet", "judgements").sort("prompt_id")
    assert out.get_column("score").to_list() == [3.0, 10.0]
    assert P.wb_score(out.get_column("score").to_list()) == pytest.approx(3.0)


def test_template_dir_substitutes_a_template_and_changes_the_key(
    tmp_path: Path, tldr: list[str], monkeypatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    own = tmp_path / "templates"
    own.mkdir()
    text = (Path(P.__file__).parent / "instructions" / "reference_ranking.txt").read_text()
    (own / "reference_ranking.txt").write_text(text.replace("version: 1", "version: paper-1"))
    with JudgeStub() as stub:
        assert _judge(stub, tmp_path, *tldr) == 0
        assert _judge(stub, tmp_path, *tldr, "--template-dir", str(own), out="k.parquet") == 0
        assert stub.state.count("/v1/chat/completions") == 2 * len(ANSWERS)
    versions = io.read_table(tmp_path / "k.parquet", "judgements").get_column("template_version")
    assert versions.str.starts_with("paper-1+").all()


# --------------------------------------------------------------------------- batch API
def _batch(stub: JudgeStub, tmp_path: Path, *extra: str) -> int:
    return main(
        [
            "judge",
            "--backend",
            "openai-batch",
            "--base-url",
            stub.url,
            "--judge-model",
            "stub-judge",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--api-key-env",
            KEY_ENV,
            "--batch-poll",
            "0.01",
            "--timeout",
            "10",
            "--out",
            str(tmp_path / "j.parquet"),
            *extra,
        ]
    )


def test_batch_api_flow_and_resume(tmp_path: Path, tldr: list[str], monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    state_file = tmp_path / "j.parquet.batch.json"
    with JudgeStub(state=StubState(batch_polls=1000)) as stub:
        # the batch is created, then the run stops polling: the id stays stored
        assert _batch(stub, tmp_path, *tldr, "--batch-wait", "0.05") == 2
        assert state_file.is_file() and not (tmp_path / "j.parquet").exists()
        stored = json.loads(state_file.read_text())
        assert stored["batch_id"] in stub.state.batches
        # the rerun polls the stored batch: no new upload, no new batch
        stub.state.batch_polls = 2
        assert _batch(stub, tmp_path, *tldr) == 0
        assert stub.state.count("/v1/files") == 1 and stub.state.count("/v1/batches") == 1
        assert stub.state.count("/v1/chat/completions") == 0
        assert not state_file.exists()
        lines = stub.state.files[stored["input_file_id"]].decode().splitlines()
        assert len(lines) == len(ANSWERS)
        line = json.loads(lines[0])
        assert line["url"] == "/v1/chat/completions" and line["method"] == "POST"
        out = io.read_table(tmp_path / "j.parquet", "judgements")
        for row in out.iter_rows(named=True):
            answer, reference = ANSWERS[row["prompt_id"].split("/")[1]]
            assert row["verdict"] == _expected_ranking(answer, reference)
        # answers from the batch serve the chat backend too: nothing is asked again
        before = len(stub.state.requests)
        assert _judge(stub, tmp_path, *tldr, out="again.parquet") == 0
        assert _batch(stub, tmp_path, *tldr) == 0
        assert len(stub.state.requests) == before
        assert {r["authorization"] for r in stub.state.requests} == {f"Bearer {SECRET}"}
    assert SECRET.encode() not in _files_text(tmp_path)


def test_the_instruction_files_ship_with_the_package(repo: Path) -> None:
    import tomllib

    data = tomllib.loads((repo / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["divtrace"]
    shipped = {p.name for p in (repo / "src/divtrace/judge").glob(globs[-1].replace("judge/", ""))}
    assert "judge/instructions/*.txt" in globs
    assert shipped == {f"{protocol}.txt" for protocol in JUDGE_PROTOCOLS}


@pytest.mark.vllm  # imports vLLM (half a minute): not in `make unit`
def test_vllm_backend_needs_a_loadable_model(tmp_path: Path, tldr: list[str], capsys) -> None:
    """Without --judge-model-dir the judge model's name is what vLLM loads: here a hub id
    this offline machine cannot fetch, which is a one-line error naming it; a local path without
    a model is refused before vLLM starts."""
    pytest.importorskip("vllm")
    args = ["judge", *tldr, "--backend", "vllm", "--judge-model", "no-such/judge"]
    args += ["--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "o.parquet")]
    assert main(args) == 2
    assert "no-such/judge" in capsys.readouterr().err
    assert main([*args, "--judge-model-dir", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert not (tmp_path / "o.parquet").exists()


def test_a_stored_batch_of_other_requests_is_not_waited_for(
    tmp_path: Path, tldr: list[str], monkeypatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    state_file = tmp_path / "j.parquet.batch.json"
    state_file.write_text(
        json.dumps({"batch_id": "batch-gone", "input_file_id": "f", "keys": ["0"]})
    )
    with JudgeStub() as stub:
        assert _batch(stub, tmp_path, *tldr) == 0
        assert not any("batch-gone" in r["path"] for r in stub.state.requests)
        assert stub.state.count("/v1/batches") == 1
    assert not state_file.exists()


@pytest.mark.parametrize("family", sorted(JUDGE_TASK_PROTOCOLS))
def test_every_judged_family_of_the_demo_goes_through_its_protocol(
    family: str, tmp_path: Path, repo: Path, monkeypatch
) -> None:
    """The demo's task files, made into prompts as the workflow makes them, carry what each
    protocol needs (the reference text, the checklist) and are judged end to end."""
    from divtrace.tasks import FAMILIES
    from divtrace.tasks.prompts import build_prompts, read_jsonl

    monkeypatch.setenv(KEY_ENV, SECRET)
    records = read_jsonl(repo / f"resources/tasks/demo/{family}.jsonl")
    table = build_prompts(family, FAMILIES[family], records, n=4, seed=1, source="demo")
    io.write_table(table, tmp_path / "p.parquet", "prompts")
    ids = [pid.split("/", 1)[1] for pid in table.get_column("prompt_id").to_list()]
    gens = _generations(
        tmp_path / "g.parquet", "sft", family, {i: [f"answer to {i} " * 3] for i in ids}
    )
    args = ["--task", family, "--prompts", str(tmp_path / "p.parquet")]
    args += ["--generations", str(gens)]
    if JUDGE_TASK_PROTOCOLS[family] == "base_pairwise":
        opp = _generations(tmp_path / "b.parquet", "base", family, {i: ["base"] for i in ids})
        args += ["--opponent-generations", str(opp)]
    with JudgeStub() as stub:
        assert _judge(stub, tmp_path, *args) == 0
        sources = [json.loads(r["body"])["messages"][-1]["content"] for r in stub.state.requests]
    out = io.read_table(tmp_path / "j.parquet", "judgements")
    per_sample = 2 if JUDGE_TASK_PROTOCOLS[family] == "base_pairwise" else 1
    assert out.height == per_sample * len(ids)
    assert out.get_column("parsed").all()
    assert set(out.get_column("protocol")) == {JUDGE_TASK_PROTOCOLS[family]}
    # the request the model answered, and the reference or checklist, are in front of the judge
    joined = "\n".join(sources)
    for prompt in table.iter_rows(named=True):
        assert P.request_source(prompt) in joined
        reference = json.loads(prompt["reference"])
        if JUDGE_TASK_PROTOCOLS[family] == "reference_ranking":
            assert reference["reference"] in joined
        for item in reference.get("checklist", []):
            assert f"- {item}" in joined
