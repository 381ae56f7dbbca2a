"""Sampling with the transformers backend on a tiny toy checkpoint built in the test."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

from divtrace import io
from divtrace.cli import main
from divtrace.generation.backend import SamplingParams
from divtrace.generation.hf import SamplingError, TransformersBackend
from divtrace.generation.sample import ShardError, ShardSpec, make_backend, sample_shard
from divtrace.provenance import DIGEST_KEY
from divtrace.tasks import FAMILIES
from divtrace.tasks.prompts import build_prompts, read_jsonl

from .conftest import REPO

DEMO = REPO / "resources" / "tasks" / "demo"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """An (untrained beyond a few steps) toy base and think-sft pair."""
    from divtrace.toy.build import build_toy_model

    root = tmp_path_factory.mktemp("models")
    build_toy_model({"recipe": "pretrain", "seed": 0, "steps": 2}, root / "base", None)
    build_toy_model(
        {"recipe": "sft", "style": "think", "seed": 1, "steps": 2}, root / "think", root / "base"
    )
    return {"base": root / "base", "think": root / "think"}


@pytest.fixture(scope="module")
def prompts() -> pl.DataFrame:
    records = read_jsonl(DEMO / "gsm8k.jsonl")
    return build_prompts("gsm8k", FAMILIES["gsm8k"], records, n=6, seed=7, source="demo")


@pytest.fixture(scope="module")
def think_backend(checkpoints) -> TransformersBackend:
    return TransformersBackend(checkpoints["think"], device="cpu")


PARAMS = SamplingParams(temperature=1.0, top_p=0.95, top_k=0, max_tokens=12)


def distinct_outputs(frame: pl.DataFrame) -> pl.Series:
    """The number of distinct raw outputs of each prompt."""
    return frame.group_by("prompt_id").agg(pl.col("raw").n_unique())["raw"]


def spec(shard: int = 0, per_shard: int = 6, cot: str = "on", k: int = 3) -> ShardSpec:
    return ShardSpec(
        model="think-sft",
        task="gsm8k",
        cot=cot,
        shard=shard,
        prompts_per_shard=per_shard,
        k=k,
        seed=1234,
        prompt_format="chat",
        reasoning=True,
        prefill="<think></think>",
    )


def test_toy_tokenizer_renders_chatml_golden(think_backend):
    messages = [{"role": "user", "content": "Hi"}]
    rendered = think_backend.tokenizer().apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_samples_do_not_depend_on_sharding_or_order(think_backend, prompts):
    whole, _ = sample_shard(prompts, spec(per_shard=6), PARAMS, think_backend, {})
    parts = [
        sample_shard(prompts, spec(shard=s, per_shard=2), PARAMS, think_backend, {})[0]
        for s in (2, 0, 1)  # another order, another batch composition
    ]
    sharded = pl.concat(parts)
    key = ["prompt_id", "sample"]
    left = whole.sort(key).select(*key, "seed", "raw")
    right = sharded.sort(key).select(*key, "seed", "raw")
    assert len(left) == 6 * 3
    assert_frame_equal(left, right)
    # The K samples of a prompt differ from each other (they are not one draw repeated).
    assert distinct_outputs(whole).max() > 1


def test_samples_do_not_depend_on_the_batch_size(checkpoints, think_backend, prompts):
    """Left-padded batches of several prompts give the same text as one prompt at a time."""
    one_prompt_per_batch = TransformersBackend(checkpoints["think"], device="cpu", batch_rows=3)
    batched, _ = sample_shard(prompts, spec(), PARAMS, think_backend, {})
    alone, _ = sample_shard(prompts, spec(), PARAMS, one_prompt_per_batch, {})
    assert think_backend.batch_rows >= len(batched)  # all 18 rows in one generate call
    assert_series_equal(batched["raw"], alone["raw"])


def test_outputs_are_stored_under_their_own_prompt(think_backend, prompts):
    frame, _ = sample_shard(prompts, spec(), PARAMS, think_backend, {})
    by_id = dict(zip(prompts["prompt_id"], prompts["messages"], strict=True))
    for row in frame.iter_rows(named=True):
        user = json.loads(by_id[row["prompt_id"]])[0]["content"]
        assert f"<|im_start|>user\n{user}<|im_end|>" in row["prompt_text"]
    assert sorted(frame["sample"].unique()) == [0, 1, 2]
    assert len(frame) == 6 * 3


def test_greedy_samples_are_identical(think_backend, prompts):
    greedy = SamplingParams(temperature=0.0, top_p=1.0, top_k=0, max_tokens=8)
    frame, _ = sample_shard(prompts, spec(), greedy, think_backend, {})
    assert (distinct_outputs(frame) == 1).all()


def test_top_k_one_is_greedy(think_backend, prompts):
    greedy = SamplingParams(temperature=0.0, top_p=1.0, top_k=0, max_tokens=8)
    top1 = SamplingParams(temperature=1.5, top_p=1.0, top_k=1, max_tokens=8)
    left, _ = sample_shard(prompts, spec(k=2), greedy, think_backend, {})
    right, _ = sample_shard(prompts, spec(k=2), top1, think_backend, {})
    assert_series_equal(left["raw"], right["raw"])


def test_stop_sequences_cut_completion_outputs(checkpoints, prompts):
    backend = TransformersBackend(checkpoints["base"], device="cpu")
    free = SamplingParams(temperature=1.0, top_p=1.0, top_k=0, max_tokens=24)
    stopped = SamplingParams(temperature=1.0, top_p=1.0, top_k=0, max_tokens=24, stop=(" ",))
    base_spec = ShardSpec(
        **{**spec(k=2).__dict__, "reasoning": False, "prompt_format": "completion"}
    )
    unconstrained, _ = sample_shard(prompts, base_spec, free, backend, {})
    cut, _ = sample_shard(prompts, base_spec, stopped, backend, {})
    assert unconstrained["raw"].str.contains(" ", literal=True).any()
    assert not cut["raw"].str.contains(" ", literal=True).any()
    # The cut text is the unconstrained text up to the first stop string (same seeds).
    for full, short in zip(unconstrained["raw"], cut["raw"], strict=True):
        assert full.split(" ")[0] == short


def test_cot_off_prompts_end_with_the_prefill(think_backend, prompts):
    frame, meta = sample_shard(prompts, spec(cot="off", k=2), PARAMS, think_backend, {})
    assert frame["prompt_text"].str.ends_with("<|im_start|>assistant\n<think></think>").all()
    assert frame["think_closed"].null_count() == 0 and frame["think_closed"].all()
    assert meta["shard"]["prefill"] == "<think></think>"


def test_shard_beyond_the_prompts_is_empty_but_valid(think_backend, prompts, tmp_path):
    frame, meta = sample_shard(prompts, spec(shard=5, per_shard=2), PARAMS, think_backend, {})
    assert len(frame) == 0 and meta["n_prompts"] == 0
    io.write_table(frame, tmp_path / "empty.parquet", "generations", metadata=meta)
    assert frame.schema == io.empty_frame("generations").schema
    assert list(io.read_table(tmp_path / "empty.parquet").columns) == io.GENERATIONS.names


def test_max_tokens_bounds_every_sample(think_backend, prompts):
    short = SamplingParams(temperature=1.0, top_p=1.0, top_k=0, max_tokens=3)
    frame, _ = sample_shard(prompts, spec(k=2), short, think_backend, {})
    assert (frame["n_tokens"] <= 3).all()
    assert set(frame["finish_reason"]) <= {"stop", "length"}


def test_a_prompt_longer_than_the_context_is_recorded_not_fatal(think_backend, prompts):
    ordered = prompts.sort("index")
    too_long = ordered["prompt_id"].gather([1, 4]).to_list()
    huge = json.dumps([{"role": "user", "content": "apples " * 2000}])
    long = prompts.with_columns(
        messages=pl.when(pl.col("prompt_id").is_in(too_long))
        .then(pl.lit(huge))
        .otherwise("messages")
    )
    frame, meta = sample_shard(long, spec(k=2), PARAMS, think_backend, {})
    assert len(frame) == 6 * 2  # every prompt keeps its K rows
    skipped = frame.filter(pl.col("prompt_id").is_in(too_long))
    assert len(skipped) == 4 and (skipped["finish_reason"] == "prompt_too_long").all()
    assert (skipped["raw"] == "").all() and (skipped["answer"] == "").all()
    assert (skipped["n_tokens"] == 0).all() and skipped["think_closed"].is_null().all()
    others = frame.filter(~pl.col("prompt_id").is_in(too_long))
    assert set(others["finish_reason"]) <= {"stop", "length"}
    assert meta["prompts"]["prompt_too_long"] == too_long  # in shard order
    assert meta["prompts"]["prompt_tokens_max"] >= think_backend.max_context


def test_bad_inputs_are_named(checkpoints, prompts, tmp_path):
    with pytest.raises(SamplingError, match="not a model directory"):
        TransformersBackend(tmp_path / "missing")
    with pytest.raises(ShardError, match="unknown sampling backend 'tgi'"):
        make_backend("tgi", checkpoints["think"], {})
    with pytest.raises(ShardError, match=r"lacks column\(s\) \['messages'\]"):
        sample_shard(prompts.drop("messages"), spec(), PARAMS, None, {})  # type: ignore[arg-type]
    base_spec = ShardSpec(**{**spec().__dict__, "reasoning": False, "cot": "off"})
    with pytest.raises(ShardError, match="not a reasoning model"):
        sample_shard(prompts, base_spec, PARAMS, None, {})  # type: ignore[arg-type]


def test_sample_command_writes_an_atomic_shard(checkpoints, prompts, tmp_path):
    prompts_path = io.write_table(prompts, tmp_path / "p.parquet", "prompts")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps({"name": "base", "source": "toy", "path": str(checkpoints["base"])})
    )
    out = tmp_path / "g" / "shard-0000.parquet"
    args = [
        "sample", "--prompts", str(prompts_path), "--manifest", str(manifest), "--model", "base",
        "--task", "gsm8k", "--shard", "0", "--prompts-per-shard", "4", "--k", "2",
        "--seed", "1", "--format", "completion", "--temperature", "0.7", "--max-tokens", "6",
        "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    frame = io.read_table(out, "generations")
    assert len(frame) == 4 * 2
    assert frame["prompt_text"].str.starts_with("Question: ").all()
    assert frame["think_closed"].is_null().all()
    assert io.read_metadata(out)["sampling"]["stop"] == list(FAMILIES["gsm8k"].stop)
    assert [p.name for p in out.parent.iterdir()] == ["shard-0000.parquet"]


@pytest.mark.parametrize(
    ("fmt", "stop"), [("completion", ["\nQuestion:", "\n\nQuestion"]), ("chat", [])]
)
def test_sample_command_takes_the_prompt_style_of_its_prompts_file(
    checkpoints, tmp_path, fmt, stop
):
    """Paper-style prompts: the paper's stop sequences for completion models only, and special
    tokens added to every prompt, as lighteval did; both recorded in the shard."""
    records = read_jsonl(DEMO / "gsm8k.jsonl")
    paper = build_prompts(
        "gsm8k", FAMILIES["gsm8k"], records, n=4, seed=7, source="demo", style="paper"
    )
    prompts_path = io.write_table(
        paper, tmp_path / "p.parquet", "prompts", metadata={"prompt_style": "paper"}
    )
    model = "base" if fmt == "completion" else "think"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"name": model, "path": str(checkpoints[model])}))
    out = tmp_path / "shard.parquet"
    args = [
        "sample", "--prompts", str(prompts_path), "--manifest", str(manifest), "--model", model,
        "--task", "gsm8k", "--shard", "0", "--prompts-per-shard", "4", "--k", "2",
        "--seed", "1", "--format", fmt, "--temperature", "0.7", "--max-tokens", "6",
        "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    meta = io.read_metadata(out)
    assert meta["sampling"]["stop"] == stop
    assert meta["shard"]["prompt_style"] == meta["prompts"]["prompt_style"] == "paper"
    assert meta["prompts"]["add_special_tokens"] is True
    assert isinstance(meta["prompts"]["special_tokens_added"], int)
    frame = io.read_table(out, "generations")
    if fmt == "completion":
        assert frame["prompt_text"].str.starts_with("\n\nQuestion: ").all()
        assert frame["prompt_text"].str.ends_with("\n\nAnswer:").all()


def test_cot_off_on_a_template_that_opens_the_think_block(think_backend, prompts, monkeypatch):
    """A toy checkpoint given an Olmo-3-Think-like template: one opening and one closing tag in
    every CoT-off prompt, what was appended in the shard's metadata, CoT-on outputs split."""
    from .test_generation import OLMO3_THINK_LIKE

    monkeypatch.setattr(think_backend.tokenizer(), "chat_template", OLMO3_THINK_LIKE)
    frame, meta = sample_shard(prompts, spec(cot="off", k=2), PARAMS, think_backend, {})
    for text in frame["prompt_text"]:
        turn = text[text.rindex("<|im_start|>assistant\n") :]
        assert turn == "<|im_start|>assistant\n<think></think>"
    assert meta["prompts"]["appended"] == ["</think>"]
    assert meta["prompts"]["template_opened_think"] == 6
    assert frame["think_closed"].null_count() == 0 and frame["think_closed"].all()
    assert frame["reasoning"].eq("").all()
    on, meta_on = sample_shard(prompts, spec(cot="on", k=2), PARAMS, think_backend, {})
    assert meta_on["prompts"]["appended"] == [""]
    assert on["prompt_text"].str.ends_with("<|im_start|>assistant\n<think>").all()
    # Every output starts inside the block the template opened: closed or flagged, never
    # "no think block".
    assert on["think_closed"].is_not_null().all()
    unclosed = on.filter(~pl.col("think_closed"))
    assert (unclosed["answer"] == "").all()


