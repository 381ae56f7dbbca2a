"""``divtrace judge``: an LLM judge's verdicts on one (model, task, CoT) run's samples."""

from __future__ import annotations

import argparse

from divtrace.cli.common import json_arg, log, schema_default
from divtrace.names import JUDGE_BACKENDS, JUDGE_PROTOCOLS

NAME = "judge"
HELP = "judge the samples of an open-ended task with an LLM judge (cached, resumable)"

#: The defaults of the judge's settings (the workflow passes its config's values).
#: Settings the config has no key for (the others default to the schema's ``judge.*``).
DEFAULTS = {"batch_poll": 30.0, "batch_wait": 24 * 3600.0}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", required=True, help="task name")
    p.add_argument(
        "--family", help="task family (default: the one the prompts file records, else the task)"
    )
    p.add_argument("--prompts", required=True, help="prompts Parquet file of the task")
    p.add_argument("--generations", nargs="+", required=True, help="generations Parquet file(s)")
    p.add_argument(
        "--opponent-generations",
        nargs="+",
        help="the opponent's (base model's) generations; needed by the base_pairwise protocol",
    )
    p.add_argument("--out", required=True, help="output judgements Parquet file")
    p.add_argument("--backend", required=True, choices=JUDGE_BACKENDS, help="how requests go")
    p.add_argument(
        "--base-url",
        help="OpenAI-compatible endpoint, e.g. http://node:8000/v1 (default: OpenAI's)",
    )
    p.add_argument("--judge-model", required=True, help="judge model name (part of every key)")
    p.add_argument(
        "--judge-model-dir",
        help="vllm backend: the judge model's directory (its weights; default: --judge-model, "
        "a local path or a hub id vLLM fetches)",
    )
    p.add_argument(
        "--judge-engine",
        type=json_arg,
        default={},
        help='vllm backend: vllm.LLM settings as JSON, e.g. \'{"dtype": "float32", '
        '"max_model_len": 4096}\'',
    )
    p.add_argument("--cache-dir", required=True, help="content-addressed answer cache directory")
    p.add_argument(
        "--template-dir",
        help=f"directory of replacement templates named <protocol>.txt ({', '.join(JUDGE_PROTOCOLS)});"
        " a protocol without one uses the package's",
    )
    p.add_argument(
        "--template",
        help="replacement template file for this task's protocol (takes precedence over "
        "--template-dir; config judge.templates.<protocol>)",
    )
    p.add_argument(
        "--api-key-env",
        default=schema_default("judge.api_key_env"),
        help="environment variable holding the API key (sent only as the bearer token); unset "
        "with --base-url: a placeholder key (a local server without authentication)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=schema_default("judge.concurrency"),
        help="openai: requests in flight",
    )
    p.add_argument(
        "--max-retries",
        type=int,
        default=schema_default("judge.max_retries"),
        help="retries of a request on 408/409/429/5xx, timeouts and lost connections "
        "(exponential backoff)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=float(schema_default("judge.timeout_s")),
        help="seconds per request try",
    )
    p.add_argument(
        "--samples-per-prompt",
        type=int,
        default=schema_default("judge.samples_per_prompt"),
        help="judge samples 0..N-1 of each prompt (the paper: sample 0 only)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=float(schema_default("judge.temperature")),
        help="judge temperature",
    )
    p.add_argument(
        "--batch-state",
        help="openai-batch: the file that stores the batch id (default: <out>.batch.json)",
    )
    p.add_argument(
        "--batch-poll", type=float, default=DEFAULTS["batch_poll"], help="seconds between polls"
    )
    p.add_argument(
        "--batch-wait",
        type=float,
        default=DEFAULTS["batch_wait"],
        help="seconds to poll before stopping (the batch id stays stored; rerun to poll again)",
    )


def _api_key(args: argparse.Namespace) -> str:
    import os

    from divtrace.errors import UsageError

    key = os.environ.get(args.api_key_env)
    if key:
        return key
    if args.base_url:
        return "EMPTY"
    raise UsageError(
        f"environment variable {args.api_key_env} (the judge's API key) is not set "
        "(--api-key-env names another)"
    )


def run(args: argparse.Namespace) -> None:
    import json
    from functools import partial
    from pathlib import Path

    from divtrace import io
    from divtrace.judge.cache import AnswerCache
    from divtrace.judge.protocols import build_items, protocol_of
    from divtrace.judge.run import judge
    from divtrace.judge.templates import load_template

    prompts = io.read_table(args.prompts, "prompts")
    family = args.family
    if family is None:
        metas = prompts.get_column("meta").head(1).to_list()
        family = json.loads(metas[0]).get("family") if metas and metas[0] else None
        family = family or args.task
    protocol = protocol_of(family)
    template_file = None
    if args.template:
        template_file = Path(args.template)
    elif args.template_dir:
        candidate = Path(args.template_dir) / f"{protocol}.txt"
        template_file = candidate if candidate.is_file() else None
    template = load_template(protocol, template_file)
    columns = ["model", "task", "cot", "prompt_id", "sample", "answer"]
    generations = io.read_tables(
        args.generations, "generations", columns=columns, expect={"task": args.task}
    )
    io.expected_run(args.out, generations)  # one run
    opponent = None
    if args.opponent_generations:
        opponent = io.read_tables(
            args.opponent_generations, "generations", columns=columns, expect={"task": args.task}
        )
    items = build_items(family, template, prompts, generations, opponent, args.samples_per_prompt)
    if args.backend == "vllm":
        from divtrace.judge.backends import vllm_offline

        send = partial(
            vllm_offline.complete,
            model_dir=args.judge_model_dir or args.judge_model,
            engine=args.judge_engine,
        )
    elif args.backend == "openai":
        from divtrace.judge.backends import openai_chat

        send = partial(
            openai_chat.complete,
            api_key=_api_key(args),
            base_url=args.base_url,
            concurrency=args.concurrency,
            max_retries=args.max_retries,
            timeout=args.timeout,
        )
    else:
        from divtrace.judge.backends import openai_batch

        send = partial(
            openai_batch.complete,
            api_key=_api_key(args),
            state_file=args.batch_state or openai_batch.state_path(args.out),
            base_url=args.base_url,
            max_retries=args.max_retries,
            timeout=args.timeout,
            poll_interval=args.batch_poll,
            wait=args.batch_wait,
            log=log,
        )
    result = judge(
        items,
        judge_model=args.judge_model,
        template_version=template.version,
        cache=AnswerCache(args.cache_dir),
        send=send,
        temperature=args.temperature,
    )
    io.write_table(
        result.frame,
        args.out,
        "judgements",
        metadata={
            "task": args.task,
            "family": family,
            "protocol": protocol,
            "judge_model": args.judge_model,
            "template_version": template.version,
            "template": template.origin,
            "backend": args.backend,
            "inputs": [str(p) for p in args.generations],
            "opponent_inputs": [str(p) for p in args.opponent_generations or []],
        },
    )
    log(
        f"{args.task}: {len(result.frame)} judgement(s) ({protocol}), "
        f"{result.n_failed_parse} unparsed, {result.n_sent} request(s) sent, "
        f"{result.n_requests - result.n_sent} cached → {args.out}"
    )
