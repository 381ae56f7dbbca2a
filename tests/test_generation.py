"""Pure parts of sampling: seeds, prompt rendering, reasoning split."""

from __future__ import annotations

import json

import pytest

from divtrace.generation.cot import split_reasoning
from divtrace.generation.prompting import PromptFormatError, render_prompt
from divtrace.generation.seeds import prompt_seed, sample_seeds

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class TemplateTokenizer:
    """Just enough of a tokenizer to render a chat template with transformers' own renderer."""

    def __init__(self, template: str | None) -> None:
        self.chat_template = template

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, _ = render_jinja_template(
            conversations=[messages],
            chat_template=self.chat_template,
            add_generation_prompt=add_generation_prompt,
        )
        return rendered[0]


MESSAGES = json.dumps([{"role": "user", "content": "What is 2+2?"}])


def test_seeds_depend_only_on_their_key_and_are_spaced_by_k():
    k = 16
    seeds = sample_seeds(1234, "gsm8k", "gsm8k/3", k)
    assert seeds == sample_seeds(1234, "gsm8k", "gsm8k/3", k)
    assert seeds[0] % k == 0 and seeds == list(range(seeds[0], seeds[0] + k))
    assert seeds[-1] < 2**31
    others = {
        s for pid in range(200) for s in sample_seeds(1234, "gsm8k", f"gsm8k/{pid}", k) if pid != 3
    }
    assert not others & set(seeds)
    assert prompt_seed(1234, "gsm8k", "gsm8k/3", k) != prompt_seed(1235, "gsm8k", "gsm8k/3", k)
    assert prompt_seed(1234, "gsm8k", "gsm8k/3", k) != prompt_seed(1234, "math", "gsm8k/3", k)
    with pytest.raises(ValueError):
        prompt_seed(1, "t", "p", 0)


def test_chat_prompt_uses_the_checkpoint_template_golden():
    rendered = render_prompt(
        TemplateTokenizer(CHATML),
        text=None,
        messages=MESSAGES,
        prompt_format="chat",
        cot="on",
        prefill="<think></think>",
    )
    assert rendered == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"


def test_cot_off_prefills_the_assistant_turn():
    rendered = render_prompt(
        TemplateTokenizer(CHATML),
        text=None,
        messages=MESSAGES,
        prompt_format="chat",
        cot="off",
        prefill="<think></think>",
    )
    assert rendered.endswith("<|im_start|>assistant\n<think></think>")


def test_completion_prompt_is_the_task_text():
    assert (
        render_prompt(
            None,
            text="Q: x\nA:",
            messages=MESSAGES,
            prompt_format="completion",
            cot="on",
            prefill="",
        )
        == "Q: x\nA:"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt_format": "chat", "tokenizer": TemplateTokenizer(None)}, "no chat template"),
        ({"prompt_format": "completion", "cot": "off"}, "CoT off needs the chat format"),
        ({"prompt_format": "yaml"}, "unknown prompt format"),
    ],
)
def test_render_errors(kwargs, message):
    args = {"tokenizer": None, "text": "t", "messages": MESSAGES, "cot": "on", "prefill": ""}
    args.update(kwargs)
    with pytest.raises(PromptFormatError, match=message):
        render_prompt(**args)


def test_split_closed_trace():
    split = split_reasoning("<think>2+2 is 4</think> The answer is 4.", reasoning_model=True)
    assert split.reasoning == "2+2 is 4"
    assert split.answer == "The answer is 4."
    assert split.think_closed is True


def test_split_finds_close_tag_without_open_tag():
    split = split_reasoning("add them: 4</think>4", reasoning_model=True)
    assert (split.reasoning, split.answer, split.think_closed) == ("add them: 4", "4", True)


def test_split_uses_last_close_tag():
    split = split_reasoning("<think>a</think>draft</think>final", reasoning_model=True)
    assert split.answer == "final"


def test_unclosed_trace_is_flagged_and_never_an_answer():
    split = split_reasoning("<think>still thinking about 2+2 and", reasoning_model=True)
    assert split.think_closed is False
    assert split.answer == ""
    assert split.reasoning == "still thinking about 2+2 and"


def test_cot_off_prefill_closes_the_block():
    split = split_reasoning("The answer is 4.", reasoning_model=True, prefill="<think></think>")
    assert (split.reasoning, split.answer, split.think_closed) == ("", "The answer is 4.", True)


def test_non_reasoning_model_keeps_the_text():
    split = split_reasoning("  4 </think> 5 ", reasoning_model=False)
    assert (split.reasoning, split.answer, split.think_closed) == (None, "4 </think> 5", None)
