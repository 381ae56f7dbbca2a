"""Sandbox cost per program: the real HumanEval canonical solutions and the MBPP sample judged.

    python benchmarks/sandbox.py [--data /work/shared/data/real] [--workers 2] [--single]

Judges every HumanEval canonical solution and every MBPP reference program of the sample
(``humaneval.jsonl``, ``mbpp_test_100.jsonl``) as ``divtrace score`` does (two processes per
answer: candidate and harness), and, with ``--single``, also as one program per answer (the
benchmarks' own one-process harness, :func:`divtrace.quality.sandbox.run_programs`), printing
the number correct, the wall time and the time per program for each.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/work/shared/data/real", type=Path)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--single", action="store_true", help="also time one process per answer")
    args = parser.parse_args()

    from divtrace.quality import code, sandbox
    from divtrace.tasks import humaneval, mbpp

    def records(name: str) -> list[dict]:
        lines = (args.data / name).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line]

    he, mb = records("humaneval.jsonl"), records("mbpp_test_100.jsonl")
    he_refs = [humaneval.FAMILY.reference(r) for r in he]
    mb_refs = [mbpp.FAMILY.reference(r) for r in mb]
    print(f"sandbox mode: {sandbox.sandbox_mode()} (namespaces: {sandbox.runner._mode().isolate})")
    for name, answers, refs, judge, build in (
        (
            "humaneval",
            [r["canonical_solution"] for r in he],
            he_refs,
            code.judge_humaneval,
            code.humaneval_program,
        ),
        ("mbpp", [r["code"] for r in mb], mb_refs, code.judge_mbpp, code.mbpp_program),
    ):
        start = time.perf_counter()
        judged = judge(answers, refs, [{}] * len(refs), timeout_s=10, workers=args.workers)
        took = time.perf_counter() - start
        correct = sum(j.correct for j in judged)
        print(
            f"{name:10s} two processes: {correct}/{len(judged)} correct, {took:6.1f} s, "
            f"{1000 * took / len(judged):6.0f} ms/program"
        )
        if args.single:
            programs = [build(a, r)[0] for a, r in zip(answers, refs, strict=True)]
            start = time.perf_counter()
            results = sandbox.run_programs(programs, sandbox.SandboxLimits(10.0), args.workers)
            took = time.perf_counter() - start
            passed = sum(r.passed for r in results)
            print(
                f"{name:10s} one process:   {passed}/{len(results)} correct, {took:6.1f} s, "
                f"{1000 * took / len(results):6.0f} ms/program"
            )


if __name__ == "__main__":
    main()
