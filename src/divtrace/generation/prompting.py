"""Render a prompt row for a model: its own chat template, or the completion text.

A reasoning model's chat template may open the think block itself: the Olmo 3 Think template (and
open-instruct's ``olmo_thinker``, which the RL-Zero checkpoints were trained with) ends its
generation prompt with ``<|im_start|>assistant\\n<think>``. The sampled text then starts inside
the block. :class:`RenderedPrompt` keeps what of the assistant turn the prompt already holds
(``turn_prefix``), so the split of the output (:func:`divtrace.generation.cot.split_reasoning`)
reads the turn as the model wrote it.

CoT off prefills the assistant turn with an empty think block. When the template has already
opened the block, only what closes it is appended (the prefill without its opening tag), so the
prompt holds one opening and one closing tag, never ``<think><think></think>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from divtrace.errors import PromptFormatError
from divtrace.generation.cot import THINK_OPEN


@dataclass(frozen=True)
class RenderedPrompt:
    """The exact string the model is conditioned on, and how its assistant turn begins.

    ``appended``: what divtrace added after the chat template (the CoT-off prefill, or the part of
    it that closes a block the template opened); empty otherwise. ``turn_prefix``: the part of the
    assistant turn the prompt already holds (from a think tag the template opened, plus
    ``appended``), to be read before the sampled text. ``template_opened_think``: the chat
    template itself ended with an opening think tag.
    """

    text: str
    appended: str = ""
    turn_prefix: str = ""
    template_opened_think: bool = False


def cot_off_suffix(rendered: str, prefill: str) -> str:
    """What to append to a rendered chat prompt to suppress reasoning with ``prefill``.

    If the prompt already ends with the opening think tag (the template opened the block), the
    prefill without its own opening tag; otherwise the whole prefill.
    """
    if rendered.rstrip().endswith(THINK_OPEN) and prefill.startswith(THINK_OPEN):
        return prefill[len(THINK_OPEN) :]
    return prefill


def _opened_tail(rendered: str) -> str:
    """The tail of ``rendered`` from a think tag the template left open at its end, else ""."""
    stripped = rendered.rstrip()
    if stripped.endswith(THINK_OPEN):
        return rendered[len(stripped) - len(THINK_OPEN) :]
    return ""


def render_prompt(
    tokenizer: Any,
    *,
    text: str | None,
    messages: str | None,
    prompt_format: str,
    cot: str,
    prefill: str,
) -> RenderedPrompt:
    """The prompt the model is conditioned on.

    ``chat`` applies the checkpoint's own chat template with the generation prompt (one user turn
    as the prompts table holds it, no system turn of divtrace's; a template's own default system
    prompt stays); with CoT ``off`` the assistant turn is then prefilled (:func:`cot_off_suffix`).
    ``completion`` uses the task's completion text as it is.
    """
    if prompt_format == "completion":
        if cot != "on":
            raise PromptFormatError(
                "CoT off needs the chat format (completion models have no turn)"
            )
        if text is None:
            raise PromptFormatError("prompt has no 'text' for the completion format")
        return RenderedPrompt(text=text)
    if prompt_format != "chat":
        raise PromptFormatError(f"unknown prompt format {prompt_format!r}")
    if messages is None:
        raise PromptFormatError("prompt has no 'messages' for the chat format")
    if not getattr(tokenizer, "chat_template", None):
        raise PromptFormatError("the checkpoint's tokenizer has no chat template")
    rendered = str(
        tokenizer.apply_chat_template(
            json.loads(messages), tokenize=False, add_generation_prompt=True
        )
    )
    appended = cot_off_suffix(rendered, prefill) if cot == "off" else ""
    opened = _opened_tail(rendered)
    return RenderedPrompt(
        text=rendered + appended,
        appended=appended,
        turn_prefix=opened + appended,
        template_opened_think=bool(opened),
    )
