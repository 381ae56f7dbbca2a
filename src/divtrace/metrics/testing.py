"""Stand-ins for the models the metrics load, built locally (tests and benchmarks, no downloads).

No MNLI classifier is installable offline, so the NLI code is exercised with small randomly
initialised sequence classifiers; they need a tokenizer that encodes sentence pairs the way BERT's
does, which :func:`word_level_pair_tokenizer` trains on a handful of texts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


def word_level_pair_tokenizer(texts: Iterable[str], directory: Path) -> PreTrainedTokenizerFast:
    """A word-level tokenizer with BERT's pair template, trained on ``texts`` and saved to
    ``directory`` (``[CLS] a [SEP] b [SEP]``, specials ``[PAD] [UNK] [CLS] [SEP]``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )
    fast.save_pretrained(directory)
    return fast


def tiny_code_encoder(texts: Iterable[str], directory: Path, *, seed: int = 0) -> Path:
    """A randomly initialised one-layer RoBERTa encoder (UniXcoder's architecture, 16 wide) with
    a word-level tokenizer trained on ``texts``, saved to ``directory``: a local stand-in for
    ``metrics.code_model`` (sentence-transformers wraps it with mean pooling). It sees at most 62
    tokens (64 positions, RoBERTa's offset of 2), so give it ``code_max_length`` 62 or less."""
    import torch
    from transformers import RobertaConfig, RobertaModel

    tokenizer = word_level_pair_tokenizer(texts, directory)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    RobertaModel(config).save_pretrained(directory)
    return directory
