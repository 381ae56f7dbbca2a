"""A small, deterministic causal-LM training loop for the toy lineage.

Data arrive as :class:`Rows`: fixed-width token rows with labels (``-100`` where no loss is
taken) and an attention mask. :func:`document_rows` builds them for pretraining (one document per
row, closed by ``<|endoftext|>``), :func:`encode_chat_examples` / :func:`encode_turns` for SFT and
DPO (one chat per row, loss on the assistant turn only). :func:`train_loop` runs AdamW with linear
warmup and cosine decay on length-bucketed batches from seeded permutations, with deterministic
torch algorithms, so a run is a pure function of its inputs on one machine (at a fixed thread
count); :func:`train_causal_lm` is that loop with the next-token loss, and post-training recipes
(DPO, RL) plug their own loss into it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from divtrace.toy.corpus import ChatExample

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

IGNORE_INDEX = -100
#: Batches per length-sorting window in :func:`_batches`.
BUCKET_BATCHES = 16


@dataclass(frozen=True)
class TrainConfig:
    """Optimization settings. ``warmup_steps`` is capped at a tenth of ``steps``."""

    steps: int
    lr: float
    batch_size: int
    seq_len: int
    seed: int
    warmup_steps: int = 20
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    log_every: int = 25


@dataclass(frozen=True)
class TrainResult:
    """What a training run did: the loss per step, the smoothed final loss, the time taken."""

    steps: int
    final_loss: float
    seconds: float
    tokens: int
    losses: list[float] = field(repr=False)


@dataclass(frozen=True)
class Rows:
    """Training rows of width ``seq_len``: token ids, labels and attention mask (all ``[N, L]``)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The rows at ``index``, cut to the longest unpadded row (right padding)."""
        mask = self.attention_mask[index]
        width = int(mask.sum(dim=1).max())
        return {
            "input_ids": self.input_ids[index, :width],
            "labels": self.labels[index, :width],
            "attention_mask": mask[:, :width],
        }


def pad_rows(sequences: Sequence[tuple[list[int], list[int]]], seq_len: int, pad_id: int) -> Rows:
    """Right-pad ``(ids, labels)`` pairs to ``seq_len`` and stack them into :class:`Rows`."""
    import torch

    n = len(sequences)
    input_ids = torch.full((n, seq_len), pad_id, dtype=torch.long)
    labels = torch.full((n, seq_len), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((n, seq_len), dtype=torch.long)
    for i, (ids, labs) in enumerate(sequences):
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        labels[i, : len(labs)] = torch.tensor(labs, dtype=torch.long)
        attention[i, : len(ids)] = 1
    return Rows(input_ids, labels, attention)


def document_rows(
    documents: Sequence[Sequence[int]], seq_len: int, eot_id: int, pad_id: int
) -> Rows:
    """One row per tokenized document, closed by ``eot_id`` (cut at ``seq_len``); loss on all.

    Documents are not packed together: with one document per row the model never sees an
    unrelated document in its context, which lets a two-layer model learn to copy from the
    prompt (numbers, names) within the demo's step budget. Length bucketing in
    :func:`train_causal_lm` keeps the padding cheap.
    """
    sequences = []
    for doc in documents:
        tokens = [*doc, eot_id][:seq_len]
        sequences.append((tokens, list(tokens)))
    return pad_rows(sequences, seq_len, pad_id)


def encode_chat_examples(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[ChatExample], seq_len: int
) -> Rows:
    """One row per example, rendered with the tokenizer's chat template.

    Loss is taken on the assistant content and its closing ``<|im_end|>`` only (the prompt, the
    ``<|im_start|>assistant\\n`` header and the template's trailing newline are masked). Examples
    longer than ``seq_len`` are cut.
    """
    return encode_turns(tokenizer, [(ex.user, ex.assistant_content()) for ex in examples], seq_len)


def encode_turns(
    tokenizer: PreTrainedTokenizerBase, turns: Sequence[tuple[str, str]], seq_len: int
) -> Rows:
    """One row per ``(user, assistant content)`` turn pair, as :func:`encode_chat_examples`."""
    from divtrace.toy.tokenizer import IM_END, PAD, token_id

    im_end = token_id(tokenizer, IM_END)
    sequences = []
    for user_text, content in turns:
        user = [{"role": "user", "content": user_text}]
        prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(
            [*user, {"role": "assistant", "content": content}], tokenize=False
        )
        if not isinstance(prompt, str) or not isinstance(full, str) or not full.startswith(prompt):
            raise ValueError("chat template: the rendered prompt is not a prefix of the chat")
        encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(encoded["input_ids"])
        end = len(ids) - ids[::-1].index(im_end)  # through the assistant's <|im_end|>
        labels = [
            tok if start >= len(prompt) and i < end else IGNORE_INDEX
            for i, (tok, (start, _)) in enumerate(zip(ids, encoded["offset_mapping"], strict=True))
        ]
        sequences.append((ids[:seq_len], labels[:seq_len]))
    return pad_rows(sequences, seq_len, token_id(tokenizer, PAD))


@contextmanager
def deterministic() -> Iterator[None]:
    """Use deterministic torch algorithms inside the block, restoring the previous setting."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def _batches(lengths: torch.Tensor, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """Endless batches of row indices from seeded permutations, bucketed by length.

    Each epoch shuffles the rows, sorts windows of :data:`BUCKET_BATCHES` batches by length,
    cuts them into batches and shuffles the batch order, so rows of similar length share a batch.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    n_rows = int(lengths.shape[0])
    window = batch_size * BUCKET_BATCHES
    while True:
        order = torch.randperm(n_rows, generator=generator)
        batches: list[torch.Tensor] = []
        for start in range(0, n_rows, window):
            chunk = order[start : start + window]
            chunk = chunk[torch.argsort(lengths[chunk], stable=True)]
            batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
        for i in torch.randperm(len(batches), generator=generator).tolist():
            yield batches[i]


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Learning-rate multiplier: linear warmup, then cosine decay to ``min_lr_ratio``."""
    warmup = min(cfg.warmup_steps, cfg.steps // 10)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, cfg.steps - warmup)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: PreTrainedModel, cfg: TrainConfig) -> Any:
    """AdamW with weight decay on matrices only (not on norms or biases)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def sequence_logps(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per row, the summed log-probability of its labelled tokens (``[N]``, float32).

    ``labels`` are aligned with ``input_ids`` as for the model's own loss: the token at position
    ``t`` is predicted from positions ``< t``; ``-100`` positions add nothing.
    """
    import torch.nn.functional as F

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    nll = F.cross_entropy(
        logits[:, :-1].float().transpose(1, 2),
        labels,
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    return -nll.sum(dim=1)


#: A training step's loss on the rows at an index: ``index -> (loss, supervised tokens)``.
StepLoss = Callable[["torch.Tensor"], tuple["torch.Tensor", int]]


def train_loop(
    model: PreTrainedModel,
    lengths: torch.Tensor,
    step_loss: StepLoss,
    cfg: TrainConfig,
    label: str = "train",
) -> TrainResult:
    """Train ``model`` in place for ``cfg.steps`` steps of ``step_loss``; log to stderr.

    Batches are row indices from :func:`_batches` over ``lengths`` (one per training row); the
    final loss is the mean over the last ten steps (or all of them when fewer).
    """
    import torch

    if int(lengths.shape[0]) == 0:
        raise ValueError(f"{label}: no training rows")
    torch.manual_seed(cfg.seed)
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    batches = _batches(lengths, cfg.batch_size, cfg.seed)
    losses: list[float] = []
    tokens = 0
    start = time.perf_counter()
    model.train()
    with deterministic():
        for step in range(cfg.steps):
            loss, n_tokens = step_loss(next(batches))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            tokens += n_tokens
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                elapsed = time.perf_counter() - start
                print(
                    f"[{label}] step {step + 1}/{cfg.steps} loss {losses[-1]:.4f} "
                    f"lr {scheduler.get_last_lr()[0]:.2e} {elapsed:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
    model.eval()
    tail = losses[-10:]
    return TrainResult(
        steps=cfg.steps,
        final_loss=sum(tail) / len(tail) if tail else float("nan"),
        seconds=time.perf_counter() - start,
        tokens=tokens,
        losses=losses,
    )


def train_causal_lm(
    model: PreTrainedModel, rows: Rows, cfg: TrainConfig, label: str = "train"
) -> TrainResult:
    """Train ``model`` in place for ``cfg.steps`` steps of next-token loss on ``rows``."""

    def step_loss(index: torch.Tensor) -> tuple[torch.Tensor, int]:
        batch = rows.batch(index)
        return model(**batch).loss, int((batch["labels"] != IGNORE_INDEX).sum())

    if len(rows) == 0:
        raise ValueError(f"{label}: no training rows")
    return train_loop(model, rows.attention_mask.sum(dim=1), step_loss, cfg, label)