def test_sample_command_reports_a_missing_manifest(tmp_path, capsys, prompts):
    prompts_path = io.write_table(prompts, tmp_path / "p.parquet", "prompts")
    args = [
        "sample", "--prompts", str(prompts_path), "--manifest", str(tmp_path / "none.json"),
        "--model", "m", "--task", "gsm8k", "--shard", "0", "--prompts-per-shard", "4",
        "--k", "2", "--seed", "1", "--format", "chat", "--temperature", "0.7",
        "--max-tokens", "6", "--out", str(tmp_path / "o.parquet"),
    ]  # fmt: skip
    assert main(args) == 2
    assert "none.json: model manifest not found" in capsys.readouterr().err
    assert not (tmp_path / "o.parquet").exists()


def test_killed_sampling_leaves_no_shard_and_reruns(checkpoints, prompts, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    prompts_path = io.write_table(prompts, tmp_path / "p.parquet", "prompts")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"name": "think", "path": str(checkpoints["think"])}))
    out = tmp_path / "g" / "shard-0000.parquet"

    def command(max_tokens: int) -> list[str]:
        return [
            sys.executable, "-m", "divtrace.cli", "sample", "--prompts", str(prompts_path),
            "--manifest", str(manifest), "--model", "think-sft", "--task", "gsm8k",
            "--shard", "0", "--prompts-per-shard", "6", "--k", "4", "--seed", "1",
            "--format", "chat", "--reasoning", "--temperature", "1.0",
            "--max-tokens", str(max_tokens), "--out", str(out),
        ]  # fmt: skip

    log = tmp_path / "sample.log"
    with open(log, "w") as handle:
        proc = subprocess.Popen(command(400), stderr=handle, stdout=handle)
        deadline = time.time() + 120
        while "prompts:" not in log.read_text() and time.time() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert "prompts:" in log.read_text()
    assert not out.exists()
    from divtrace.cli import main

    assert main(command(4)[3:]) == 0  # the rerun, in this process (no second torch start-up)
    assert len(io.read_table(out, "generations")) == 6 * 4


