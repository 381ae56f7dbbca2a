"""Benchmark of the behavioural classes of code answers (a script).

    python benchmarks/behaviours.py [--programs 16] [--workers 1 2] [--problem HumanEval/15]

Takes one real HumanEval problem (``../shared/data/real/humaneval.jsonl``), makes ``--programs``
distinct programs from its canonical solution (each with a comment of its own, so that none is
deduplicated away), and times :func:`divtrace.quality.behaviour.behaviour_keys` on them, once per
``--workers`` value (each program is one sandbox process called on the problem's inputs). Prints
the wall time, the time per program, the number of behaviours found, and the wall time
extrapolated to 164 prompts × 16 programs (HumanEval at K = 16, every program distinct, the
same number of workers).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from divtrace.quality.behaviour import behaviour_keys, problem_inputs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--problem", default="HumanEval/15")
    parser.add_argument(
        "--data", default=str(REPO.parent / "shared" / "data" / "real" / "humaneval.jsonl")
    )
    args = parser.parse_args()
    records = {
        r["task_id"]: r
        for r in (json.loads(line) for line in Path(args.data).read_text().splitlines() if line)
    }
    ref = records[args.problem]
    problem = problem_inputs("humaneval", ref, args.problem)
    print(
        f"{args.problem}: {problem.n_tests} test inputs + {len(problem.inputs) - problem.n_tests} derived"
    )
    answers = [
        f"{ref['prompt']}{ref['canonical_solution']}\n# variant {i}\n" for i in range(args.programs)
    ]
    # a different behaviour every fourth program, so that the classes are not all one
    for i in range(0, args.programs, 4):
        answers[i] = answers[i].replace("n + 1", "n")
    for workers in args.workers:
        start = time.perf_counter()
        keys = behaviour_keys(
            "humaneval",
            answers,
            [args.problem] * len(answers),
            {args.problem: ref},
            workers=workers,
        )
        wall = time.perf_counter() - start
        per = wall / len(answers)
        print(
            f"workers {workers}: {len(answers)} programs in {wall:.2f} s ({per * 1000:.0f} ms each, "
            f"{len(set(keys))} behaviours); 164 x 16 extrapolated: {per * 164 * 16:.0f} s"
        )


if __name__ == "__main__":
    main()
