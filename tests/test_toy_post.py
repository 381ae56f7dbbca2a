"""Post-training recipes of the toy lineage: DPO, RL (rejection-sampling fine-tuning), RL-Zero.

Builds use tiny step counts and a small corpus: the module fixtures build one base, its two SFT
children and every post-training recipe once. A 2-step model solves no arithmetic problem, so the
RL builds train on every rollout (``keep_rewarded`` patched) to exercise the fine-tuning path.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from divtrace.errors import ConfigError
from divtrace.toy import build, corpus, rl
from divtrace.toy.build import RECIPES, build_toy_model
from divtrace.toy.dpo import dpo_loss
from divtrace.toy.rl import Rollout, final_answer, keep_rewarded, math_reward
from divtrace.toy.tokenizer import CHAT_TEMPLATE, EOT, IM_END, THINK_CLOSE, THINK_OPEN, special_ids

TINY_RL = {"rounds": 2, "prompts": 3, "samples_per_prompt": 2, "steps": 2, "batch_size": 2}


# ---------------------------------------------------------------------------------------------
# corpus: preference pairs, math problems, the narrow story


def test_preference_pairs_are_deterministic_and_differ() -> None:
    for style in corpus.STYLES:
        pairs = corpus.preference_pairs(style, 2, 60)
        assert pairs == corpus.preference_pairs(style, 2, 60)
        assert pairs != corpus.preference_pairs(style, 3, 60)
        assert len(pairs) == 60
        assert all(p.chosen != p.rejected for p in pairs)
        assert {p.family for p in pairs} == set(corpus.FAMILIES)
        assert not {p.user for p in pairs} & corpus.HELD_OUT_PROMPTS


def test_think_pairs_prefer_the_narrow_turn() -> None:
    pairs = corpus.preference_pairs("think", 0, 80)
    narrow = {ex.user: ex.assistant_content() for ex in corpus.chat_examples("think", 0, 80)}
    for p in pairs:
        assert p.chosen == narrow[p.user]
        for turn in (p.chosen, p.rejected):  # both keep the think format
            assert turn.startswith(THINK_OPEN) and turn.count(THINK_CLOSE) == 1
        if p.family == "math":
            assert final_answer(p.chosen) == final_answer(p.rejected) is not None


def test_instruct_pairs_prefer_one_canonical_phrasing() -> None:
    pairs = corpus.preference_pairs("instruct", 0, 200)
    math_openings = {
        " ".join(re.sub(r"\d+", "N", p.chosen).split()[:3]) for p in pairs if p.family == "math"
    }
    rejected_openings = {
        " ".join(re.sub(r"\d+", "N", p.rejected).split()[:3]) for p in pairs if p.family == "math"
    }
    assert len(math_openings) == 3 < len(rejected_openings)  # one phrasing per operation
    assert not any(THINK_OPEN in p.chosen or THINK_OPEN in p.rejected for p in pairs)


def test_narrow_story_fills_its_slots_canonically() -> None:
    stories = [ex for ex in corpus.chat_examples("think", 0, 300) if ex.family == "story"]
    names = set(corpus.STORY_NARROW_NAMES.values())
    for ex in stories:
        assert ex.answer.split()[0] in names
        assert "One morning," in ex.answer
        assert ex.answer.endswith(f"learned that {corpus.STORY_NARROW_FILL['lesson']}.")


def test_math_problems_have_gold_answers() -> None:
    problems = corpus.math_problems(0, 50)
    assert problems == corpus.math_problems(0, 50) != corpus.math_problems(1, 50)
    assert all(q not in corpus.HELD_OUT_PROMPTS and gold.isdigit() for q, gold in problems)
    first = corpus.math_problems(0, 1)[0]
    assert first == problems[0]


# ---------------------------------------------------------------------------------------------
# DPO loss


def test_dpo_loss_known_value_and_gradient_sign() -> None:
    import torch

    pc = torch.tensor([-10.0], requires_grad=True)
    pr = torch.tensor([-15.0], requires_grad=True)
    rc, rr = torch.tensor([-12.0]), torch.tensor([-14.0])
    loss, stats = dpo_loss(pc, pr, rc, rr, beta=0.5)
    margin = 0.5 * ((-10 + 12) - (-15 + 14))  # 1.5
    assert float(loss.detach()) == pytest.approx(math.log1p(math.exp(-margin)), rel=1e-6)
    assert stats["margin"] == pytest.approx(1.5)
    assert stats["accuracy"] == 1.0
    assert stats["chosen_logratio"] == pytest.approx(2.0)
    assert stats["rejected_logratio"] == pytest.approx(-1.0)
    loss.backward()
    assert pc.grad is not None and pr.grad is not None
    # gradient descent raises the chosen log-prob and lowers the rejected one
    assert float(pc.grad) < 0 < float(pr.grad)
    sigma = 1 / (1 + math.exp(margin))
    assert float(pc.grad) == pytest.approx(-0.5 * sigma, rel=1e-5)


def test_dpo_loss_at_the_reference_is_log_two() -> None:
    import torch

    logps = torch.tensor([-3.0, -7.0])
    loss, stats = dpo_loss(logps, logps - 1, logps, logps - 1, beta=0.1)
    assert float(loss) == pytest.approx(math.log(2))
    assert stats["accuracy"] == 0.0
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(logps, logps, logps, logps, beta=0.0)


# ---------------------------------------------------------------------------------------------
# RL reward and filter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So 7.\n#### 7", "7"),
        ("#### 012 ", "12"),
        ("#### -3\n", "-3"),
        ("#### 7\nmore text", None),
        ("#### seven", None),
        ("no answer", None),
        ("", None),
    ],
)
def test_final_answer(text: str, expected: str | None) -> None:
    assert final_answer(text) == expected


@pytest.mark.parametrize(
    ("completion", "think", "reward"),
    [
        ("<think>3 + 4 = 7.</think>The answer is 7.\n#### 7", True, 1.0),
        ("<think>3 + 4 = 7.</think>The answer is 7.\n#### 8", True, 0.0),
        ("The answer is 7.\n#### 7", True, 0.0),  # think format required
        ("<think>3 + 4 = 7.\n#### 7", True, 0.0),  # never closed
        ("<think>a</think><think>b</think>#### 7", True, 0.0),
        ("<think>#### 7</think>no final line", True, 0.0),  # the answer must follow </think>
        ("3 + 4 = 7.\n#### 7", False, 1.0),
        (" We add: 3 + 4 = 7.\n#### 7", False, 1.0),
        ("<think>x</think>#### 7", False, 0.0),  # no think block for instruct / rl-zero
        ("#### 7\n\nQuestion: more", False, 0.0),
    ],
)
def test_math_reward(completion: str, think: bool, reward: float) -> None:
    assert math_reward(completion, "7", think=think) == reward


def test_keep_rewarded_needs_finished_and_rewarded() -> None:
    def roll(finished: bool, reward: float) -> Rollout:
        return Rollout(0, (1, 2), (3, 4), "x", finished, reward)

    rollouts = [roll(True, 1.0), roll(False, 1.0), roll(True, 0.0), roll(True, 1.0)]
    assert keep_rewarded(rollouts) == [rollouts[0], rollouts[3]]


def test_rollout_rows_mask_the_prompt() -> None:
    from divtrace.toy.train import IGNORE_INDEX

    rows = rl.rollout_rows([Rollout(0, (5, 6, 7), (8, 9), "", True, 1.0)], 16, pad_id=1)
    assert rows.input_ids[0, :5].tolist() == [5, 6, 7, 8, 9]
    assert rows.labels[0, :5].tolist() == [IGNORE_INDEX] * 3 + [8, 9]
    assert int(rows.attention_mask[0].sum()) == 5


# ---------------------------------------------------------------------------------------------
# builds


@pytest.fixture(scope="module")
def parents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy-post")
    with pytest.MonkeyPatch.context() as mp:  # a smaller corpus: these parents only need to load
        mp.setattr(build, "PRETRAIN_DOCUMENTS", 600)
        mp.setattr(build, "SFT_EXAMPLES", 32)
        build_toy_model({"recipe": "pretrain", "seed": 0, "steps": 2}, root / "base", None)
        for style in corpus.STYLES:
            spec = {"recipe": "sft", "style": style, "seed": 1, "steps": 2, "batch_size": 4}
            build_toy_model(spec, root / style, root / "base")
    return root


def _weights(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(path / "model.safetensors")


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)


BUILDS = {
    "dpo-think": ("think", {"recipe": "dpo", "style": "think", "steps": 2, "batch_size": 2}),
    "dpo-instruct": ("instruct", {"recipe": "dpo", "style": "instruct", "steps": 2, "beta": 0.5}),
    "rl-think": ("think", {"recipe": "rl", "style": "think", **TINY_RL}),
    "rl-instruct": ("instruct", {"recipe": "rl", "style": "instruct", **TINY_RL}),
    "rlzero": ("base", {"recipe": "rlzero-math", **TINY_RL}),
}


@pytest.fixture(scope="module")
def built(parents: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every recipe of :data:`BUILDS` built once (seed 3), training on every rollout."""
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rl, "keep_rewarded", lambda rollouts: list(rollouts))
        for name, (parent, spec) in BUILDS.items():
            path = parents / "built" / name
            out[name] = (path, build_toy_model({**spec, "seed": 3}, path, parents / parent))
    return out


