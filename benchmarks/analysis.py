"""Benchmark of ``divtrace summarize`` and ``divtrace figures`` at the paper's scale (a script).

    python benchmarks/analysis.py [--workdir DIR] [--n-boot 1000] [--before REV] [--keep]

Synthesises the inputs of the analysis step of the Olmo 3 study as the workflow's own Parquet
files, written with pyarrow under the file contracts of :mod:`divtrace.io`: for the 13 models of
``config/olmo3.yaml`` × 15 tasks × 500 prompts (CoT on, and off for the three Think models: 240
runs), one diversity file per run (4 metrics per input and across inputs, subsets ``all`` and,
for the 8 verifiable tasks, ``correct``), one quality file per verifiable run (K = 16 rows per
prompt) and the generation shards of every run (100 prompts × 16 samples each, with prompt,
reasoning and answer texts of a few hundred characters, as the summarize step sees them). Values
are seeded random draws; what is measured is the cost of reading and aggregating, not the numbers.

Then it times each command in a subprocess of its own (wall time, and peak resident memory from
``getrusage`` of a one-child wrapper), for the installed ``divtrace`` and, with ``--before REV``,
for the library at git revision ``REV`` (checked out in a temporary worktree and run with its
``src`` first on ``PYTHONPATH``), on the same files, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from divtrace import io  # noqa: E402
from divtrace.config import Study, load_config  # noqa: E402

PROMPTS, K, PER_SHARD = 500, 16, 100
METRICS = ("ead", "sbert", "nli", "vendi")


def _words(text: str) -> list[str]:
    return text.split()


WORDS = _words(
    "the a of to and in that model output answer think step number first then so we have "
    "result value check because each sample story summary code function return list two three"
)


def _texts(rng: np.random.Generator, n: int, words: int) -> list[str]:
    picks = rng.integers(0, len(WORDS), size=(n, words))
    return [" ".join(WORDS[i] for i in row) for row in picks]


def _write(table: pa.Table, path: Path, contract: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"contract": contract, "synthetic": True})
    pq.write_table(table.replace_schema_metadata({io.METADATA_KEY: meta}), path)


def synthesise(root: Path, seed: int = 0) -> dict[str, list[str]]:
    """Write every input file; return the lists of paths by kind, and the lineage JSON."""
    study = Study(load_config(REPO / "config/olmo3.yaml"))
    rng = np.random.default_rng(seed)
    pool_answers = _texts(rng, 4000, 40)
    pool_reasoning = _texts(rng, 4000, 60)
    pool_prompts = _texts(rng, PROMPTS, 50)
    files: dict[str, list[str]] = {"diversity": [], "quality": [], "generations": []}
    prompt_ids = np.array([f"p{i}" for i in range(PROMPTS)], dtype=object)
    for model, task, cot in study.runs():
        n = min(PROMPTS, int(study.task(task)["n_prompts"]))
        ids = prompt_ids[:n]
        verifiable = study.is_verifiable(task)
        # generations, one file per shard
        for shard in range(study.n_shards(task)):
            lo, hi = shard * PER_SHARD, min(n, (shard + 1) * PER_SHARD)
            rows = (hi - lo) * K
            pid = np.repeat(ids[lo:hi], K)
            finish = rng.choice(["stop", "length"], size=rows, p=[0.9, 0.1])
            closed = rng.random(rows) > 0.05
            table = pa.table(
                {
                    "model": [model] * rows,
                    "task": [task] * rows,
                    "cot": [cot] * rows,
                    "prompt_id": pid.tolist(),
                    "sample": np.tile(np.arange(K), hi - lo),
                    "seed": np.arange(rows),
                    "prompt_text": [pool_prompts[int(p[1:])] for p in pid],
                    "raw": [pool_reasoning[i] for i in rng.integers(0, 4000, rows)],
                    "reasoning": [pool_reasoning[i] for i in rng.integers(0, 4000, rows)],
                    "answer": [pool_answers[i] for i in rng.integers(0, 4000, rows)],
                    "think_closed": pa.array(closed.tolist(), pa.bool_()),
                    "n_tokens": rng.integers(10, 4000, rows),
                    "finish_reason": finish.tolist(),
                    "backend": ["vllm"] * rows,
                },
                schema=io.GENERATIONS,
            )
            path = root / f"generations/{model}/{task}/cot-{cot}/shard-{shard:04d}.parquet"
            _write(table, path, "generations")
            files["generations"].append(str(path))
        # quality
        correct = rng.random((n, K)) < rng.uniform(0.1, 0.9)
        if verifiable:
            rows = n * K
            # a few distinct answers per prompt; their classes as divtrace score writes them
            answers = [str(a) for a in rng.integers(40, 44, size=rows)]
            table = pa.table(
                {
                    "model": [model] * rows,
                    "task": [task] * rows,
                    "cot": [cot] * rows,
                    "prompt_id": np.repeat(ids, K).tolist(),
                    "sample": np.tile(np.arange(K), n),
                    "correct": correct.ravel(),
                    "score": correct.ravel().astype(float),
                    "extracted": answers,
                    "detail": pa.array([None] * rows, pa.string()),
                    "vote": answers,
                },
                schema=io.QUALITY.append(pa.field("vote", pa.string())),
            )
            path = root / f"quality/{model}/{task}/cot-{cot}.parquet"
            _write(table, path, "quality")
            files["quality"].append(str(path))
        # diversity
        columns: dict[str, list] = {name: [] for name in [*io.DIVERSITY.names, "n_dropped"]}
        subsets = [("all", np.full(n, True))]
        if verifiable:
            subsets.append(("correct", correct.sum(axis=1) >= 2))
        for subset, have in subsets:
            kept = ids[have]
            for metric in METRICS:
                values = rng.uniform(0.1, 0.9, len(kept)) * (15 if metric == "vendi" else 1)
                columns["model"] += [model] * (len(kept) + 1)
                columns["task"] += [task] * (len(kept) + 1)
                columns["cot"] += [cot] * (len(kept) + 1)
                columns["scope"] += ["per_input"] * len(kept) + ["across_input"]
                columns["subset"] += [subset] * (len(kept) + 1)
                columns["prompt_id"] += [*kept.tolist(), None]
                columns["metric"] += [metric] * (len(kept) + 1)
                columns["value"] += [*values.tolist(), float(values.mean())]
                columns["n_outputs"] += [K] * len(kept) + [len(kept)]
                columns["n_dropped"] += [0] * (len(kept) + 1)
        schema = pa.schema([*io.DIVERSITY, pa.field("n_dropped", pa.int64())])
        path = root / f"diversity/{model}/{task}/cot-{cot}.parquet"
        _write(pa.table(columns, schema=schema), path, "diversity")
        files["diversity"].append(str(path))
    files["lineage"] = [json.dumps(study.lineage.to_dict(), sort_keys=True)]
    return files


WRAPPER = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "wall = time.perf_counter() - start\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
    "print(f'{wall:.2f} {peak:.0f} {code}')\n"
)


def measure(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of ``command`` run alone in a wrapper process."""
    with open(log, "w") as handle:
        result = subprocess.run(
            [sys.executable, "-c", WRAPPER, *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
            check=True,
        )
    wall, peak, code = result.stdout.strip().splitlines()[-1].split()
    if code != "0":
        raise RuntimeError(f"{command[:4]} failed (exit {code}); see {log}")
    return float(wall), float(peak)


def run_commands(
    label: str, files: dict[str, list[str]], root: Path, n_boot: int, env: dict[str, str]
) -> dict[str, tuple[float, float]]:
    out = root / f"out-{label}"
    tables, figures = out / "tables", out / "figures"
    cli = [sys.executable, "-m", "divtrace.cli"]
    args_file = root / f"summarize-{label}.args"
    summarize = [
        *cli,
        "summarize",
        "--diversity",
        *files["diversity"],
        "--quality",
        *files["quality"],
        "--generations",
        *files["generations"],
        "--lineage",
        files["lineage"][0],
        "--n-boot",
        str(n_boot),
        "--out-dir",
        str(tables),
    ]
    args_file.write_text("\n".join(summarize))
    draw = [
        *cli,
        "figures",
        "--tables-dir",
        str(tables),
        "--lineage",
        files["lineage"][0],
        "--out-dir",
        str(figures),
    ]
    return {
        "summarize": measure(summarize, env, root / f"summarize-{label}.log"),
        "figures": measure(draw, env, root / f"figures-{label}.log"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="where the inputs go (default: a temporary directory)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--before", help="git revision to time as well, on the same files")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    root = Path(args.workdir or tempfile.mkdtemp(prefix="divtrace-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    files = synthesise(root)
    size = sum(Path(p).stat().st_size for kind in ("diversity", "quality", "generations")
               for p in files[kind])  # fmt: skip
    print(
        f"inputs: {len(files['diversity'])} diversity, {len(files['quality'])} quality, "
        f"{len(files['generations'])} generation files, {size / 2**20:,.0f} MiB, "
        f"written in {time.perf_counter() - started:.0f} s ({root})"
    )
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    results = {}
    worktree = None
    try:
        if args.before:
            worktree = Path(tempfile.mkdtemp(prefix="divtrace-before-"))
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.before],
                check=True,
                capture_output=True,
            )
            before_env = {**env, "PYTHONPATH": str(worktree / "src")}
            results[f"before ({args.before})"] = run_commands(
                "before", files, root, args.n_boot, before_env
            )
        results["now"] = run_commands("now", files, root, args.n_boot, env)
    finally:
        if worktree is not None:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
                check=False,
                capture_output=True,
            )
    print(f"\nn_boot {args.n_boot}; wall seconds / peak resident MiB per command\n")
    print(f"  {'version':<24} {'summarize':>18} {'figures':>18}")
    for label, timings in results.items():
        cells = [
            f"{timings[c][0]:7.1f} s {timings[c][1]:6.0f} MiB" for c in ("summarize", "figures")
        ]
        print(f"  {label:<24} {cells[0]:>18} {cells[1]:>18}")
    if not args.keep and not args.workdir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
