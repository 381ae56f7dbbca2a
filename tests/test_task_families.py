"""The 15 task families: demo miniatures, prompt rendering, self-consistent gold answers, the
PRISM filter and balance, and loading a local Hugging Face-style dataset directory."""

from __future__ import annotations

import ast
import json

import pytest

from divtrace.quality.code import judge_humaneval, judge_mbpp
from divtrace.quality.exact import judge_cruxeval, judge_truthfulqa
from divtrace.quality.math import judge_math
from divtrace.tasks import FAMILIES, TaskDataError
from divtrace.tasks.base import TaskFamily
from divtrace.tasks.prism import is_english
from divtrace.tasks.prompts import (
    build_prompts,
    build_prompts_and_selection,
    load_records,
    read_jsonl,
    select,
    select_records,
)

from .conftest import REPO

DEMO = REPO / "resources" / "tasks" / "demo"

ALL_FAMILIES = (
    "gsm8k",
    "math_algebra",
    "math_geometry",
    "humaneval",
    "mbpp",
    "cruxeval",
    "ifeval",
    "truthfulqa",
    "tldr",
    "cnn_dailymail",
    "xsum",
    "alpaca",
    "writingprompts",
    "prism",
    "wildbench",
)
NEW_NON_VERIFIABLE = ("tldr", "cnn_dailymail", "xsum", "alpaca", "prism", "wildbench")


def demo(name: str) -> list[dict]:
    return read_jsonl(DEMO / f"{name}.jsonl")


def demo_table(name: str):
    return build_prompts(name, FAMILIES[name], demo(name), n=None, seed=1234, source="demo")


def by_id(name: str) -> dict[str, dict]:
    """Demo records keyed by the prompt id they get."""
    family = FAMILIES[name]
    return {
        f"{name}/{family.record_id(record, row)[1]}": record
        for row, record in enumerate(demo(name))
    }


def rows(table) -> list[dict]:
    return table.to_dicts()


def references(table) -> list[dict]:
    return [json.loads(r) for r in table["reference"]]


def test_registry_holds_the_fifteen_families():
    assert set(FAMILIES) == set(ALL_FAMILIES)
    assert all(FAMILIES[name].name == name for name in FAMILIES)
    for name in NEW_NON_VERIFIABLE:
        assert not FAMILIES[name].verifiable
        assert FAMILIES[name].stop, f"{name} has no completion stop sequences"


def test_a_vote_has_meaning_for_the_answer_based_judges_only():
    # majority@K is computed for the families whose judge compares an extracted answer (and that
    # name the equivalence it groups by); for the others it is missing (quality.metrics).
    from divtrace.quality.exact import same_output
    from divtrace.quality.math import answers_match
    from divtrace.quality.metrics import family_equivalence

    voting = {name for name, family in FAMILIES.items() if family.votes}
    assert voting == {"gsm8k", "math_algebra", "math_geometry", "cruxeval"}
    assert all(FAMILIES[name].verifiable for name in voting)
    for name in ALL_FAMILIES:
        expected = {"cruxeval": same_output}.get(name, answers_match if name in voting else None)
        assert family_equivalence(name) is expected, name
    assert family_equivalence("no such family") is None
    assert same_output("[1, 2]", "[1,2]") and not same_output("1", "1.0")
    with pytest.raises(ValueError, match="needs a judge"):
        TaskFamily(
            name="x",
            hf_id="x",
            split="test",
            required_fields=(),
            render_text=str,
            render_user=str,
            reference=dict,
            equivalence="divtrace.quality.math:answers_match",
        )


@pytest.mark.parametrize("name", ALL_FAMILIES)
def test_demo_miniature_builds_a_prompts_table(name):
    records = demo(name)
    assert len(records) >= 8
    table = demo_table(name)
    assert len(table) >= 8
    assert table["prompt_id"].n_unique() == len(table)
    assert list(table["index"]) == list(range(len(table)))
    assert (table["task"] == name).all()
    for row in table.iter_rows(named=True):
        assert isinstance(row["text"], str) and row["text"].strip()
        messages = json.loads(row["messages"])
        assert len(messages) == 1 and messages[0]["role"] == "user"
        assert messages[0]["content"].strip()
        assert isinstance(json.loads(row["reference"]), dict)
        assert json.loads(row["meta"])["family"] == name
    # Larger n extends the same order (docs/design.md §2: the shard of a prompt depends only on its index).
    first = build_prompts(name, FAMILIES[name], records, n=5, seed=1234, source="demo")
    assert list(first["prompt_id"]) == list(table["prompt_id"][:5])


# --------------------------------------------------------------------------- rendering