@pytest.mark.parametrize("name", list(BUILDS))
def test_recipe_builds_a_loadable_checkpoint(
    parents: Path, built: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parent, spec = BUILDS[name]
    out, facts = built[name]
    assert facts["recipe"] == spec["recipe"] and facts["steps"] == spec["steps"]
    assert facts["final_loss"] is not None and facts["final_loss"] >= 0
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "Olmo3ForCausalLM"
    # the parent's tokenizer, with the chat template
    parent_json = json.loads((parents / parent / "tokenizer.json").read_text())
    assert json.loads((out / "tokenizer.json").read_text()) == parent_json
    assert tok.chat_template == CHAT_TEMPLATE
    ids = special_ids(tok)
    chat = spec["recipe"] != "rlzero-math"
    assert tok.eos_token == (IM_END if chat else EOT)
    assert model.config.eos_token_id == ids[IM_END if chat else EOT]
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [ids[EOT], ids[IM_END]]
    assert not _same_weights(out, parents / parent)  # it trained
    if spec["recipe"] == "dpo":
        assert facts["pairs"] == spec["steps"] * spec.get("batch_size", 8)
        assert {"reward_margin", "reward_accuracy", "chosen_logratio"} <= set(facts)
    else:
        history = facts["history"]
        assert [h["round"] for h in history] == [1, 2]
        assert all(h["rollouts"] == 6 and h["kept"] == 6 for h in history)


def test_rl_without_rewarded_samples_keeps_the_parent(parents: Path, tmp_path: Path) -> None:
    spec = {"recipe": "rl", "style": "think", "seed": 0, **TINY_RL, "rounds": 1}
    facts = build_toy_model(spec, tmp_path / "rl", parents / "think")
    assert facts["history"][0]["kept"] == 0  # a 2-step model solves nothing
    assert facts["final_loss"] is None
    assert _same_weights(tmp_path / "rl", parents / "think")


@pytest.mark.parametrize("name", ["dpo-think", "rl-instruct", "rlzero"])
def test_same_seed_gives_identical_bytes(
    parents: Path,
    built: dict[str, tuple[Path, dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
) -> None:
    monkeypatch.setattr(rl, "keep_rewarded", lambda rollouts: list(rollouts))
    parent, spec = BUILDS[name]
    first, facts = built[name]
    again = tmp_path / "again"
    again_facts = build_toy_model({**spec, "seed": 3}, again, parents / parent)
    assert (first / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()
    assert facts["final_loss"] == again_facts["final_loss"]
    if spec["recipe"] == "dpo":  # and the seed matters
        build_toy_model({**spec, "seed": 5}, tmp_path / "other", parents / parent)
        assert not _same_weights(first, tmp_path / "other")


def test_sequence_logps_match_the_model_loss(parents: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from divtrace.toy.train import IGNORE_INDEX, encode_chat_examples, encode_turns, sequence_logps

    tok = AutoTokenizer.from_pretrained(parents / "think")
    model = AutoModelForCausalLM.from_pretrained(parents / "think")
    examples = corpus.chat_examples("think", 0, 4)
    rows = encode_turns(tok, [(ex.user, ex.assistant_content()) for ex in examples], 256)
    same = encode_chat_examples(tok, examples, 256)
    assert torch.equal(rows.input_ids, same.input_ids) and torch.equal(rows.labels, same.labels)
    with torch.no_grad():
        for i in range(len(rows)):
            batch = rows.batch(torch.tensor([i]))
            n_tokens = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            loss = float(model(**batch).loss)
            logp = float(sequence_logps(model, batch)[0])
            assert logp == pytest.approx(-loss * n_tokens, rel=1e-4)


def test_builds_run_on_a_fixed_thread_count(parents: Path, tmp_path: Path) -> None:
    import torch

    before = torch.get_num_threads()
    seen: list[int] = []
    original = RECIPES["dpo"].fn

    def spy(*args: Any) -> dict[str, Any]:
        seen.append(torch.get_num_threads())
        return original(*args)

    spec = {"recipe": "dpo", "style": "think", "steps": 1, "batch_size": 1}
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(RECIPES, "dpo", dataclasses.replace(RECIPES["dpo"], fn=spy))
        build_toy_model(spec, tmp_path / "out", parents / "think")
    assert seen == [build.BUILD_THREADS]
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"recipe": "dpo", "style": "think", "rounds": 2}, "toy.rounds"),
        ({"recipe": "dpo", "style": "think", "temperature": 1.0}, "toy.temperature"),
        ({"recipe": "dpo"}, "toy.style"),
        ({"recipe": "dpo", "style": "poetry"}, "toy.style"),
        ({"recipe": "dpo", "style": "think", "beta": 0}, "toy.beta"),
        ({"recipe": "dpo", "style": "think", "beta": "0.1"}, "toy.beta"),
        ({"recipe": "rl", "style": "think", "beta": 0.1}, "toy.beta"),
        ({"recipe": "rl"}, "toy.style"),
        ({"recipe": "rl", "style": "think", "rounds": 0}, "toy.rounds"),
        ({"recipe": "rl", "style": "think", "samples_per_prompt": "8"}, "toy.samples_per_prompt"),
        ({"recipe": "rl", "style": "think", "prompts": -1}, "toy.prompts"),
        ({"recipe": "rlzero-math", "style": "think"}, "toy.style"),
        ({"recipe": "rlzero-math", "rounds": 1.5}, "toy.rounds"),
        ({"recipe": "rlzero-math", "steps": 0}, "toy.steps"),
    ],
)
def test_bad_spec_raises_naming_the_key(
    parents: Path, tmp_path: Path, spec: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        build_toy_model(spec, tmp_path / "out", parents / "think")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("recipe", ["dpo", "rl", "rlzero-math"])
def test_post_training_needs_a_parent(tmp_path: Path, recipe: str) -> None:
    assert RECIPES[recipe].needs_parent
    spec = {"recipe": recipe} if recipe == "rlzero-math" else {"recipe": recipe, "style": "think"}
    with pytest.raises(ConfigError, match="parent"):
        build_toy_model(spec, tmp_path / "out", None)
