"""The ``openai`` backend: any OpenAI-compatible chat-completions endpoint (OpenAI, ``vllm
serve``, ...), through the official ``openai`` client.

Requests run on ``concurrency`` threads sharing one client. The client retries 408/409/429/5xx
answers, timeouts and broken connections ``max_retries`` times with exponential backoff and
jitter (honouring a ``Retry-After`` header), and gives each try ``timeout`` seconds. A request
still failing after that is returned as a failure; the others go on.

The API key is handed to the client only, which sends it as the bearer token; it is never
logged, cached or written.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from divtrace.judge.backends import Failure, OnAnswer
from divtrace.judge.cache import Answer, ChatRequest


def make_client(api_key: str, base_url: str | None, max_retries: int, timeout: float) -> Any:
    from openai import OpenAI

    return OpenAI(api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout)


def chat_body(request: ChatRequest) -> dict[str, Any]:
    """The chat-completions request body (also each line of a Batch API input file)."""
    return {
        "model": request.judge_model,
        "messages": [dict(m) for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }


def answer_of(completion: Any) -> Answer:
    """An :class:`Answer` from a chat completion (a client object or its JSON as a dict)."""
    if isinstance(completion, dict):
        choices = completion.get("choices") or [{}]
        text = ((choices[0] or {}).get("message") or {}).get("content")
        usage = completion.get("usage") or {}
        return Answer(text or "", usage.get("prompt_tokens"), usage.get("completion_tokens"))
    text = completion.choices[0].message.content if completion.choices else None
    usage = completion.usage
    return Answer(
        text or "",
        usage.prompt_tokens if usage is not None else None,
        usage.completion_tokens if usage is not None else None,
    )


def complete(
    requests: Sequence[ChatRequest],
    on_answer: OnAnswer,
    *,
    api_key: str,
    base_url: str | None = None,
    concurrency: int = 8,
    max_retries: int = 5,
    timeout: float = 120.0,
) -> list[Failure]:
    """Send ``requests``; ``on_answer`` is called (in this thread) as each one is answered."""
    from openai import OpenAIError

    if not requests:
        return []
    client = make_client(api_key, base_url, max_retries, timeout)

    def send(request: ChatRequest) -> Answer:
        return answer_of(client.chat.completions.create(**chat_body(request)))

    failures: list[Failure] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(send, request): request for request in requests}
        for future in as_completed(futures):
            request = futures[future]
            try:
                answer = future.result()
            except OpenAIError as err:
                failures.append((request, f"{type(err).__name__}: {_reason(err)}"))
                continue
            on_answer(request, answer)
    return failures


def _reason(err: Exception) -> str:
    status = getattr(err, "status_code", None)
    text = str(err).splitlines()[0] if str(err) else ""
    return f"HTTP {status}: {text}"[:300] if status is not None else text[:300]