# ---------------------------------------------------------------------------- several shards in one call
@pytest.fixture
def two_tasks(prompts, tmp_path) -> dict[str, Path]:
    """Prompts files of two tasks (gsm8k and writingprompts), each recording a digest."""
    records = read_jsonl(DEMO / "writingprompts.jsonl")
    stories = build_prompts(
        "writingprompts", FAMILIES["writingprompts"], records, n=3, seed=7, source="demo"
    )
    return {
        task: io.write_table(
            frame, tmp_path / f"{task}.parquet", "prompts", metadata={DIGEST_KEY: f"of-{task}"}
        )
        for task, frame in (("gsm8k", prompts), ("writingprompts", stories))
    }


def _model_args(checkpoints, tmp_path) -> list[str]:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"name": "base", "path": str(checkpoints["base"])}))
    return [
        "--manifest", str(manifest), "--model", "base", "--prompts-per-shard", "3", "--k", "2",
        "--seed", "1", "--format", "completion", "--temperature", "0.7",
    ]  # fmt: skip


# (task, shard, max tokens, stop sequences: None for the task's own)
SHARDS = [("gsm8k", 0, 6, None), ("gsm8k", 1, 6, None), ("writingprompts", 0, 5, ["\n", "."])]
TIMINGS = ("seconds", "tokens_per_second")


