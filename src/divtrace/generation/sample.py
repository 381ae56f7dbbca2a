"""Sample one shard: the prompts of one index range, for one model, task and CoT mode."""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from divtrace import io
from divtrace.errors import ShardError
from divtrace.generation.backend import PROMPT_TOO_LONG, Backend, Request, SamplingParams
from divtrace.generation.cot import split_reasoning
from divtrace.generation.prompting import RenderedPrompt, render_prompt
from divtrace.generation.seeds import sample_seeds
from divtrace.tasks.styles import DEFAULT_PROMPT_STYLE, PAPER


@dataclass(frozen=True)
class ShardSpec:
    model: str
    task: str
    cot: str
    shard: int
    prompts_per_shard: int
    k: int
    seed: int
    prompt_format: str
    reasoning: bool
    prefill: str
    prompt_style: str = DEFAULT_PROMPT_STYLE

    @property
    def add_special_tokens(self) -> bool:
        """Whether the tokenizer adds its special tokens to the rendered prompt.

        Always for completion prompts. Chat prompts carry theirs in the template; the paper's
        style encodes them with ``add_special_tokens=True`` all the same, as lighteval 0.12 did
        (a tokenizer that adds a BOS then gives the template's BOS a second one; the shard's
        metadata records how many tokens it added).
        """
        return self.prompt_format == "completion" or self.prompt_style == PAPER

    def index_range(self) -> tuple[int, int]:
        start = self.shard * self.prompts_per_shard
        return start, start + self.prompts_per_shard


def shard_prompts(prompts: pl.DataFrame, spec: ShardSpec) -> pl.DataFrame:
    """Rows of the prompts table whose ``index`` falls in the shard (possibly none), by index."""
    start, stop = spec.index_range()
    return prompts.filter(pl.col("index").is_between(start, stop, closed="left")).sort(
        "index", maintain_order=True
    )


def make_backend(name: str, model_dir: str | Path, settings: Mapping[str, Any]) -> Backend:
    if name == "transformers":
        from divtrace.generation.hf import TransformersBackend

        return TransformersBackend(
            model_dir,
            device=str(settings.get("device", "auto")),
            dtype=str(settings.get("dtype", "auto")),
            threads=int(settings.get("threads", 1)),
            batch_rows=int(settings.get("batch_rows", 64)),
        )
    if name == "vllm":
        from divtrace.generation.vllm import VLLMBackend

        return VLLMBackend(
            model_dir,
            dtype=str(settings.get("dtype", "auto")),
            engine=settings.get("engine") or {},
        )
    raise ShardError(f"unknown sampling backend {name!r} (known: transformers, vllm)")


def sample_shard(
    prompts: pl.DataFrame,
    spec: ShardSpec,
    params: SamplingParams,
    backend: Backend,
    model_manifest: Mapping[str, Any],
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Generations (docs/design.md §3 schema) of one shard, and the file metadata to store with them."""
    if spec.cot not in ("on", "off"):
        raise ShardError(f"cot must be 'on' or 'off', got {spec.cot!r}")
    if spec.cot == "off" and not spec.reasoning:
        raise ShardError(f"model {spec.model!r} is not a reasoning model: CoT off does not apply")
    if spec.k < 1:
        raise ShardError(f"k (samples per prompt) must be at least 1, got {spec.k}")
    missing = [c for c in io.PROMPTS.names if c not in prompts.columns]
    if missing:
        raise ShardError(f"prompts table lacks column(s) {missing}")
    rows = shard_prompts(prompts.filter(pl.col("task") == spec.task), spec)
    tokenizer = backend.tokenizer()
    requests: list[Request] = []
    rendered: list[RenderedPrompt] = []
    records_in = rows.to_dicts()
    for row in records_in:
        prompt = render_prompt(
            tokenizer,
            text=row["text"],
            messages=row["messages"],
            prompt_format=spec.prompt_format,
            cot=spec.cot,
            prefill=spec.prefill,
        )
        seeds = sample_seeds(spec.seed, spec.task, str(row["prompt_id"]), spec.k)
        rendered.append(prompt)
        requests.append(Request(prompt=prompt.text, seeds=tuple(seeds)))
    started = time.time()
    completions = (
        backend.generate(requests, params, add_special_tokens=spec.add_special_tokens)
        if requests
        else []
    )
    elapsed = time.time() - started
    records: list[dict[str, Any]] = []
    for row, request, prompt, outputs in zip(
        records_in, requests, rendered, completions, strict=True
    ):
        if len(outputs) != spec.k:  # a backend bug, not the user's input
            raise RuntimeError(
                f"backend returned {len(outputs)} samples for {row['prompt_id']}, not {spec.k}"
            )
        for j, (seed, out) in enumerate(zip(request.seeds, outputs, strict=True)):
            if out.finish_reason == PROMPT_TOO_LONG:
                reasoning, answer, closed = None, "", None
            else:
                split = split_reasoning(
                    out.text, reasoning_model=spec.reasoning, turn_prefix=prompt.turn_prefix
                )
                reasoning, answer, closed = split.reasoning, split.answer, split.think_closed
            records.append(
                {
                    "model": spec.model,
                    "task": spec.task,
                    "cot": spec.cot,
                    "prompt_id": row["prompt_id"],
                    "sample": j,
                    "seed": seed,
                    "prompt_text": request.prompt,
                    "raw": out.text,
                    "reasoning": reasoning,
                    "answer": answer,
                    "think_closed": closed,
                    "n_tokens": out.n_tokens,
                    "finish_reason": out.finish_reason,
                    "backend": backend.info.name,
                }
            )
    frame = pl.DataFrame(records, schema=io.empty_frame("generations").schema)
    n_tokens = int(frame.get_column("n_tokens").sum())
    prompt_tokens = [outs[0].prompt_tokens for outs in completions if outs]
    too_long = [
        str(row["prompt_id"])
        for row, outs in zip(records_in, completions, strict=True)
        if outs and outs[0].finish_reason == PROMPT_TOO_LONG
    ]
    metadata = {
        "shard": asdict(spec),
        "sampling": asdict(params),
        "backend": backend.info.name,
        "backend_versions": backend.info.versions,
        "backend_settings": backend.info.settings,
        "device": backend.info.device,
        "host": platform.node(),
        "model_manifest": {
            k: model_manifest.get(k) for k in ("name", "source", "repo", "revision", "commit")
        },
        "prompts": {
            "prompt_style": spec.prompt_style,
            "add_special_tokens": spec.add_special_tokens,
            "special_tokens_added": _special_tokens_added(tokenizer, requests),
            "template_opened_think": sum(p.template_opened_think for p in rendered),
            "appended": sorted({p.appended for p in rendered}),
            "prompt_tokens_max": max((t for t in prompt_tokens if t is not None), default=None),
            "prompt_too_long": too_long,
        },
        "n_prompts": len(rows),
        "generated_tokens": n_tokens,
        "seconds": round(elapsed, 3),
        "tokens_per_second": round(n_tokens / elapsed, 2) if elapsed > 0 else None,
    }
    return frame, metadata


def _special_tokens_added(tokenizer: Any, requests: list[Request]) -> int | None:
    """How many tokens ``add_special_tokens=True`` adds to the shard's first prompt."""
    if not requests:
        return None
    prompt = requests[0].prompt
    with_special = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    without = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return len(with_special) - len(without)
