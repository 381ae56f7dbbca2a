"""The toy lineage: corpus, tokenizer, training rows and checkpoint builds (tiny step counts)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from divtrace.errors import ConfigError, FetchError
from divtrace.toy import corpus
from divtrace.toy.build import RECIPES, build_toy_model, register_recipe
from divtrace.toy.tokenizer import (
    CHAT_TEMPLATE,
    EOT,
    IM_END,
    SPECIAL_TOKENS,
    THINK_CLOSE,
    THINK_OPEN,
    special_ids,
    train_tokenizer,
)
from divtrace.toy.train import IGNORE_INDEX, TrainConfig, document_rows, encode_chat_examples

DEMO = Path(__file__).resolve().parents[1] / "resources" / "tasks" / "demo"


def demo_prompts() -> set[str]:
    """The user-facing prompt of every demo record (question / prompt field)."""
    prompts = set()
    # The demo config's tasks, which the toy corpus imitates (the other miniatures are unrelated).
    for path in (DEMO / f"{task}.jsonl" for task in ("gsm8k", "ifeval", "writingprompts")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            prompts.add(str(record.get("question") or record["prompt"]).strip())
    return prompts


# ---------------------------------------------------------------------------------------------
# corpus


def test_import_is_cheap() -> None:
    code = (
        "import sys, divtrace.toy, divtrace.toy.build; "
        "print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_corpus_is_deterministic() -> None:
    assert corpus.pretraining_documents(3, 200) == corpus.pretraining_documents(3, 200)
    assert corpus.pretraining_documents(3, 200) != corpus.pretraining_documents(4, 200)
    for style in corpus.STYLES:
        assert corpus.chat_examples(style, 5, 100) == corpus.chat_examples(style, 5, 100)


def test_documents_use_the_completion_formats() -> None:
    docs = corpus.pretraining_documents(0, 300)
    starts = {d.split(":", 1)[0] for d in docs}
    assert starts == {"Question", "Writing prompt", "Instruction"}
    for doc in docs:
        if doc.startswith("Question: "):
            assert re.fullmatch(r"Question: .+\?\n\nAnswer: .+\n#### \d+", doc, re.S), doc
        elif doc.startswith("Writing prompt: "):
            assert re.fullmatch(r"Writing prompt: \[ WP \] .+\n\nStory: .+", doc, re.S), doc
        else:
            assert re.fullmatch(r"Instruction: .+\n\nResponse: .+", doc, re.S), doc


def test_held_out_prompts_mirror_the_demo_files() -> None:
    prompts = demo_prompts()
    assert len(prompts) == 30
    assert prompts <= corpus.HELD_OUT_PROMPTS


def test_corpus_excludes_demo_prompts() -> None:
    prompts = demo_prompts()
    docs = corpus.pretraining_documents(0, 8000)
    assert not [p for p in prompts if any(p in d for d in docs)]
    for style in corpus.STYLES:
        users = {ex.user for ex in corpus.chat_examples(style, 1, 3000)}
        assert not users & prompts


def test_held_out_prompts_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    first = corpus.samples(7, 20)[0].user
    monkeypatch.setattr(corpus, "HELD_OUT_PROMPTS", frozenset({first}))
    again = corpus.samples(7, 20)
    assert len(again) == 20
    assert first not in {s.user for s in again}


def test_chat_examples_by_style() -> None:
    think = corpus.chat_examples("think", 0, 200)
    instruct = corpus.chat_examples("instruct", 0, 200)
    assert {ex.family for ex in think} == set(corpus.FAMILIES)
    assert all(ex.reasoning for ex in think)
    assert all(ex.reasoning is None for ex in instruct)
    for ex in [*think, *instruct]:
        if ex.family == "math":
            assert re.search(r"\n#### \d+$", ex.answer), ex.answer
        if ex.family == "story":
            assert ex.user.startswith("[ WP ] ")
    ex = think[0]
    assert ex.assistant_content() == f"{THINK_OPEN}{ex.reasoning}{THINK_CLOSE}{ex.answer}"
    assert instruct[0].assistant_content() == instruct[0].answer


def test_think_style_is_narrower_than_instruct() -> None:
    def math_openings(style: str) -> set[str]:
        examples = corpus.chat_examples(style, 0, 400)
        texts = [ex.reasoning or ex.answer for ex in examples if ex.family == "math"]
        return {" ".join(re.sub(r"\d+", "N", t).split()[:3]) for t in texts}

    assert len(math_openings("think")) <= 3 < len(math_openings("instruct"))


def test_unknown_style_names_the_key() -> None:
    with pytest.raises(ValueError, match="style"):
        corpus.chat_examples("poetry", 0, 1)


# ---------------------------------------------------------------------------------------------
# tokenizer and training rows


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return train_tokenizer(corpus.pretraining_documents(0, 400), vocab_size=600)


def test_tokenizer_specials_are_single_tokens(tokenizer: Any) -> None:
    assert special_ids(tokenizer) == {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    assert len(tokenizer) == 600
    assert tokenizer.eos_token == EOT and tokenizer.bos_token == EOT
    assert tokenizer.pad_token == "<|pad|>"
    ids = tokenizer.encode(f"a{THINK_OPEN}b{THINK_CLOSE}c{IM_END}", add_special_tokens=False)
    assert ids[1] == 4 and ids[3] == 5 and ids[-1] == 3
    # think tags survive skip_special_tokens (vLLM's default), the chat markers do not
    assert tokenizer.decode(ids, skip_special_tokens=True) == "a<think>b</think>c"


def test_tokenizer_is_deterministic(tokenizer: Any) -> None:
    again = train_tokenizer(corpus.pretraining_documents(0, 400), vocab_size=600)
    assert again.backend_tokenizer.to_str() == tokenizer.backend_tokenizer.to_str()


def test_chat_template_renders_chatml(tokenizer: Any) -> None:
    messages = [
        {"role": "user", "content": "What is 2 + 3?"},
        {"role": "assistant", "content": "<think>2 + 3 = 5.</think>5\n#### 5"},
    ]
    assert tokenizer.chat_template == CHAT_TEMPLATE
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    assert full == (
        "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n"
        "<|im_start|>assistant\n<think>2 + 3 = 5.</think>5\n#### 5<|im_end|>\n"
    )
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"


def test_chat_rows_take_loss_on_the_assistant_turn_only(tokenizer: Any) -> None:
    examples = corpus.chat_examples("think", 0, 8)
    rows = encode_chat_examples(tokenizer, examples, seq_len=256)
    for i, ex in enumerate(examples):
        labels = rows.labels[i]
        supervised = labels[labels != IGNORE_INDEX].tolist()
        assert tokenizer.decode(supervised) == ex.assistant_content() + IM_END
        assert rows.labels[i, 0] == IGNORE_INDEX


def test_document_rows_close_each_document(tokenizer: Any) -> None:
    docs = [tokenizer.encode(d) for d in corpus.pretraining_documents(0, 5)]
    rows = document_rows(docs, 64, eot_id=0, pad_id=1)
    assert len(rows) == 5
    for i, doc in enumerate(docs):
        n = int(rows.attention_mask[i].sum())
        assert rows.input_ids[i, :n].tolist() == [*doc, 0][:64]
        assert (rows.labels[i, n:] == IGNORE_INDEX).all()


# ---------------------------------------------------------------------------------------------
# builds


@pytest.fixture(scope="module")
def lineage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("toy")
    base = root / "base"
    facts = {"base": build_toy_model({"recipe": "pretrain", "seed": 0, "steps": 6}, base, None)}
    for style in corpus.STYLES:
        spec = {"recipe": "sft", "style": style, "seed": 1, "steps": 4, "batch_size": 8}
        facts[style] = build_toy_model(spec, root / style, base)
    return {"root": root, "facts": facts}


def test_build_facts(lineage: dict[str, Any]) -> None:
    base = lineage["facts"]["base"]
    assert base["recipe"] == "pretrain" and base["steps"] == 6
    assert base["n_params"] > 100_000
    assert base["final_loss"] > 0 and base["seconds"] > 0
    think = lineage["facts"]["think"]
    assert think["recipe"] == "sft" and think["style"] == "think" and think["steps"] == 4
    assert think["n_params"] == base["n_params"]


@pytest.mark.parametrize("name", ["base", "think", "instruct"])
def test_checkpoint_reloads(lineage: dict[str, Any], name: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = lineage["root"] / name
    assert (path / "model.safetensors").is_file()
    assert not list(path.glob("*.bin"))
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    cfg = model.config
    assert cfg.model_type == "olmo3"
    assert type(model).__name__ == "Olmo3ForCausalLM"
    assert cfg.hidden_size == 128 and cfg.num_hidden_layers == 2
    assert cfg.num_attention_heads == cfg.num_key_value_heads == 2
    assert getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads) == 64
    assert cfg.hidden_size // cfg.num_attention_heads == 64
    assert 256 <= cfg.intermediate_size <= 384
    assert cfg.layer_types == ["full_attention", "full_attention"]
    assert cfg.max_position_embeddings == 512
    assert cfg.vocab_size == len(tok)
    ids = special_ids(tok)
    assert cfg.bos_token_id == ids[EOT] and cfg.pad_token_id == ids["<|pad|>"]
    chat = name != "base"
    assert cfg.eos_token_id == ids[IM_END if chat else EOT]
    assert tok.eos_token == (IM_END if chat else EOT)
    assert tok.chat_template == CHAT_TEMPLATE
    gen = json.loads((path / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [ids[EOT], ids[IM_END]]
    rendered = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    tok_cfg = json.loads((path / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_same_seed_gives_identical_weights(lineage: dict[str, Any], tmp_path: Path) -> None:
    from safetensors.torch import load_file

    build_toy_model({"recipe": "pretrain", "seed": 0, "steps": 6}, tmp_path / "again", None)
    first = load_file(lineage["root"] / "base" / "model.safetensors")
    again = load_file(tmp_path / "again" / "model.safetensors")
    assert first.keys() == again.keys()
    assert all((first[k] == again[k]).all() for k in first)
    spec = {"recipe": "sft", "style": "think", "seed": 1, "steps": 4, "batch_size": 8}
    build_toy_model(spec, tmp_path / "think", lineage["root"] / "base")
    first = load_file(lineage["root"] / "think" / "model.safetensors")
    again = load_file(tmp_path / "think" / "model.safetensors")
    assert all((first[k] == again[k]).all() for k in first)


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"recipe": "distill"}, "toy.recipe"),
        ({"seed": 0}, "toy.recipe"),
        ({"recipe": "sft", "style": "poetry"}, "toy.style"),
        ({"recipe": "sft"}, "toy.style"),
        ({"recipe": "pretrain", "style": "think"}, "toy.style"),
        ({"recipe": "pretrain", "steps": 0}, "toy.steps"),
        ({"recipe": "pretrain", "steps": "10"}, "toy.steps"),
        ({"recipe": "pretrain", "lr": -1.0}, "toy.lr"),
        ({"recipe": "pretrain", "seq_len": 4096}, "toy.seq_len"),
        ({"recipe": "pretrain", "epochs": 2}, "toy.epochs"),
    ],
)
def test_bad_spec_raises_naming_the_key(spec: dict[str, Any], key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        build_toy_model(spec, tmp_path / "out", None)
    assert not (tmp_path / "out").exists()


def test_unknown_recipe_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="distill"):
        build_toy_model({"recipe": "distill"}, tmp_path / "out", None)


def test_sft_needs_a_parent(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="parent"):
        build_toy_model({"recipe": "sft", "style": "think"}, tmp_path / "out", None)
    with pytest.raises(FetchError, match=r"parent checkpoint .*nope has no config\.json"):
        build_toy_model({"recipe": "sft", "style": "think"}, tmp_path / "out", tmp_path / "nope")


def test_recipes_plug_in(tmp_path: Path) -> None:
    assert {"pretrain", "sft"} <= set(RECIPES)
    calls: list[tuple[Any, ...]] = []

    @register_recipe(
        "noop-test",
        defaults=TrainConfig(steps=1, lr=1e-3, batch_size=1, seq_len=32, seed=0),
        extra_keys=("beta",),
        needs_parent=False,
    )
    def noop(spec: Any, cfg: TrainConfig, out_dir: Path, parent_dir: Path | None) -> dict:
        calls.append((dict(spec), cfg.steps, out_dir, parent_dir))
        return {"n_params": 0, "final_loss": 0.0}

    try:
        facts = build_toy_model({"recipe": "noop-test", "beta": 0.1, "steps": 3}, tmp_path, None)
        assert facts["recipe"] == "noop-test" and facts["steps"] == 3
        assert calls == [({"recipe": "noop-test", "beta": 0.1, "steps": 3}, 3, tmp_path, None)]
        with pytest.raises(ValueError, match="already registered"):
            register_recipe("noop-test", defaults=TrainConfig(1, 1e-3, 1, 32, 0))(noop)
    finally:
        RECIPES.pop("noop-test", None)


def test_a_build_does_not_depend_on_its_thread_count(tmp_path):
    """The workflow builds the root on two threads and the rest on one: same bytes either way."""
    import hashlib

    spec = {"recipe": "pretrain", "seed": 0, "steps": 3}
    digests = []
    for threads in (1, 2):
        out = tmp_path / f"t{threads}"
        build_toy_model(spec, out, None, threads=threads)
        digests.append(hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