def _group(files: dict[str, Path], out: Path, task: str, shard: int, tokens: int, stop) -> list:
    stops = [token for s in stop or [] for token in ("--stop", s)]
    return [
        "--prompts", str(files[task]), "--task", task, "--shard", str(shard),
        "--max-tokens", str(tokens), *stops, "--out", str(out),
    ]  # fmt: skip


def test_one_call_samples_several_shards_as_separate_calls_do(
    checkpoints, two_tasks, tmp_path, monkeypatch
):
    """Shards of two tasks (other budgets, stop sequences given for one) in one call: the model
    loads once, and each file holds the table and metadata (but for the timings) of a call of its
    own."""
    import divtrace.generation.sample as sampling

    model = _model_args(checkpoints, tmp_path)
    alone, together = tmp_path / "alone", tmp_path / "together"
    for task, shard, tokens, stop in SHARDS:
        out = alone / f"{task}-{shard}.parquet"
        assert main(["sample", *model, *_group(two_tasks, out, task, shard, tokens, stop)]) == 0
    loads = []

    def counted(*args, **kwargs):
        loads.append(args)
        return make_backend(*args, **kwargs)

    monkeypatch.setattr(sampling, "make_backend", counted)
    groups = [
        arg
        for task, shard, tokens, stop in SHARDS
        for arg in _group(
            two_tasks, together / f"{task}-{shard}.parquet", task, shard, tokens, stop
        )
    ]
    assert main(["sample", *groups, *model]) == 0
    assert len(loads) == 1
    for task, shard, _, stop in SHARDS:
        name = f"{task}-{shard}.parquet"
        frame = io.read_table(together / name, "generations")
        assert_frame_equal(frame, io.read_table(alone / name, "generations"))
        assert len(frame) == 3 * 2 and set(frame["task"]) == {task}
        meta, meta_alone = io.read_metadata(together / name), io.read_metadata(alone / name)
        for key in TIMINGS:
            meta.pop(key), meta_alone.pop(key)
        assert meta == meta_alone
        assert meta["shard"]["shard"] == shard
        assert meta["sampling"]["stop"] == (stop or list(FAMILIES[task].stop))