def test_tldr_prompt_and_reference():
    record = {
        "id": "t3_x",
        "subreddit": "cats",
        "title": "Cat naps in sink",
        "post": "She ignores her bed.",
        "summary": "Cat prefers the sink.",
    }
    table = build_prompts("tldr", FAMILIES["tldr"], [record], n=1, seed=0, source="t")
    assert table["prompt_id"][0] == "tldr/t3_x"
    text = "SUBREDDIT: r/cats\nTITLE: Cat naps in sink\nPOST: She ignores her bed."
    assert table["text"][0] == text + "\nTL;DR:"
    assert json.loads(table["messages"][0])[0]["content"] == (
        "Summarize the following Reddit post in one or two sentences.\n\n" + text
    )
    assert json.loads(table["reference"][0]) == {"reference": "Cat prefers the sink."}
    assert json.loads(table["meta"][0])["subreddit"] == "cats"
    # A subreddit given with its "r/" is not doubled.
    again = build_prompts(
        "tldr", FAMILIES["tldr"], [{**record, "subreddit": "r/cats"}], n=1, seed=0, source="t"
    )
    assert again["text"][0].startswith("SUBREDDIT: r/cats\n")


def test_news_summaries_prompt_with_the_full_document():
    article = " ".join(["A long sentence about the town."] * 400)  # never truncated
    cnn = {"article": article, "highlights": "One.\nTwo.", "id": "abc"}
    table = build_prompts(
        "cnn_dailymail", FAMILIES["cnn_dailymail"], [cnn], n=1, seed=0, source="c"
    )
    assert table["text"][0] == f"{article}\nTL;DR:"
    assert table["prompt_id"][0] == "cnn_dailymail/abc"
    assert json.loads(table["reference"][0]) == {"reference": "One.\nTwo."}
    assert article in json.loads(table["messages"][0])[0]["content"]
    xsum = {"document": "Doc text.", "summary": "Short.", "id": "123"}
    table = build_prompts("xsum", FAMILIES["xsum"], [xsum], n=1, seed=0, source="x")
    assert table["text"][0] == "Doc text.\nTL;DR:"
    assert json.loads(table["messages"][0])[0]["content"] == (
        "Summarize the following article in one sentence.\n\nDoc text."
    )
    assert json.loads(table["reference"][0]) == {"reference": "Short."}


def test_alpaca_template_with_and_without_input():
    family = FAMILIES["alpaca"]
    plain = {"instruction": "Name a color.", "input": "", "output": "Red."}
    context = {"instruction": "Add them.", "input": "2, 3", "output": "5"}
    table = build_prompts("alpaca", family, [plain, context], n=None, seed=0, source="a")
    text = dict(zip(table["prompt_id"], table["text"], strict=True))
    user = {
        p: json.loads(m)[0]["content"]
        for p, m in zip(table["prompt_id"], table["messages"], strict=True)
    }
    assert text["alpaca/0"] == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nName a color.\n\n### Response:\n"
    )
    assert text["alpaca/1"] == (
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nAdd them.\n\n### Input:\n2, 3\n\n### Response:\n"
    )
    assert user == {"alpaca/0": "Name a color.", "alpaca/1": "Add them.\n\n2, 3"}
    # The demo file's own "text" field is the template followed by the output.
    for record in demo("alpaca"):
        assert record["text"] == family.render_text(record) + record["output"]


def test_wildbench_takes_the_first_user_turn():
    def turn(role, content):
        return {"role": role, "content": content, "language": "English", "toxic": False}

    single = {
        "session_id": "s1",
        "id": "0",
        "conversation_input": [turn("user", "Write a haiku.")],
        "references": {"gpt-4": "Leaves fall."},
        "checklist": ["Three lines?"],
        "primary_tag": "Creative Writing",
    }
    multi = {
        "session_id": "s2",
        "conversation_input": [
            turn("user", "Name a bakery."),
            turn("assistant", "Golden Crust."),
            turn("user", "Shorter."),
        ],
        "references": {"gpt-4": "Crumb."},
        "checklist": ["Is it short?"],
    }
    table = build_prompts(
        "wildbench", FAMILIES["wildbench"], [single, multi], n=None, seed=0, source="w"
    )
    got = {row["prompt_id"]: row for row in rows(table)}
    assert got["wildbench/s1"]["text"] == "User: Write a haiku.\nAssistant:"
    assert json.loads(got["wildbench/s2"]["messages"]) == [
        {"role": "user", "content": "Name a bakery."}
    ]
    assert json.loads(got["wildbench/s1"]["reference"]) == {
        "single_turn": True,
        "reference": "Leaves fall.",
        "checklist": ["Three lines?"],
    }
    # The reference and checklist of a multi-turn record answer its last turn: left out.
    assert json.loads(got["wildbench/s2"]["reference"]) == {"single_turn": False}
    assert json.loads(got["wildbench/s1"]["meta"])["primary_tag"] == "Creative Writing"
    with pytest.raises(TaskDataError, match="no non-empty user turn"):
        build_prompts(
            "wildbench",
            FAMILIES["wildbench"],
            [{"session_id": "s3", "conversation_input": [turn("assistant", "Hi")]}],
            n=1,
            seed=0,
            source="w",
        )


