"""The ``dpo`` recipe: Direct Preference Optimization (Rafailov et al. 2023) of a chat checkpoint.

The policy starts from the parent checkpoint, which is also the frozen reference. Pairs come from
:func:`divtrace.toy.corpus.preference_pairs`: their preference narrows the style (``think``: the
narrow think turn over a broad answer in the same format; ``instruct``: the canonical direct
answer over a broad one), so the optimum moves probability mass onto one way of answering. On a
think parent, already trained on the narrow turns only, the chosen turns barely gain (the default
learning rate is low so that the rejected turns' collapse does not drag the chosen ones down);
on an instruct parent the canonical answers gain several nats.

The loss per pair, with sequence log-probabilities summed over the assistant turn's tokens
(its content and the closing ``<|im_end|>``), is

    −log σ(β [(log πθ(y_w|x) − log π_ref(y_w|x)) − (log πθ(y_l|x) − log π_ref(y_l|x))])

(:func:`dpo_loss`). The reference is a frozen copy of the parent's weights; its log-probabilities
are computed batch by batch, for the pairs that training reaches. Training uses the toy loop of
:mod:`divtrace.toy.train` (AdamW, warmup and cosine decay, seeded length-bucketed batches,
deterministic algorithms).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from divtrace.errors import ConfigError
from divtrace.toy.build import (
    Spec,
    check_style,
    load_parent,
    register_recipe,
    save_checkpoint,
    train_facts,
)
from divtrace.toy.train import TrainConfig

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

    from divtrace.toy.train import Rows

#: Most preference pairs drawn per run: ``steps × batch_size`` pairs (one epoch), capped here
#: (the batches then cycle through them).
DPO_PAIRS = 1024
DEFAULT_BETA = 0.1


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The mean DPO loss over pairs, and statistics of the batch.

    Each argument holds one sequence log-probability per pair (``[N]``). The statistics are the
    mean implicit reward margin ``β[(πθ−π_ref)(y_w) − (πθ−π_ref)(y_l)]``, the share of pairs
    whose margin is positive (``accuracy``) and the mean log-ratios ``log πθ − log π_ref`` of the
    chosen and of the rejected turns.
    """
    import torch.nn.functional as F

    if beta <= 0:
        raise ValueError(f"dpo: beta must be positive, got {beta}")
    chosen_reward = beta * (policy_chosen - reference_chosen)
    rejected_reward = beta * (policy_rejected - reference_rejected)
    margin = chosen_reward - rejected_reward
    loss = -F.logsigmoid(margin).mean()
    stats = {
        "margin": float(margin.detach().mean()),
        "accuracy": float((margin.detach() > 0).float().mean()),
        "chosen_logratio": float((policy_chosen - reference_chosen).detach().mean()),
        "rejected_logratio": float((policy_rejected - reference_rejected).detach().mean()),
    }
    return loss, stats


def _pad_to(batch: dict[str, torch.Tensor], width: int, pad_id: int) -> dict[str, torch.Tensor]:
    """``batch`` right-padded to ``width`` columns (labels ``-100``, mask 0)."""
    import torch.nn.functional as F

    from divtrace.toy.train import IGNORE_INDEX

    extra = width - int(batch["input_ids"].shape[1])
    if extra == 0:
        return batch
    return {
        "input_ids": F.pad(batch["input_ids"], (0, extra), value=pad_id),
        "labels": F.pad(batch["labels"], (0, extra), value=IGNORE_INDEX),
        "attention_mask": F.pad(batch["attention_mask"], (0, extra), value=0),
    }


def pair_logps(
    model: PreTrainedModel, chosen: Rows, rejected: Rows, index: torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence log-probs of the chosen and rejected rows at ``index``, in one forward pass."""
    import torch

    from divtrace.toy.train import sequence_logps

    c, r = chosen.batch(index), rejected.batch(index)
    width = max(int(c["input_ids"].shape[1]), int(r["input_ids"].shape[1]))
    c, r = _pad_to(c, width, pad_id), _pad_to(r, width, pad_id)
    both = {key: torch.cat([c[key], r[key]]) for key in c}
    logps = sequence_logps(model, both)
    n = int(index.shape[0])
    return logps[:n], logps[n:]


def check_dpo(spec: Spec) -> None:
    """``style`` names a chat style; ``beta`` is a positive number."""
    check_style(spec)
    beta = spec.get("beta", DEFAULT_BETA)
    if isinstance(beta, bool) or not isinstance(beta, int | float) or not 0 < beta <= 10:
        raise ConfigError(f"toy.beta: expected a number in (0, 10], got {beta!r}")


@register_recipe(
    "dpo",
    defaults=TrainConfig(steps=40, lr=5e-5, batch_size=8, seq_len=256, seed=0, warmup_steps=4),
    extra_keys=("style", "beta"),
    check=check_dpo,
)
def dpo(spec: Spec, cfg: TrainConfig, out_dir: Path, parent_dir: Path | None) -> dict[str, Any]:
    """DPO of the parent on ``style`` preference pairs; the parent is the frozen reference.

    Spec keys: ``style`` (think | instruct), ``beta`` (default 0.1) and the common training keys.
    Facts add the number of pairs and, as means over the last ten steps, the implicit reward
    margin, the preference accuracy and the log-ratios of chosen and rejected turns.
    """
    import copy

    import torch

    from divtrace.toy.corpus import preference_pairs
    from divtrace.toy.tokenizer import PAD, token_id
    from divtrace.toy.train import IGNORE_INDEX, deterministic, encode_turns, train_loop

    style = str(spec["style"])
    beta = float(spec.get("beta", DEFAULT_BETA))
    model, tokenizer = load_parent(parent_dir, "dpo")
    pad_id = token_id(tokenizer, PAD)
    pairs = preference_pairs(style, cfg.seed, min(DPO_PAIRS, cfg.steps * cfg.batch_size))
    chosen = encode_turns(tokenizer, [(p.user, p.chosen) for p in pairs], cfg.seq_len)
    rejected = encode_turns(tokenizer, [(p.user, p.rejected) for p in pairs], cfg.seq_len)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    history: list[dict[str, float]] = []

    def step_loss(index: torch.Tensor) -> tuple[torch.Tensor, int]:
        with torch.no_grad(), deterministic():
            ref_c, ref_r = pair_logps(reference, chosen, rejected, index, pad_id)
        policy_c, policy_r = pair_logps(model, chosen, rejected, index, pad_id)
        loss, stats = dpo_loss(policy_c, policy_r, ref_c, ref_r, beta)
        history.append(stats)
        n_tokens = int((chosen.labels[index] != IGNORE_INDEX).sum())
        n_tokens += int((rejected.labels[index] != IGNORE_INDEX).sum())
        return loss, n_tokens

    lengths = torch.maximum(chosen.attention_mask.sum(dim=1), rejected.attention_mask.sum(dim=1))
    result = train_loop(model, lengths, step_loss, cfg, label=f"dpo-{style}")
    save_checkpoint(model, tokenizer, out_dir)
    tail = history[-10:]
    means = {key: round(sum(h[key] for h in tail) / len(tail), 4) for key in tail[0]}
    return train_facts(
        model,
        result,
        style=style,
        beta=beta,
        pairs=len(pairs),
        reward_margin=means["margin"],
        reward_accuracy=means["accuracy"],
        chosen_logratio=means["chosen_logratio"],
        rejected_logratio=means["rejected_logratio"],
    )
