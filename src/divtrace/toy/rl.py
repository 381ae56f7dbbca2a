"""The ``rl`` and ``rlzero-math`` recipes: RL with a verifiable reward on arithmetic problems.

The algorithm is rejection-sampling fine-tuning (RFT; also called expert iteration or STaR):
each round samples ``samples_per_prompt`` completions from the current policy for each of
``prompts`` freshly generated arithmetic problems (temperature 1, no top-p, so the rollouts are
the policy's own distribution), gives each the binary reward of :func:`math_reward` (well formed
and ``#### N`` equal to the gold answer), keeps the rewarded ones and fine-tunes on them with the
next-token loss on the completion tokens, exactly as sampled. Every correct sample is kept,
duplicates included, so what the policy already solves often weighs most: with a 0/1 reward this
is on-policy policy-gradient on the positive samples only, the sharpening that RL with verifiable
rewards does. RFT rather than GRPO because on the CPU it needs one batched sampling pass per
round and then plain SFT steps (no per-step rollouts, no second model), it reuses the toy training
loop and its determinism, and it gets a learning signal from a weak policy whose groups would
mostly be all-wrong (zero advantage) under GRPO.

``rl`` post-trains a chat checkpoint (``style`` think: completions must open with ``<think>``,
close it, and end with ``#### N`` after it; ``style`` instruct: no think block). ``rlzero-math``
starts from the base model with the completion format the base model was pretrained on
(``Question: …\\n\\nAnswer:``, the rollout ends at ``<|endoftext|>``); its eos stays
``<|endoftext|>`` and the workflow should prompt it with ``format: completion``. Like every toy
checkpoint it still ships the ChatML template.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from divtrace.toy.build import (
    Spec,
    check_int,
    check_style,
    load_parent,
    register_recipe,
    save_checkpoint,
    train_facts,
)
from divtrace.toy.tokenizer import THINK_CLOSE, THINK_OPEN
from divtrace.toy.train import TrainConfig

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from divtrace.toy.train import Rows

ROLLOUT_TEMPERATURE = 1.0
ROLLOUT_MAX_TOKENS = 48
#: Rows per ``generate`` call when sampling rollouts.
ROLLOUT_BATCH_ROWS = 512
DEFAULT_ROUNDS = 2
DEFAULT_SAMPLES = 8
DEFAULT_PROMPTS = 128

_FINAL = re.compile(r"####[ \t]*(-?\d+)[ \t]*")


# ---------------------------------------------------------------------------------------------
# reward


def final_answer(text: str) -> str | None:
    """The integer of a ``#### N`` line that ends ``text`` (None when the last line is not one)."""
    lines = text.rstrip().split("\n")
    match = _FINAL.fullmatch(lines[-1].strip()) if lines else None
    return str(int(match.group(1))) if match else None


def math_reward(completion: str, gold: str, *, think: bool) -> float:
    """1.0 when ``completion`` is well formed and its final answer equals ``gold``, else 0.0.

    Well formed: with ``think``, the completion opens with ``<think>``, closes it exactly once and
    ends with a ``#### N`` line after ``</think>``; without, it has no think tags and ends with a
    ``#### N`` line.
    """
    if think:
        if not completion.startswith(THINK_OPEN) or completion.count(THINK_CLOSE) != 1:
            return 0.0
        if completion.count(THINK_OPEN) != 1:
            return 0.0
        answer = completion.split(THINK_CLOSE, 1)[1]
    else:
        if THINK_OPEN in completion or THINK_CLOSE in completion:
            return 0.0
        answer = completion
    found = final_answer(answer)
    return 1.0 if found is not None and found == str(int(gold)) else 0.0


@dataclass(frozen=True)
class Rollout:
    """One sampled completion: its prompt, tokens (eos included when it stopped), text, reward."""

    prompt: int
    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    text: str
    finished: bool
    reward: float


def keep_rewarded(rollouts: Sequence[Rollout]) -> list[Rollout]:
    """The rollouts to train on: finished (stopped at eos) with a positive reward."""
    return [r for r in rollouts if r.finished and r.reward > 0]


# ---------------------------------------------------------------------------------------------
# rollouts


