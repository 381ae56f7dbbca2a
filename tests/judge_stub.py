"""A stand-in judge server on 127.0.0.1: chat completions and the Batch API routes, stdlib only.

It decides verdicts from the texts it is sent, so a test can tell what the right verdict is:
the longer answer is the better one (equal lengths: a tie). It answers each protocol in its
format (:mod:`divtrace.judge.instructions`): the ranking list, a ``[[A>B]]``-style label, or JSON
with a ``score`` (the number of words of the answer, clipped to 1–10).

Switches: ``fail`` (a list of HTTP statuses returned, one per request, before answering
normally), ``garbage`` (answer text with no verdict), ``batch_polls`` (polls a batch stays
``in_progress`` before completing). It records every request (path, the ``Authorization``
header, the body) in ``requests``.

Run alone (``python -m tests.judge_stub --port 8765``) it serves until interrupted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _between(text: str, start: str, end: str) -> str:
    match = re.search(re.escape(start) + r"(.*?)" + re.escape(end), text, re.DOTALL)
    return match.group(1).strip() if match else ""


def decide(messages: list[dict[str, str]]) -> str:
    """The stub's answer to a judge request (by the protocol the text shows)."""
    text = "\n".join(m["content"] for m in messages)
    if "<|The Start of Assistant A's Answer|>" in text:
        a = _between(text, "<|The Start of Assistant A's Answer|>", "<|The End of Assistant A's")
        b = _between(text, "<|The Start of Assistant B's Answer|>", "<|The End of Assistant B's")
        if len(a) == len(b):
            label = "A=B"
        elif len(a) > len(b):
            label = "A>>B" if len(a) >= 2 * len(b) else "A>B"
        else:
            label = "B>>A" if len(b) >= 2 * len(a) else "B>A"
        return f"Both have merits. My final verdict is [[{label}]]."
    if "model_1:" in text:
        one = _between(text, "model_1:\n", "\n\nmodel_2:")
        two = _between(text, "model_2:\n", "\n\nReply with")
        ranks = (1, 1) if len(one) == len(two) else (1, 2) if len(one) > len(two) else (2, 1)
        return str([{"model": "model_1", "rank": ranks[0]}, {"model": "model_2", "rank": ranks[1]}])
    answer = _between(text, "# The response to grade\n", "\n\n# Checklist")
    score = max(1, min(10, len(answer.split())))
    return "```json\n" + json.dumps({"strengths": "-", "weaknesses": "-", "score": score}) + "\n```"


def completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    prompt_tokens = sum(len(m["content"].split()) for m in body["messages"])
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
        },
    }


@dataclass
class StubState:
    fail: list[int] = field(default_factory=list)
    garbage: bool = False
    batch_polls: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> str:
        return "I would rather not say." if self.garbage else decide(body["messages"])

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r["path"] == path)


def _multipart_file(body: bytes, content_type: str) -> bytes:
    boundary = content_type.split("boundary=", 1)[1].strip().strip('"').encode()
    for part in body.split(b"--" + boundary):
        head, sep, data = part.partition(b"\r\n\r\n")
        if sep and b'name="file"' in head:
            return data.removesuffix(b"\r\n")
    raise ValueError("no file part")


class _Handler(BaseHTTPRequestHandler):
    state: StubState

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status in (429, 500, 503):
            self.send_header("retry-after-ms", "5")
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: bytes) -> None:
        with self.state.lock:
            self.state.requests.append(
                {
                    "path": self.path,
                    "method": self.command,
                    "authorization": self.headers.get("Authorization"),
                    "body": body,
                }
            )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self._record(body)
        state = self.state
        if self.path == "/v1/chat/completions":
            with state.lock:
                status = state.fail.pop(0) if state.fail else 200
            if status != 200:
                self._send(status, {"error": {"message": f"stub {status}", "type": "stub"}})
                return
            request = json.loads(body)
            self._send(200, completion(request, state.answer(request)))
        elif self.path == "/v1/files":
            data = _multipart_file(body, self.headers["Content-Type"])
            with state.lock:
                file_id = f"file-{next(state.ids)}"
                state.files[file_id] = data
            self._send(200, _file_object(file_id, len(data)))
        elif self.path == "/v1/batches":
            request = json.loads(body)
            with state.lock:
                batch_id = f"batch-{next(state.ids)}"
                state.batches[batch_id] = {
                    "id": batch_id,
                    "object": "batch",
                    "endpoint": request["endpoint"],
                    "input_file_id": request["input_file_id"],
                    "completion_window": request["completion_window"],
                    "status": "validating",
                    "created_at": 0,
                }
                state.polls[batch_id] = 0
            self._send(200, state.batches[batch_id])
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_GET(self) -> None:
        self._record(b"")
        state = self.state
        match_batch = re.fullmatch(r"/v1/batches/([\w-]+)", self.path)
        match_file = re.fullmatch(r"/v1/files/([\w-]+)/content", self.path)
        if match_batch and match_batch.group(1) in state.batches:
            batch_id = match_batch.group(1)
            with state.lock:
                batch = state.batches[batch_id]
                state.polls[batch_id] += 1
                if batch["status"] != "completed" and state.polls[batch_id] > state.batch_polls:
                    batch["output_file_id"] = self._run_batch(batch["input_file_id"])
                    batch["status"] = "completed"
                elif batch["status"] != "completed":
                    batch["status"] = "in_progress"
            self._send(200, batch)
        elif match_file and match_file.group(1) in state.files:
            self._send(200, None, raw=state.files[match_file.group(1)])
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def _run_batch(self, input_file_id: str) -> str:
        lines = []
        for line in self.state.files[input_file_id].decode().splitlines():
            if not line.strip():
                continue
            request = json.loads(line)
            body = request["body"]
            lines.append(
                json.dumps(
                    {
                        "id": f"req-{request['custom_id'][:8]}",
                        "custom_id": request["custom_id"],
                        "response": {
                            "status_code": 200,
                            "request_id": "stub",
                            "body": completion(body, self.state.answer(body)),
                        },
                        "error": None,
                    }
                )
            )
        file_id = f"file-{next(self.state.ids)}"
        self.state.files[file_id] = ("\n".join(lines) + "\n").encode()
        return file_id


def _file_object(file_id: str, size: int) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": 0,
        "filename": "input.jsonl",
        "purpose": "batch",
        "status": "processed",
    }


class JudgeStub:
    """The server in a daemon thread; ``url`` is its ``/v1`` base URL."""

    def __init__(self, port: int = 0, state: StubState | None = None) -> None:
        self.state = state or StubState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> JudgeStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with JudgeStub(args.port) as stub:
        print(stub.url, flush=True)
        stub.thread.join()


if __name__ == "__main__":
    main()
