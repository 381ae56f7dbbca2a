"""Byte-level BPE tokenizer for the toy lineage, with a ChatML chat template (as in Olmo 3).

The special tokens are single tokens with fixed ids 0..5 (in :data:`SPECIAL_TOKENS` order).
The base model's eos is ``<|endoftext|>``; chat models use ``<|im_end|>`` (:func:`use_chat_eos`).
Every toy checkpoint ships :data:`CHAT_TEMPLATE`, the base model included. A think model emits
``<think>…</think>`` itself after the generation prompt. The think tags are added tokens that are
*not* flagged special, so decoding with ``skip_special_tokens=True`` (vLLM's default) keeps them
while dropping ``<|im_end|>`` and friends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

EOT = "<|endoftext|>"
PAD = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
SPECIAL_TOKENS: tuple[str, ...] = (EOT, PAD, IM_START, IM_END, THINK_OPEN, THINK_CLOSE)
#: Single tokens that decoding keeps even with ``skip_special_tokens=True``.
NON_SKIPPED: tuple[str, ...] = (THINK_OPEN, THINK_CLOSE)

DEFAULT_VOCAB_SIZE = 1536

#: ChatML: ``<|im_start|>{role}\n{content}<|im_end|>\n`` per message; the generation prompt is
#: ``<|im_start|>assistant\n``.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it for ``transformers``.

    Deterministic: the same texts in the same order give the same vocabulary and merges. The
    result has bos = eos = ``<|endoftext|>``, pad = ``<|pad|>``, the chat markers as further
    special tokens, the think tags as (non-special) added tokens, and :data:`CHAT_TEMPLATE`.
    Nothing is added automatically when encoding (no bos/eos insertion).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size: {vocab_size} is below the 256 bytes plus specials")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(list(texts), trainer=trainer)
    # The trainer flags every reserved token special; unflag the think tags.
    state = json.loads(backend.to_str())
    for added in state["added_tokens"]:
        added["special"] = added["content"] not in NON_SKIPPED
    backend = Tokenizer.from_str(json.dumps(state))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=EOT,
        eos_token=EOT,
        pad_token=PAD,
        unk_token=None,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def use_chat_eos(tokenizer: PreTrainedTokenizerBase) -> None:
    """Make ``<|im_end|>`` the tokenizer's eos (chat models)."""
    tokenizer.eos_token = IM_END


def token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int:
    """The id of ``token`` in ``tokenizer``'s vocabulary (ValueError when it has none)."""
    value = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(value, int) or tokenizer.convert_ids_to_tokens(value) != token:
        raise ValueError(f"tokenizer has no token {token!r}")
    return value


def special_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """The id of every special token, checking that each is exactly one token."""
    ids: dict[str, int] = {}
    for token in SPECIAL_TOKENS:
        encoded = tokenizer.encode(token, add_special_tokens=False)
        if len(encoded) != 1:
            raise ValueError(f"special token {token!r} encodes to {len(encoded)} tokens")
        ids[token] = encoded[0]
    return ids