def _sample_fails(args: list[str], capsys) -> str:
    assert main(["sample", *args]) == 2
    return capsys.readouterr().err


def test_shard_groups_that_do_not_match_are_named(checkpoints, two_tasks, tmp_path, capsys):
    model = _model_args(checkpoints, tmp_path)
    first = _group(two_tasks, tmp_path / "a.parquet", "gsm8k", 0, 6, None)
    second = _group(two_tasks, tmp_path / "b.parquet", "gsm8k", 1, 6, None)
    no_task = [arg for i, arg in enumerate(second) if "--task" not in second[i - 1 : i + 1]]
    err = _sample_fails([*model, *first, *no_task], capsys)
    assert "1 --task for 2 --out groups" in err
    err = _sample_fails([*model, *first, *first], capsys)
    assert f"--out {tmp_path / 'a.parquet'} is given more than once" in err
    err = _sample_fails([*model, *first, *second, "--stop", "x"], capsys)
    assert "--stop 'x' after the last --out" in err
    err = _sample_fails([*model, *first, *second, "--family", "gsm8k"], capsys)
    assert "1 --family for 2 --out groups" in err
    # A shard whose prompts are not the ones asked for: the error names that shard, and no
    # shard is written (every shard's prompts are checked before the model loads).
    stale = [*second[:-2], "--prompts-digest", "0123456789abcdef", *second[-2:]]
    current = [*first[:-2], "--prompts-digest", "of-gsm8k", *first[-2:]]
    err = _sample_fails([*model, *current, *stale], capsys)
    assert f"gsm8k shard 1 ({tmp_path / 'b.parquet'}): {two_tasks['gsm8k']}: prompts made" in err
    assert not (tmp_path / "a.parquet").exists() and not (tmp_path / "b.parquet").exists()