def render_prompts(
    tokenizer: PreTrainedTokenizerBase, questions: Sequence[str], *, chat: bool
) -> list[list[int]]:
    """Token ids of each question's prompt: chat template with generation prompt, or completion."""
    out: list[list[int]] = []
    for question in questions:
        if chat:
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = f"Question: {question}\n\nAnswer:"
        out.append(list(tokenizer(str(text), add_special_tokens=False)["input_ids"]))
    return out


def sample_rollouts(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    n: int,
    *,
    eos_ids: Sequence[int],
    pad_id: int,
    seed: int,
    max_new_tokens: int = ROLLOUT_MAX_TOKENS,
    temperature: float = ROLLOUT_TEMPERATURE,
) -> list[tuple[int, list[int], bool]]:
    """``n`` sampled completions per prompt: ``(prompt index, tokens, finished)``.

    Tokens run through the first eos (included; ``finished``) or ``max_new_tokens``. Prompts are
    left-padded in batches of whole prompts; torch's generator is seeded with ``seed`` first and
    recipes run on a fixed number of threads, so the rollouts are a pure function of the
    weights, prompts and seed on one machine.
    """
    import torch

    from divtrace.toy.train import deterministic

    policy: Any = model  # transformers' generate() is not typed for mypy
    torch.manual_seed(seed)
    policy.eval()
    per_batch = max(1, ROLLOUT_BATCH_ROWS // n)
    eos = set(eos_ids)
    out: list[tuple[int, list[int], bool]] = []
    with torch.no_grad(), deterministic():
        for start in range(0, len(prompts), per_batch):
            chunk = list(range(start, min(start + per_batch, len(prompts))))
            width = max(len(prompts[i]) for i in chunk)
            ids = [[pad_id] * (width - len(prompts[i])) + list(prompts[i]) for i in chunk]
            mask = [[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in chunk]
            generated = policy.generate(
                input_ids=torch.tensor(ids).repeat_interleave(n, dim=0),
                attention_mask=torch.tensor(mask).repeat_interleave(n, dim=0),
                do_sample=True,
                temperature=temperature,
                top_k=0,
                top_p=1.0,
                max_new_tokens=max_new_tokens,
                eos_token_id=list(eos_ids),
                pad_token_id=pad_id,
            )[:, width:].tolist()
            for row, tokens in enumerate(generated):
                stop = next((j for j, t in enumerate(tokens) if t in eos), None)
                kept = tokens if stop is None else tokens[: stop + 1]
                out.append((chunk[row // n], kept, stop is not None))
    return out


def rollout_rows(rollouts: Sequence[Rollout], seq_len: int, pad_id: int) -> Rows:
    """Training rows: prompt then completion, loss on the completion tokens only."""
    from divtrace.toy.train import IGNORE_INDEX, pad_rows

    sequences = []
    for r in rollouts:
        ids = [*r.prompt_ids, *r.completion_ids][:seq_len]
        labels = [IGNORE_INDEX] * len(r.prompt_ids) + list(r.completion_ids)
        sequences.append((ids, labels[:seq_len]))
    return pad_rows(sequences, seq_len, pad_id)


# ---------------------------------------------------------------------------------------------
# recipes


def check_rl(spec: Spec) -> None:
    """``rounds``, ``samples_per_prompt`` and ``prompts`` are positive integers (when given)."""
    check_int(spec, "rounds", 1, 10)
    check_int(spec, "samples_per_prompt", 1, 64)
    check_int(spec, "prompts", 1, 4096)


def _check_rl_style(spec: Spec) -> None:
    check_style(spec)
    check_rl(spec)


def rejection_sampling_ft(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    spec: Spec,
    cfg: TrainConfig,
    *,
    chat: bool,
    think: bool,
    label: str,
) -> tuple[dict[str, Any], Any]:
    """Run the RFT rounds on ``model`` in place; return facts per round and the last result."""
    from dataclasses import replace

    from divtrace.toy.corpus import math_problems
    from divtrace.toy.tokenizer import EOT, IM_END, PAD, token_id
    from divtrace.toy.train import train_causal_lm

    rounds = int(spec.get("rounds", DEFAULT_ROUNDS))
    n_samples = int(spec.get("samples_per_prompt", DEFAULT_SAMPLES))
    n_prompts = int(spec.get("prompts", DEFAULT_PROMPTS))
    pad_id = token_id(tokenizer, PAD)
    eos_ids = [token_id(tokenizer, IM_END if chat else EOT)]
    history: list[dict[str, Any]] = []
    result = None
    for round_ in range(rounds):
        round_seed = cfg.seed * 1_000 + round_
        problems = math_problems(round_seed, n_prompts)
        prompt_ids = render_prompts(tokenizer, [q for q, _ in problems], chat=chat)
        started = time.perf_counter()
        sampled = sample_rollouts(
            model, prompt_ids, n_samples, eos_ids=eos_ids, pad_id=pad_id, seed=round_seed
        )
        rollouts = []
        for i, tokens, finished in sampled:
            text = str(tokenizer.decode([t for t in tokens if t not in eos_ids]))
            reward = math_reward(text, problems[i][1], think=think)
            rollouts.append(Rollout(i, tuple(prompt_ids[i]), tuple(tokens), text, finished, reward))
        kept = keep_rewarded(rollouts)
        stats = {
            "round": round_ + 1,
            "rollouts": len(rollouts),
            "kept": len(kept),
            "reward_mean": round(sum(r.reward for r in rollouts) / len(rollouts), 4),
            "prompts_solved": len({r.prompt for r in kept}),
            "finished_rate": round(sum(r.finished for r in rollouts) / len(rollouts), 4),
            "sampling_seconds": round(time.perf_counter() - started, 2),
        }
        history.append(stats)
        print(f"[{label}] round {round_ + 1}/{rounds}: {stats}", file=sys.stderr, flush=True)
        if not kept:
            continue
        rows = rollout_rows(kept, cfg.seq_len, pad_id)
        result = train_causal_lm(
            model, rows, replace(cfg, seed=round_seed), label=f"{label}-round{round_ + 1}"
        )
    facts: dict[str, Any] = {
        "rounds": rounds,
        "samples_per_prompt": n_samples,
        "prompts": n_prompts,
        "history": history,
    }
    return facts, result


def _finish(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: Path,
    facts: dict[str, Any],
    result: Any,
    **extra: Any,
) -> dict[str, Any]:
    from divtrace.toy.build import n_params

    save_checkpoint(model, tokenizer, out_dir)
    if result is None:  # no round kept anything: the checkpoint is the parent's weights
        return {"n_params": n_params(model), "final_loss": None, **facts, **extra}
    return train_facts(model, result, **facts, **extra)


RL_DEFAULTS = TrainConfig(steps=15, lr=5e-4, batch_size=16, seq_len=256, seed=0, warmup_steps=2)


@register_recipe(
    "rl",
    defaults=RL_DEFAULTS,
    extra_keys=("style", "rounds", "samples_per_prompt", "prompts"),
    check=_check_rl_style,
)
def rl(spec: Spec, cfg: TrainConfig, out_dir: Path, parent_dir: Path | None) -> dict[str, Any]:
    """RFT of a chat checkpoint on arithmetic problems (``steps`` fine-tuning steps per round).

    Spec keys: ``style`` (think | instruct: the format the reward demands), ``rounds`` (default
    2), ``samples_per_prompt`` (8), ``prompts`` (128, per round) and the common training keys.
    """
    style = str(spec["style"])
    model, tokenizer = load_parent(parent_dir, "rl")
    facts, result = rejection_sampling_ft(
        model, tokenizer, spec, cfg, chat=True, think=style == "think", label=f"rl-{style}"
    )
    return _finish(model, tokenizer, out_dir, facts, result, style=style)


@register_recipe(
    "rlzero-math",
    defaults=RL_DEFAULTS,
    extra_keys=("rounds", "samples_per_prompt", "prompts"),
    check=check_rl,
)
def rlzero_math(
    spec: Spec, cfg: TrainConfig, out_dir: Path, parent_dir: Path | None
) -> dict[str, Any]:
    """RFT of the base model on arithmetic problems in the completion format (RL-Zero).

    Same keys as ``rl`` but no ``style``: prompts are ``Question: …\\n\\nAnswer:``, completions end
    at ``<|endoftext|>`` and carry no think block. Prompt the result with ``format: completion``.
    """
    model, tokenizer = load_parent(parent_dir, "rlzero-math", chat=False)
    facts, result = rejection_sampling_ft(
        model, tokenizer, spec, cfg, chat=False, think=False, label="rlzero-math"
    )
    return _finish(model, tokenizer, out_dir, facts, result, format="completion")