def test_demo_references_hold_the_gold_text():
    for name, field in (
        ("tldr", "summary"),
        ("cnn_dailymail", "highlights"),
        ("xsum", "summary"),
        ("alpaca", "output"),
    ):
        records = by_id(name)
        for row in rows(demo_table(name)):
            assert json.loads(row["reference"])["reference"] == records[row["prompt_id"]][field]


# --------------------------------------------------------------------------- verifiable demos


@pytest.mark.parametrize(
    ("name", "judge", "solution_field"),
    [("humaneval", judge_humaneval, "canonical_solution"), ("mbpp", judge_mbpp, "code")],
)
def test_code_demos_pass_their_own_tests(name, judge, solution_field):
    table = demo_table(name)
    records = by_id(name)
    refs = references(table)
    gold = [records[p][solution_field] for p in table["prompt_id"]]
    verdicts = judge(gold, refs, rows(table), timeout_s=5)
    assert all(v.correct for v in verdicts), [v.detail for v in verdicts if not v.correct]
    # The tests are not vacuous: a function returning None fails every problem.
    wrong = judge(
        [
            "    return None\n" if name == "humaneval" else _none_function(records[p])
            for p in table["prompt_id"]
        ],
        refs,
        rows(table),
        timeout_s=5,
    )
    assert not any(v.correct for v in wrong)


def _none_function(record: dict) -> str:
    header = record["code"].splitlines()[0]
    return f"{header}\n    return None\n"


@pytest.mark.parametrize("name", ["math_algebra", "math_geometry"])
def test_math_demo_solutions_match_their_boxed_answers(name):
    table = demo_table(name)
    records = by_id(name)
    solutions = [records[p]["solution"] for p in table["prompt_id"]]
    verdicts = judge_math(solutions, references(table), rows(table))
    assert all(v.correct for v in verdicts), [v.detail for v in verdicts if not v.correct]
    for record in records.values():
        assert record["type"] in ("Algebra", "Geometry") and record["level"].startswith("Level ")


def test_cruxeval_demo_outputs_are_what_the_code_returns():
    table = demo_table("cruxeval")
    records = by_id("cruxeval")
    for record in records.values():
        namespace: dict = {}
        exec(record["code"], namespace)  # demo code written for this test suite
        assert eval(f"f({record['input']})", namespace) == ast.literal_eval(record["output"])
    answers = [
        f"assert f({records[p]['input']}) == {records[p]['output']}" for p in table["prompt_id"]
    ]
    assert all(v.correct for v in judge_cruxeval(answers, references(table), rows(table)))
    wrong = [f"assert f({records[p]['input']}) == None" for p in table["prompt_id"]]
    assert not any(v.correct for v in judge_cruxeval(wrong, references(table), rows(table)))


def test_truthfulqa_demo_best_answers_are_judged_correct():
    table = demo_table("truthfulqa")
    records = by_id("truthfulqa")
    refs = references(table)
    best = [records[p]["best_answer"] for p in table["prompt_id"]]
    verdicts = judge_truthfulqa(best, refs, rows(table))
    assert all(v.correct for v in verdicts), [v.detail for v in verdicts if not v.correct]
    false = [records[p]["incorrect_answers"][0] for p in table["prompt_id"]]
    assert not any(v.correct for v in judge_truthfulqa(false, refs, rows(table)))


# --------------------------------------------------------------------------- PRISM subset


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("Tell me a joke", True),  # langdetect calls this Finnish
        ("Hi, how are you today?", True),
        ("gun control", True),  # no function words either way: English, as 99% of PRISM
        ("What do you think about the café in Zürich?", True),
        ("¿Qué opinas sobre el aborto?", False),
        ("Wie geht es dir?", False),
        ("Quel est le sens de la vie?", False),
        ("Olá, tudo bem? Eu quero saber sobre o Brasil", False),
        ("Bonjour", False),
        ("你好吗", False),
        ("Привет, как дела?", False),
        ("", False),
    ],
)
def test_prism_english_heuristic(text, english):
    assert is_english(text) is english


def _prism(ctype: str, prompt: str = "What should I cook tonight?", **extra) -> dict:
    return {"opening_prompt": prompt, "conversation_type": ctype, **extra}


