"""The interface every sampling backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SamplingParams:
    temperature: float
    top_p: float
    top_k: int
    max_tokens: int
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    """One prompt and the seeds of its samples (one sample per seed)."""

    prompt: str
    seeds: tuple[int, ...]


STOP = "stop"
LENGTH = "length"
PROMPT_TOO_LONG = "prompt_too_long"
#: Why a sample ended: EOS or a stop string; the token budget; never started, because its prompt
#: leaves no room for a new token in the model's context.
FINISH_REASONS = (STOP, LENGTH, PROMPT_TOO_LONG)


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int
    finish_reason: str  # one of FINISH_REASONS
    prompt_tokens: int | None = None


def too_long(n_samples: int, prompt_tokens: int) -> list[Completion]:
    """The samples of a prompt that does not fit the context: no text, no tokens."""
    return [
        Completion(text="", n_tokens=0, finish_reason=PROMPT_TOO_LONG, prompt_tokens=prompt_tokens)
        for _ in range(n_samples)
    ]


@dataclass
class BackendInfo:
    name: str
    versions: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    settings: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    info: BackendInfo

    def generate(
        self,
        requests: Sequence[Request],
        params: SamplingParams,
        *,
        add_special_tokens: bool = False,
    ) -> list[list[Completion]]:
        """Completions per request, in request order, one per seed in seed order.

        ``add_special_tokens``: whether the tokenizer adds its special tokens (BOS where the model
        expects one) when it encodes the prompt: true for completion-format prompts; chat prompts
        carry theirs in the rendered template (the paper's prompt style encodes them with it too,
        as lighteval did). A prompt that leaves no room for one new token in the model's context
        gets its samples as :func:`too_long` completions; it never stops the others.
        """
        ...

    def tokenizer(self) -> Any:
        """The checkpoint's tokenizer (used to render chat prompts)."""
        ...
