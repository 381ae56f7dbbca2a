"""The judge's content-addressed answer cache: a completed answer is never requested again.

The key of a request is the SHA-256 of the canonical JSON of its backend-independent content:
judge model, template version, messages and sampling parameters (:func:`request_key`). Nothing
that identifies the sender (API key, base URL, backend) is part of it, so an answer obtained
through one backend serves the others, and every shard and rerun that asks the same question.

The cache is a directory with one JSON file per answer (``<key[:2]>/<key>.json``), each
written atomically (:func:`divtrace.io.atomic_path`): a run stopped part-way keeps every answer
it received, and concurrent jobs never see half a file. A file holds the key, the request and the
answer (text and token counts), never credentials.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from divtrace.errors import ContractError


@dataclass(frozen=True)
class ChatRequest:
    """A backend-independent chat request."""

    judge_model: str
    template_version: str
    messages: tuple[Mapping[str, str], ...]
    max_tokens: int
    temperature: float = 0.0

    @property
    def key(self) -> str:
        return request_key(self)

    def content(self) -> dict[str, Any]:
        return {
            "judge_model": self.judge_model,
            "template_version": self.template_version,
            "messages": [dict(m) for m in self.messages],
            "sampling": {"max_tokens": self.max_tokens, "temperature": self.temperature},
        }


@dataclass(frozen=True)
class Answer:
    """A judge's answer: its text and token counts (None where the server gave none)."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def request_key(request: ChatRequest) -> str:
    canonical = json.dumps(
        request.content(), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AnswerCache:
    """The cache directory (created on first write)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Answer | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            answer = record["answer"]
            if record["key"] != key:
                raise ValueError("the key in the file is another")
            return Answer(answer["text"], answer["prompt_tokens"], answer["completion_tokens"])
        except (ValueError, KeyError, TypeError) as err:
            raise ContractError(
                f"judge cache file {path} is damaged ({err}); delete it to request it again"
            ) from err

    def put(self, request: ChatRequest, answer: Answer) -> None:
        from divtrace.io import atomic_path

        key = request.key
        record = {"key": key, "request": request.content(), "answer": asdict(answer)}
        with atomic_path(self._path(key)) as tmp:
            tmp.write_text(json.dumps(record, ensure_ascii=False, sort_keys=True), "utf-8")

    def missing(self, requests: Sequence[ChatRequest]) -> list[ChatRequest]:
        """The requests (distinct by key, first kept) that have no cached answer."""
        seen: set[str] = set()
        out: list[ChatRequest] = []
        for request in requests:
            key = request.key
            if key in seen or self.get(key) is not None:
                continue
            seen.add(key)
            out.append(request)
        return out