def test_prism_filter_and_round_robin_balance():
    family = FAMILIES["prism"]
    records = (
        [_prism("unguided") for i in range(20)]
        + [_prism("values guided") for i in range(5)]
        + [_prism("controversy guided") for i in range(5)]
        + [_prism("unguided", "¿Qué opinas sobre la familia?")]  # row 30: not English
        + [_prism("values guided", included_in_balanced_subset=False)]  # row 31
    )
    chosen, report = select_records("prism", family, records, n=None, seed=7, source="s")
    assert report["n_records"] == 32
    assert report["n_kept"] == 30
    assert report["n_dropped_by_filter"] == 2
    assert 30 not in chosen and 31 not in chosen
    assert sorted(chosen) == list(range(30))  # row numbers stay the source's
    types = [records[row]["conversation_type"] for row in chosen]
    # Round-robin in sorted type order while every type has prompts left.
    cycle = ["controversy guided", "unguided", "values guided"]
    assert types[:15] == cycle * 5
    assert types[15:] == ["unguided"] * 15
    for n, expected in ((9, (3, 3, 3)), (15, (5, 5, 5)), (20, (5, 10, 5))):
        first, report = select_records("prism", family, records, n=n, seed=7, source="s")
        assert first == chosen[:n]
        counts = report["selected_per_group"]
        assert (
            counts["controversy guided"],
            counts["unguided"],
            counts["values guided"],
        ) == expected
    # Within a type the order is the seeded shuffle: another seed, another order.
    other, _ = select_records("prism", family, records, n=None, seed=8, source="s")
    assert other != chosen


def test_prism_demo_drops_two_and_reports_it():
    table, selection = build_prompts_and_selection(
        "prism", FAMILIES["prism"], demo("prism"), n=None, seed=1234, source="demo"
    )
    assert table.equals(demo_table("prism"))
    assert selection["n_dropped_by_filter"] == 2
    assert len(table) == 10
    assert not any("Qué" in t for t in table["text"])
    first_six = [json.loads(m)["conversation_type"] for m in table["meta"][:6]]
    assert sorted(first_six) == sorted(["controversy guided", "unguided", "values guided"] * 2)
    row = rows(table)[0]
    assert row["text"].startswith("User: ") and row["text"].endswith("\nAssistant:")
    assert json.loads(row["reference"]) == {}


def test_a_filter_that_drops_everything_is_an_error():
    with pytest.raises(
        TaskDataError, match=r"record filter \(instructed style\) dropped all 2 records"
    ):
        build_prompts(
            "prism",
            FAMILIES["prism"],
            [_prism("unguided", "Wie geht es dir?"), _prism("unguided", "Hola")],
            n=None,
            seed=0,
            source="p.jsonl",
        )
    with pytest.raises(TaskDataError, match=r"p.jsonl record 0: prism field 'opening_prompt'"):
        build_prompts(
            "prism", FAMILIES["prism"], [_prism("unguided", 5)], n=1, seed=0, source="p.jsonl"
        )
    with pytest.raises(TaskDataError, match=r"p.jsonl record 1: prism record lacks"):
        build_prompts(
            "prism",
            FAMILIES["prism"],
            [_prism("unguided"), {"x": 1}],
            n=1,
            seed=0,
            source="p.jsonl",
        )


def test_families_without_filter_keep_the_plain_seeded_order():
    family = FAMILIES["gsm8k"]
    assert family.keep is None and family.balance_by is None
    records = demo("gsm8k")
    chosen, report = select_records("gsm8k", family, records, n=8, seed=1234, source="d")
    assert chosen == select(len(records), 8, 1234, "gsm8k")
    assert report == {
        "prompt_style": "instructed",
        "selection_seed": 1234,
        "n_records": 10,
        "n_kept": 10,
        "n_dropped_by_filter": 0,
    }
    balanced = TaskFamily(
        name="toy",
        hf_id="x",
        split="test",
        required_fields=("q",),
        render_text=lambda r: r["q"],
        render_user=lambda r: r["q"],
        reference=lambda r: {},
        balance_by="kind",
    )
    items = [{"q": str(i), "kind": "ab"[i % 2]} for i in range(6)]
    chosen, report = select_records("toy", balanced, items, n=4, seed=0, source="d")
    assert report["selected_per_group"] == {"a": 2, "b": 2}


# --------------------------------------------------------------------------- local HF-style dir


def test_load_records_reads_a_local_dataset_directory(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # datasets reads these at import; set the live values too, and keep its cache in tmp_path.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache", raising=False)
    local = tmp_path / "xsum"
    local.mkdir()
    records = demo("xsum")
    (local / "test.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    loaded = load_records(str(local), FAMILIES["xsum"], split="test")
    assert loaded == records
    table = build_prompts("xsum", FAMILIES["xsum"], loaded, n=None, seed=1, source=str(local))
    assert set(table["prompt_id"]) == {f"xsum/{r['id']}" for r in records}
