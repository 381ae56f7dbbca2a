"""Benchmark of ``divtrace judge``'s own overhead: building requests, the cache, the rows (a script).

    python benchmarks/judge.py [--prompts 500] [--workdir DIR]

For one (model, task) run of the pairwise protocol (the costliest: two requests per sample) with
``--prompts`` prompts and answers of about 2,000 characters, it times, in this process:
building the items, keying the requests, finding the uncached ones in an empty cache, caching
every answer (one atomic file each, as the backends do), the cached rerun (every key found:
what a rerun of a finished run costs) and building the judgement rows. No server is involved;
the answers are fixed texts. Prints one line per step.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from divtrace.judge.cache import Answer, AnswerCache
from divtrace.judge.protocols import build_items
from divtrace.judge.run import judge, requests_of
from divtrace.judge.templates import load_template


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=500)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    n = args.prompts
    text = "A story about a lighthouse keeper and the sea. " * 42  # ~2,000 characters
    prompts = pl.DataFrame(
        {
            "task": ["writingprompts"] * n,
            "prompt_id": [f"wp/{i}" for i in range(n)],
            "index": list(range(n)),
            "text": [f"Write a story {i}" for i in range(n)],
            "messages": [json.dumps([{"role": "user", "content": f"Story {i}"}]) for i in range(n)],
            "reference": ["{}"] * n,
            "meta": ['{"family": "writingprompts"}'] * n,
        }
    )

    def generations(model: str) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "model": [model] * n,
                "task": ["writingprompts"] * n,
                "cot": ["on"] * n,
                "prompt_id": [f"wp/{i}" for i in range(n)],
                "sample": [0] * n,
                "answer": [f"{model} {i} {text}" for i in range(n)],
            }
        )

    template = load_template("base_pairwise")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="divtrace-judge-bench-"))
    cache = AnswerCache(work / "cache")
    answer = Answer("Fine work. My final verdict is [[A>B]].", 900, 12)

    def timed(label: str, fn):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        value = fn()
        print(f"{label:<44} {time.perf_counter() - start:8.3f} s", flush=True)
        return value

    items = timed(
        f"build {2 * n} items",
        lambda: build_items(
            "writingprompts", template, prompts, generations("m"), generations("base")
        ),
    )
    requests = timed("key the requests", lambda: [r.key for r in requests_of(items, "j", "v")])
    del requests
    reqs = requests_of(items, "j", template.version)
    missing = timed("find uncached (empty cache)", lambda: cache.missing(reqs))

    def send(batch, on_answer):  # type: ignore[no-untyped-def]
        for request in batch:
            on_answer(request, answer)
        return []

    timed(
        f"cache {len(missing)} answers + rows",
        lambda: judge(items, judge_model="j", template_version=template.version, cache=cache,
                      send=send),
    )  # fmt: skip
    run = timed(
        "rerun: all cached + rows",
        lambda: judge(items, judge_model="j", template_version=template.version, cache=cache,
                      send=send),
    )  # fmt: skip
    size = sum(p.stat().st_size for p in (work / "cache").rglob("*.json"))
    print(f"rerun sent {run.n_sent} requests; cache {size / 1e6:.1f} MB in {work / 'cache'}")


if __name__ == "__main__":
    sys.exit(main())
