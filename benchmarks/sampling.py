"""Sampling throughput on the demo checkpoint: vLLM vs. transformers batched vs. a naive loop.

    python benchmarks/sampling.py [--model-dir resources/models/think-sft] [--k 4] [--max-tokens 96]

Prompts: every prompt of the demo task suite, rendered with the checkpoint's chat template.
Reports generated tokens per second for
  - vllm:                 all prompts in one LLM.generate call, n=K per prompt (if vLLM is installed)
  - transformers batched: prompts sorted by length, left-padded, up to --batch-rows rows per call
  - transformers naive:   one prompt, one sample per generate call (the floor)
Run `make demo` first (or pass --model-dir) so that the trained demo checkpoint exists.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASKS = ("gsm8k", "writingprompts", "ifeval")


def build_requests(tokenizer, k: int, seed: int) -> list:
    from divtrace.generation.backend import Request
    from divtrace.generation.prompting import render_prompt
    from divtrace.generation.seeds import sample_seeds
    from divtrace.tasks import FAMILIES
    from divtrace.tasks.prompts import build_prompts, read_jsonl

    requests = []
    for task in TASKS:
        records = read_jsonl(REPO / "resources" / "tasks" / "demo" / f"{task}.jsonl")
        table = build_prompts(task, FAMILIES[task], records, n=None, seed=seed, source=task)
        for row in table.iter_rows(named=True):
            prompt = render_prompt(
                tokenizer,
                text=row["text"],
                messages=row["messages"],
                prompt_format="chat",
                cot="on",
                prefill="",
            )
            requests.append(Request(prompt, tuple(sample_seeds(seed, task, row["prompt_id"], k))))
    return requests


def measure(label: str, backend, requests, params) -> dict:
    started = time.perf_counter()
    results = backend.generate(requests, params)
    seconds = time.perf_counter() - started
    tokens = sum(c.n_tokens for samples in results for c in samples)
    row = {
        "backend": label,
        "samples": sum(len(s) for s in results),
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(REPO / "resources" / "models" / "think-sft"))
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--batch-rows", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-vllm", action="store_true")
    args = parser.parse_args()

    from divtrace.generation.backend import Request, SamplingParams
    from divtrace.generation.hf import TransformersBackend

    params = SamplingParams(temperature=0.6, top_p=0.95, top_k=0, max_tokens=args.max_tokens)
    rows = []
    batched = TransformersBackend(
        args.model_dir, device="cpu", threads=args.threads, batch_rows=args.batch_rows
    )
    requests = build_requests(batched.tokenizer(), args.k, seed=1234)
    print(f"{len(requests)} prompts x K={args.k}, max_tokens={args.max_tokens}, "
          f"{args.threads} threads, model {args.model_dir}")  # fmt: skip
    rows.append(measure("transformers batched", batched, requests, params))
    naive = TransformersBackend(args.model_dir, device="cpu", threads=args.threads, batch_rows=1)
    singles = [Request(r.prompt, (seed,)) for r in requests for seed in r.seeds]
    rows.append(measure("transformers naive loop", naive, singles, params))
    if not args.skip_vllm:
        try:
            from divtrace.generation.vllm import VLLMBackend
        except ImportError:
            print("vLLM not installed: skipped")
        else:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
            engine = {"max_model_len": 512, "max_num_seqs": 256}
            llm = VLLMBackend(args.model_dir, dtype="float32", engine=engine)
            measure("vllm (warm-up)", llm, requests[:4], params)
            rows.append(measure("vllm", llm, requests, params))
    print("\n| backend | samples | tokens | seconds | tokens/s |\n|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['backend']} | {row['samples']} | {row['tokens']} | {row['seconds']} "
            f"| {row['tokens_per_s']} |"
        )


if __name__ == "__main__":  # vLLM spawns worker processes
    main()
