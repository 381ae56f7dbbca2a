"""The judge's backends: one request format (:class:`divtrace.judge.cache.ChatRequest`), three
ways to send it. Each backend takes the requests that have no cached answer and calls
``on_answer(request, answer)`` as each answer arrives (the caller caches it at once), and returns
the requests it could not get answered, with the reason; it never raises for one failed request.
"""

from __future__ import annotations

from collections.abc import Callable

from divtrace.judge.cache import Answer, ChatRequest

OnAnswer = Callable[[ChatRequest, Answer], None]
#: (request, why it has no answer)
Failure = tuple[ChatRequest, str]
