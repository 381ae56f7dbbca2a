"""The embedded demo's toy lineage: tiny Olmo 3 checkpoints that the workflow builds itself.

``corpus`` generates the training data (no downloads), ``tokenizer`` trains a byte-level BPE
tokenizer with a ChatML chat template, ``train`` is a small causal-LM training loop, and
``build`` turns a config ``toy:`` block into a saved checkpoint through a registry of recipes
(``pretrain`` and ``sft`` there; ``dpo`` in ``dpo``; ``rl`` and ``rlzero-math`` in ``rl``).
Importing this package is cheap: torch, transformers and tokenizers load only when used.
"""

from __future__ import annotations

from divtrace.toy import dpo, rl  # noqa: F401 (importing them registers their recipes)
from divtrace.toy.build import RECIPES, build_toy_model, register_recipe

__all__ = ["RECIPES", "build_toy_model", "register_recipe"]
