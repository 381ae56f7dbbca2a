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


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int
    finish_reason: str  # "stop" (EOS or stop string) or "length"


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

        ``add_special_tokens`` is true for completion-format prompts (the tokenizer adds BOS where
        the model expects one); chat prompts carry their special tokens in the rendered template.
        """
        ...

    def tokenizer(self) -> Any:
        """The checkpoint's tokenizer (used to render chat prompts)."""
        ...
