"""The ``openai-batch`` backend: the OpenAI Batch API, resumable.

The requests become one JSONL file (one line per request, ``custom_id`` = the request's cache
key, the chat-completions body); it is uploaded (``purpose="batch"``), a batch is created on
``/v1/chat/completions`` and polled until it ends; the output file's lines are mapped back to
their requests by ``custom_id``. As soon as the batch exists its id is written to a state file
(beside the output, :func:`state_path`), so a rerun after an interruption polls that batch
instead of paying for a new one. When the batch has ended and its answers are cached, the state
file is removed; requests it did not answer are returned as failures (a later run sends them in
a new batch). A stored batch that holds none of the requests (the template or judge model
changed since) is dropped, not waited for. Polling stops after ``wait`` seconds with a :class:`~divtrace.errors.JudgeError`
that says to rerun; the state file stays.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from divtrace.errors import JudgeError
from divtrace.judge.backends import Failure, OnAnswer
from divtrace.judge.backends.openai_chat import answer_of, chat_body, make_client
from divtrace.judge.cache import ChatRequest

ENDPOINT = "/v1/chat/completions"
#: Batch states that are final.
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


def state_path(out: str | Path) -> Path:
    """The batch state file of an output file: ``<out>.batch.json``."""
    out = Path(out)
    return out.with_name(out.name + ".batch.json")


def batch_lines(requests: Sequence[ChatRequest]) -> bytes:
    """The Batch API input file of ``requests``."""
    lines = [
        json.dumps(
            {"custom_id": r.key, "method": "POST", "url": ENDPOINT, "body": chat_body(r)},
            ensure_ascii=False,
            sort_keys=True,
        )
        for r in requests
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _write_state(path: Path, state: dict[str, Any]) -> None:
    from divtrace.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(state, sort_keys=True), "utf-8")


def complete(
    requests: Sequence[ChatRequest],
    on_answer: OnAnswer,
    *,
    api_key: str,
    state_file: str | Path,
    base_url: str | None = None,
    max_retries: int = 5,
    timeout: float = 120.0,
    poll_interval: float = 30.0,
    wait: float = 24 * 3600.0,
    log: Callable[[str], None] = lambda message: None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Failure]:
    """Get ``requests`` answered through one batch (the stored one first, if any)."""
    state_file = Path(state_file)
    client = make_client(api_key, base_url, max_retries, timeout)
    by_key = {r.key: r for r in requests}
    failures: list[Failure] = []
    if state_file.is_file():
        state = json.loads(state_file.read_text("utf-8"))
        if set(state["keys"]) & set(by_key):
            log(f"resuming stored batch {state['batch_id']} ({len(state['keys'])} requests)")
            failures = _finish(
                client, state, by_key, on_answer, state_file, poll_interval, wait, sleep
            )
            requests = [r for r in requests if r.key not in set(state["keys"])]
        else:  # a batch of other requests (the template or judge changed): not waited for
            log(f"stored batch {state['batch_id']} holds none of these requests; not polled")
            state_file.unlink()
    if not requests:
        return failures
    upload = client.files.create(
        file=("divtrace-judge.jsonl", batch_lines(requests), "application/jsonl"), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=upload.id,
        endpoint=ENDPOINT,
        completion_window="24h",
        metadata={"created_by": "divtrace judge"},
    )
    state = {"batch_id": batch.id, "input_file_id": upload.id, "keys": [r.key for r in requests]}
    _write_state(state_file, state)
    log(f"created batch {batch.id} of {len(requests)} requests (state in {state_file})")
    by_key.update({r.key: r for r in requests})
    return failures + _finish(
        client, state, by_key, on_answer, state_file, poll_interval, wait, sleep
    )


def _finish(
    client: Any,
    state: dict[str, Any],
    by_key: dict[str, ChatRequest],
    on_answer: OnAnswer,
    state_file: Path,
    poll_interval: float,
    wait: float,
    sleep: Callable[[float], None],
) -> list[Failure]:
    """Poll the batch until it ends, cache its answers, remove the state file."""
    batch_id = state["batch_id"]
    deadline = time.monotonic() + wait
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ENDED:
            break
        if time.monotonic() >= deadline:
            raise JudgeError(
                f"batch {batch_id} is still {batch.status} after {wait:g} s; rerun the same "
                f"command to poll it again (state in {state_file})"
            )
        sleep(poll_interval)
    answered: set[str] = set()
    errors: dict[str, str] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id:
            continue
        for line in client.files.content(file_id).text.splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            key = record.get("custom_id")
            request = by_key.get(key)
            if request is None:
                continue
            response = record.get("response") or {}
            if record.get("error") or response.get("status_code") != 200:
                errors[key] = json.dumps(record.get("error") or response.get("body"))[:300]
                continue
            on_answer(request, answer_of(response.get("body") or {}))
            answered.add(key)
    failures: list[Failure] = []
    for key in state["keys"]:
        if key not in answered and key in by_key:
            why = errors.get(key, f"batch {batch_id} ended {batch.status} without an answer")
            failures.append((by_key[key], why))
    state_file.unlink(missing_ok=True)
    return failures
