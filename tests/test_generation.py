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


# The shape of the Olmo 3 Think chat template (PAPER.md §12): ChatML, a default system turn when
# the conversation has none, and a generation prompt that opens the think block.
OLMO3_THINK_LIKE = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\n"
    "You are a careful assistant. Think before you answer.<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n<think>{% endif %}"
)


def render_chat(template: str, cot: str, prefill: str = "<think></think>"):
    return render_prompt(
        TemplateTokenizer(template),
        text=None,
        messages=MESSAGES,
        prompt_format="chat",
        cot=cot,
        prefill=prefill,
    )


def test_chat_prompt_uses_the_checkpoint_template_golden():
    rendered = render_chat(CHATML, "on")
    assert rendered.text == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert (rendered.appended, rendered.turn_prefix) == ("", "")
    assert not rendered.template_opened_think


def test_cot_off_prefills_the_assistant_turn():
    rendered = render_chat(CHATML, "off")
    assert rendered.text.endswith("<|im_start|>assistant\n<think></think>")
    assert rendered.appended == rendered.turn_prefix == "<think></think>"


def test_olmo3_think_template_keeps_its_default_system_prompt_and_opens_the_block():
    rendered = render_chat(OLMO3_THINK_LIKE, "on")
    assert rendered.text == (
        "<|im_start|>system\nYou are a careful assistant. Think before you answer.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>"
    )
    assert rendered.template_opened_think and rendered.turn_prefix == "<think>"
    assert rendered.appended == ""


@pytest.mark.parametrize(
    ("prefill", "appended"),
    [("<think>\n</think>\n", "\n</think>\n"), ("<think></think>", "</think>")],
)
def test_cot_off_on_a_template_that_opened_the_block_only_closes_it(prefill, appended):
    rendered = render_chat(OLMO3_THINK_LIKE, "off", prefill)
    turn = rendered.text[rendered.text.rindex("<|im_start|>assistant\n") :]
    assert turn.count("<think>") == 1 and turn.count("</think>") == 1
    assert rendered.text.count("<think>") == 1
    assert rendered.appended == appended
    assert rendered.text.endswith("<|im_start|>assistant\n<think>" + appended)
    assert rendered.turn_prefix == "<think>" + appended
    # The sampled text is read after the closed block: all of it is the answer.
    split = split_reasoning(" 4", reasoning_model=True, turn_prefix=rendered.turn_prefix)
    assert (split.reasoning, split.answer, split.think_closed) == ("", "4", True)


def test_cot_on_output_of_a_template_that_opened_the_block_is_split():
    prefix = render_chat(OLMO3_THINK_LIKE, "on").turn_prefix
    split = split_reasoning(
        "2 and 2 make 4.</think>\n\n4", reasoning_model=True, turn_prefix=prefix
    )
    assert (split.reasoning, split.answer, split.think_closed) == ("2 and 2 make 4.", "4", True)
    # Truncated inside the block the template opened: flagged, never an answer.
    cut = split_reasoning("2 and 2 make", reasoning_model=True, turn_prefix=prefix)
    assert (cut.reasoning, cut.answer, cut.think_closed) == ("2 and 2 make", "", False)


def test_rl_zero_outputs_are_split_and_a_direct_answer_is_kept_whole():
    # An RL-Zero checkpoint trained with a template that opens the block: trace</think>answer.
    prefix = render_chat(OLMO3_THINK_LIKE, "on").turn_prefix
    split = split_reasoning("Let me add. 4</think>The answer is 4.", reasoning_model=True,
                            turn_prefix=prefix)  # fmt: skip
    assert (split.reasoning, split.answer, split.think_closed) == (
        "Let me add. 4",
        "The answer is 4.",
        True,
    )
    # The same model behind a template that does not open a block, writing none: the whole
    # output is the answer, and nothing is flagged.
    direct = split_reasoning(" The answer is 4. ", reasoning_model=True, turn_prefix="")
    assert (direct.reasoning, direct.answer, direct.think_closed) == (
        None,
        "The answer is 4.",
        None,
    )


def test_completion_prompt_is_the_task_text():
    rendered = render_prompt(
        None,
        text="Q: x\nA:",
        messages=MESSAGES,
        prompt_format="completion",
        cot="on",
        prefill="",
    )
    assert rendered.text == "Q: x\nA:" and rendered.turn_prefix == ""


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
    split = split_reasoning("The answer is 4.", reasoning_model=True, turn_prefix="<think></think>")
    assert (split.reasoning, split.answer, split.think_closed) == ("", "The answer is 4.", True)


def test_an_opening_tag_anywhere_without_a_close_is_unclosed():
    split = split_reasoning("Sure. <think>let me see", reasoning_model=True)
    assert (split.answer, split.think_closed) == ("", False)


def test_non_reasoning_model_keeps_the_text():
    split = split_reasoning("  4 </think> 5 ", reasoning_model=False)
    assert (split.reasoning, split.answer, split.think_closed) == (None, "4 </think> 5", None)
