"""The ``paper`` prompt style against a transcription of the paper's code and of lighteval 0.12.

The oracle below is written from the sources, independently of ``divtrace.tasks``: the paper's
prompt functions (``lighteval_{summarization,extended,open_ended}_tasks.py``, PAPER.md §3.2), its
PRISM filter (``_is_prism_valid``), lighteval's prompt manager (``_prepare_plain_text``,
``_prepare_chat_template``, ``_extract_query`` with ``instruction=""``) and its document
selection (``LightevalTask.get_docs``: ``random.Random(); seed(42); shuffle``, first n).
Checked on the demo miniatures of all 15 families and on the real records of ``../shared``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from divtrace import io
from divtrace.cli import main
from divtrace.tasks import FAMILIES, styles
from divtrace.tasks.prompts import build_prompts, read_jsonl

from .conftest import REPO

DEMO = REPO / "resources" / "tasks" / "demo"


# --------------------------------------------------------------------------- the oracle
def _alpaca(line: dict) -> str:
    instruction, input_text = line.get("instruction", ""), line.get("input", "")
    if input_text:
        return (
            "Below is an instruction that describes a task, paired with an input that provides "
            "further context. Write a response that appropriately completes the request.\n\n"
            f"### Instruction:\n{instruction}\n\n### Input:\n{input_text}\n\n### Response:\n"
        )
    return (
        "Below is an instruction that describes a task. Write a response that appropriately "
        f"completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
    )


def _wildbench(line: dict) -> str:
    conversation = line.get("conversation_input", [])
    if conversation and isinstance(conversation, list):
        first = conversation[0]
        query = first.get("content", "") if isinstance(first, dict) else str(first)
    else:
        query = str(conversation)
    return query.strip()


def _crux(line: dict) -> str:
    return (
        f"Given the following Python function:\n\n```python\n{line.get('code', '')}\n```\n\n"
        f"What is the output of `f({line.get('input', '')})`?\n\nAnswer:"
    )


PAPER_QUERY: dict[str, Callable[[dict], str]] = {
    "tldr": lambda r: (
        f"SUBREDDIT: {r.get('subreddit', '')}\nTITLE: {r.get('title', '')}\n"
        f"POST: {r.get('post', '')}\nTL;DR:"
    ),
    "cnn_dailymail": lambda r: f"ARTICLE: {r.get('article', '')}\nTL;DR:",
    "xsum": lambda r: f"ARTICLE: {r.get('document', '')}\nTL;DR:",
    "humaneval": lambda r: r.get("prompt", ""),
    "mbpp": lambda r: f'"""\n{r.get("text", "")}\n"""\n',
    "cruxeval": _crux,
    "gsm8k": lambda r: f"Question: {r.get('question', '')}\n\nAnswer:",
    "math_algebra": lambda r: f"Problem: {r.get('problem', '')}\n\nSolution:",
    "math_geometry": lambda r: f"Problem: {r.get('problem', '')}\n\nSolution:",
    "truthfulqa": lambda r: f"Q: {r.get('question', '')}\nA:",
    "alpaca": _alpaca,
    "ifeval": lambda r: r.get("prompt", ""),
    "writingprompts": lambda r: f"{r.get('prompt', '').strip()}\n\n",
    "prism": lambda r: r.get("opening_prompt", "").strip(),
    "wildbench": _wildbench,
}

# The task configs' stop_sequence and generation_size (PAPER.md §3.2).
PAPER_STOP = {
    "tldr": ["\n\n"],
    "cnn_dailymail": ["\n\n"],
    "xsum": ["\n"],
    "humaneval": ["\nclass ", "\ndef ", "\n#", "\nif __name__"],
    "mbpp": ["\nclass ", "\n#", "\nif __name__"],
    "cruxeval": ["\nGiven", "\n\nGiven"],
    "gsm8k": ["\nQuestion:", "\n\nQuestion"],
    "math_algebra": ["\nProblem:", "\n\nProblem"],
    "math_geometry": ["\nProblem:", "\n\nProblem"],
    "truthfulqa": ["\nQ:", "\n\n"],
    "alpaca": ["\n\n###", "\n\n##"],
    "ifeval": [],
    "writingprompts": [],
    "prism": [],
    "wildbench": [],
}
PAPER_GENERATION_SIZE = {name: 32768 for name in PAPER_STOP} | {"truthfulqa": 512, "cruxeval": 2048}


def is_prism_valid(line: dict) -> bool:
    if not line.get("included_in_balanced_subset", False):
        return False
    prompt = line.get("opening_prompt", "").strip()
    if not prompt:
        return False
    greetings = {"hello", "hi", "hey", "hola", "hello!", "hi!", "hey!", "hello.", "hi."}
    if prompt.lower().rstrip(".!?,") in greetings:
        return False
    if len(prompt) > 0:
        non_ascii = sum(1 for c in prompt if ord(c) > 127)
        if non_ascii / len(prompt) > 0.2:
            return False
    return True


def _extract_query(query: str, instruction: str) -> str:
    return query[len(instruction) :].strip() if query.startswith(instruction) else query


def lighteval_plain_text(query: str, instruction: str = "") -> str:
    """``PromptManager._prepare_plain_text``: no system prompt, no few-shot examples."""
    return "\n\n".join([instruction, _extract_query(query, instruction)])


def lighteval_user_turn(query: str, instruction: str = "") -> str:
    """The user turn of ``PromptManager._prepare_chat_template``: no system prompt, 0-shot."""
    return instruction + _extract_query(query, instruction)


def lighteval_docs(records: list[dict], task: str, n: int | None) -> list[dict]:
    """``dataset.filter(hf_filter)`` (order kept), then ``LightevalTask.get_docs(n)``."""
    docs = [r for r in records if task != "prism" or is_prism_valid(r)]
    n_samples = min(n, len(docs)) if n else len(docs)
    rnd = random.Random()
    rnd.seed(42)
    rnd.shuffle(docs)
    return docs[:n_samples]


# --------------------------------------------------------------------------- checks
def check_paper_prompts(task: str, records: list[dict], n: int | None) -> None:
    table = build_prompts(
        task, FAMILIES[task], records, n=n, seed=1234, source="test", style=styles.PAPER
    )
    expected = lighteval_docs(records, task, n)
    assert len(table) == len(expected)
    for row, doc in zip(table.to_dicts(), expected, strict=True):
        record = records[json.loads(row["meta"])["row"]]
        assert record is doc, f"{task}: selection differs at index {row['index']}"
        query = PAPER_QUERY[task](doc)
        assert row["text"] == lighteval_plain_text(query), task
        assert json.loads(row["messages"]) == [
            {"role": "user", "content": lighteval_user_turn(query)}
        ], task
        assert json.loads(row["meta"])["prompt_style"] == "paper"


ALL = sorted(PAPER_QUERY)


@pytest.mark.parametrize("task", ALL)
def test_paper_style_equals_the_papers_code_on_the_demo_files(task):
    records = read_jsonl(DEMO / f"{task}.jsonl")
    check_paper_prompts(task, records, n=None)
    check_paper_prompts(task, records, n=5)


@pytest.mark.parametrize("task", ALL)
def test_paper_stop_sequences_and_budgets(task):
    family = FAMILIES[task]
    assert list(styles.completion_stop(family, styles.PAPER)) == PAPER_STOP[task]
    assert family.paper_max_tokens == PAPER_GENERATION_SIZE[task]
    assert styles.completion_stop(family, styles.INSTRUCTED) == family.stop


REAL = {
    "gsm8k": ("gsm8k_test_100.jsonl", None),
    "humaneval": ("humaneval.jsonl", None),
    "mbpp": ("mbpp_test_100.jsonl", None),
    "cruxeval": ("cruxeval_100.jsonl", None),
    "ifeval": ("ifeval_input_data.jsonl", None),
    "math_algebra": ("math500_test.jsonl", "Algebra"),
    "math_geometry": ("math500_test.jsonl", "Geometry"),
}


@pytest.mark.parametrize("task", sorted(REAL))
def test_paper_style_equals_the_papers_code_on_real_records(task, shared_real):
    name, subject = REAL[task]
    records = read_jsonl(shared_real / name)
    if subject is not None:
        records = [r for r in records if r["subject"] == subject]
    check_paper_prompts(task, records, n=None)
    check_paper_prompts(task, records, n=min(50, len(records) - 1))


def test_the_oracle_discriminates(shared_real):
    """Paper and instructed styles differ in strings and in selection, so the checks above test
    something: a wrong style or a wrong shuffle would fail them."""
    records = read_jsonl(shared_real / "humaneval.jsonl")
    family = FAMILIES["humaneval"]
    paper = build_prompts("humaneval", family, records, n=20, seed=1234, source="t", style="paper")
    instructed = build_prompts("humaneval", family, records, n=20, seed=1234, source="t")
    assert list(paper["prompt_id"]) != list(instructed["prompt_id"])
    assert not set(paper["text"]) & set(instructed["text"])
    # lighteval strips the query: the HumanEval prompt's newlines at both ends are gone.
    first = records[json.loads(paper["meta"][0])["row"]]
    assert first["prompt"] != first["prompt"].strip()
    assert paper["text"][0] == "\n\n" + first["prompt"].strip()
    # The selection ignores the study's seed: it is lighteval's, fixed at 42.
    again = build_prompts("humaneval", family, records, n=20, seed=99, source="t", style="paper")
    assert list(again["prompt_id"]) == list(paper["prompt_id"])


def test_paper_prism_filter_is_the_papers():
    base = {"conversation_type": "unguided", "included_in_balanced_subset": True}
    cases = [
        {**base, "opening_prompt": "What should I cook tonight?"},
        {**base, "opening_prompt": "  Hello!  "},
        {**base, "opening_prompt": "hi."},
        {**base, "opening_prompt": "Hi there"},
        {**base, "opening_prompt": "¿Qué opinas sobre la importancia de la familia?"},
        {**base, "opening_prompt": "日本の首都はどこですか"},
        {**base, "opening_prompt": "   "},
        {**base, "opening_prompt": "Is tax fair?", "included_in_balanced_subset": False},
        {"conversation_type": "unguided", "opening_prompt": "No flag at all"},
    ]
    keep = FAMILIES["prism"].paper_keep
    assert keep is not None
    assert [keep(c) for c in cases] == [is_prism_valid(c) for c in cases]
    assert [keep(c) for c in cases] == [True, False, False, True, True, False, False, False, False]


def test_prompts_command_writes_the_paper_style(tmp_path, shared_real):
    out = tmp_path / "p.parquet"
    source = str(shared_real / "gsm8k_test_100.jsonl")
    args = ["prompts", "--task", "gsm8k", "--source", source, "--n", "30", "--out", str(out)]
    assert main([*args, "--prompt-style", "paper"]) == 0
    table = io.read_table(out, "prompts")
    meta = io.read_metadata(out)
    assert meta["prompt_style"] == "paper"
    assert meta["selection"]["selection_seed"] == 42
    assert meta["completion_stop"] == PAPER_STOP["gsm8k"]
    records = read_jsonl(source)
    expected = lighteval_docs(records, "gsm8k", 30)
    assert list(table["text"]) == [
        lighteval_plain_text(PAPER_QUERY["gsm8k"](doc)) for doc in expected
    ]
