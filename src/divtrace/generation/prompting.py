"""Render a prompt row for a model: its own chat template, or the completion text."""

from __future__ import annotations

import json
from typing import Any


class PromptFormatError(ValueError):
    """A prompt cannot be rendered in the requested format."""


def render_prompt(
    tokenizer: Any,
    *,
    text: str | None,
    messages: str | None,
    prompt_format: str,
    cot: str,
    prefill: str,
) -> str:
    """The exact string the model is conditioned on.

    ``chat`` applies the checkpoint's own chat template with the generation prompt; with CoT
    ``off`` the assistant turn is then prefilled with ``prefill`` (default ``<think></think>``).
    ``completion`` uses the task's completion text as it is.
    """
    if prompt_format == "completion":
        if cot != "on":
            raise PromptFormatError(
                "CoT off needs the chat format (completion models have no turn)"
            )
        if text is None:
            raise PromptFormatError("prompt has no 'text' for the completion format")
        return text
    if prompt_format != "chat":
        raise PromptFormatError(f"unknown prompt format {prompt_format!r}")
    if messages is None:
        raise PromptFormatError("prompt has no 'messages' for the chat format")
    if not getattr(tokenizer, "chat_template", None):
        raise PromptFormatError("the checkpoint's tokenizer has no chat template")
    rendered = tokenizer.apply_chat_template(
        json.loads(messages), tokenize=False, add_generation_prompt=True
    )
    return str(rendered) + (prefill if cot == "off" else "")
