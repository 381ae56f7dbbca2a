"""Build one toy checkpoint from a config ``toy:`` block, through a registry of recipes.

A recipe is a function ``(spec, out_dir, parent_dir) -> facts`` registered under a name with
:func:`register_recipe`, together with its default training settings, the spec keys it accepts
beyond the common ones and whether it starts from a parent checkpoint. :func:`build_toy_model`
validates the spec, runs the recipe and returns its facts. New stages plug in by registering a
recipe here or in a module that the package imports: :mod:`divtrace.toy.dpo` (``dpo``) and
:mod:`divtrace.toy.rl` (``rl``, ``rlzero-math``) do.

Every checkpoint is an ``Olmo3ForCausalLM`` (hidden 128, 2 layers, 2 heads of dim 64, all full
attention) saved as safetensors with its tokenizer, ChatML chat template and a generation config
whose eos lists both ``<|endoftext|>`` and ``<|im_end|>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from divtrace.errors import ConfigError, FetchError
from divtrace.toy.train import TrainConfig

if TYPE_CHECKING:
    from transformers import Olmo3Config, PreTrainedModel, PreTrainedTokenizerBase

    from divtrace.toy.train import TrainResult

Spec = Mapping[str, Any]
RecipeFn = Callable[[Spec, TrainConfig, Path, "Path | None"], dict[str, Any]]

#: Keys every recipe accepts: the recipe name and the training settings.
COMMON_KEYS: frozenset[str] = frozenset({"recipe", "seed", "steps", "lr", "batch_size", "seq_len"})

# Model shape (fixed: head_dim 64 lets vLLM's CPU build load the checkpoints).
HIDDEN_SIZE = 128
NUM_LAYERS = 2
NUM_HEADS = 2
INTERMEDIATE_SIZE = 320
MAX_POSITIONS = 512

PRETRAIN_DOCUMENTS = 8000
SFT_EXAMPLES = 3000
#: torch threads while a recipe runs, by default. One: the toy model's matrices are too small to
#: gain much from a second thread (about 1.4× on an idle machine), while on a shared machine a
#: busy second core stalls every operation (5-10× slower, with the CPU time burnt spinning). The
#: workflow gives the root build two (it runs alone: nothing else can start before it). The bytes
#: of a build do not depend on the thread count (tested).
BUILD_THREADS = 1


@dataclass(frozen=True)
class Recipe:
    """A registered way of building a checkpoint."""

    name: str
    fn: RecipeFn
    defaults: TrainConfig
    extra_keys: frozenset[str]
    needs_parent: bool
    check: Callable[[Spec], None] | None = None


RECIPES: dict[str, Recipe] = {}


def register_recipe(
    name: str,
    *,
    defaults: TrainConfig,
    extra_keys: tuple[str, ...] = (),
    needs_parent: bool = True,
    check: Callable[[Spec], None] | None = None,
) -> Callable[[RecipeFn], RecipeFn]:
    """Register the decorated function as recipe ``name``.

    ``defaults`` gives the training settings that the spec does not (its ``seed`` is unused:
    the default seed is 0); ``extra_keys`` the spec keys the recipe reads beyond
    :data:`COMMON_KEYS`; ``check`` validates those keys (raising :class:`ConfigError`) before any
    work.
    The recipe function receives the spec, the resolved :class:`TrainConfig`, the output
    directory and the parent directory, and returns facts about the run.
    """

    def decorate(fn: RecipeFn) -> RecipeFn:
        if name in RECIPES:
            raise ValueError(f"toy recipe {name!r} is already registered")
        RECIPES[name] = Recipe(name, fn, defaults, frozenset(extra_keys), needs_parent, check)
        return fn

    return decorate


def check_int(spec: Spec, key: str, low: int, high: int | None = None) -> int | None:
    """``spec[key]`` as an int in ``[low, high]``, or None when absent."""
    if key not in spec:
        return None
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"toy.{key}: expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"toy.{key}: {value} is not {bound}")
    return value


def train_config(spec: Spec, defaults: TrainConfig) -> TrainConfig:
    """The training settings of ``spec``, falling back to the recipe's ``defaults``."""
    seed = check_int(spec, "seed", 0)
    steps = check_int(spec, "steps", 1)
    batch_size = check_int(spec, "batch_size", 1)
    seq_len = check_int(spec, "seq_len", 16, MAX_POSITIONS)
    lr = spec.get("lr", defaults.lr)
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < 1:
        raise ConfigError(f"toy.lr: expected a number in (0, 1), got {lr!r}")
    return TrainConfig(
        steps=defaults.steps if steps is None else steps,
        lr=float(lr),
        batch_size=defaults.batch_size if batch_size is None else batch_size,
        seq_len=defaults.seq_len if seq_len is None else seq_len,
        seed=0 if seed is None else seed,
    )


def build_toy_model(
    spec: dict[str, Any], out_dir: Path, parent_dir: Path | None, threads: int = BUILD_THREADS
) -> dict[str, Any]:
    """Build the checkpoint described by ``spec`` into ``out_dir``; return facts about the run.

    ``spec`` is the config's ``toy:`` block, e.g. ``{"recipe": "pretrain", "seed": 0}`` or
    ``{"recipe": "sft", "style": "think", "seed": 1, "steps": 150}``; optional keys of every
    recipe are ``lr``, ``batch_size`` and ``seq_len``, and a recipe adds its own (``dpo``:
    ``style``, ``beta``; ``rl``: ``style``, ``rounds``, ``samples_per_prompt``, ``prompts``;
    ``rlzero-math``: the same but ``style``). Recipes that post-train read the parent checkpoint
    (model and tokenizer) from ``parent_dir``. The recipe runs on ``threads`` torch threads
    (:data:`BUILD_THREADS` by default). Raises :class:`ConfigError` (a ValueError) naming the offending key for an unknown
    recipe, style or key, a bad value, or a missing parent, and :class:`FetchError` for a parent
    directory that holds no checkpoint. The facts are the recipe, its settings, ``n_params``,
    ``final_loss``, ``seconds`` and ``steps``.
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(f"toy: expected a mapping, got {type(spec).__name__}")
    name = spec.get("recipe")
    if not isinstance(name, str) or name not in RECIPES:
        raise ConfigError(f"toy.recipe: unknown recipe {name!r} (known: {sorted(RECIPES)})")
    recipe = RECIPES[name]
    unknown = sorted(set(spec) - COMMON_KEYS - recipe.extra_keys)
    if unknown:
        raise ConfigError(f"toy.{unknown[0]}: unknown key for recipe {name!r}")
    cfg = train_config(spec, recipe.defaults)
    if recipe.check is not None:
        recipe.check(spec)
    if recipe.needs_parent:
        if parent_dir is None:
            raise ConfigError(
                f"toy.recipe: {name!r} needs a parent checkpoint (the model has no parent)"
            )
        if not (Path(parent_dir) / "config.json").is_file():
            raise FetchError(f"toy.recipe: parent checkpoint {parent_dir} has no config.json")
    start = time.perf_counter()
    if threads < 1:
        raise ConfigError(f"toy: threads must be at least 1, got {threads}")
    with torch_threads(threads):
        facts = recipe.fn(
            spec, cfg, Path(out_dir), None if parent_dir is None else Path(parent_dir)
        )
    return {
        "recipe": name,
        "seed": cfg.seed,
        "steps": cfg.steps,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "seq_len": cfg.seq_len,
        **facts,
        "seconds": round(time.perf_counter() - start, 3),
    }


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, restoring the previous count."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------------------------------------
# model and checkpoint helpers


def model_config(tokenizer: PreTrainedTokenizerBase) -> Olmo3Config:
    """The toy Olmo 3 configuration for ``tokenizer``'s vocabulary and special tokens."""
    from transformers import Olmo3Config

    from divtrace.toy.tokenizer import EOT, PAD, token_id

    return Olmo3Config(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=INTERMEDIATE_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_HEADS,
        max_position_embeddings=MAX_POSITIONS,
        layer_types=["full_attention"] * NUM_LAYERS,
        bos_token_id=token_id(tokenizer, EOT),
        eos_token_id=token_id(tokenizer, EOT),
        pad_token_id=token_id(tokenizer, PAD),
        tie_word_embeddings=False,
    )


def n_params(model: PreTrainedModel) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def save_checkpoint(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out_dir: Path
) -> None:
    """Save weights (safetensors), tokenizer with chat template and generation config."""
    from transformers import GenerationConfig

    from divtrace.toy.tokenizer import CHAT_TEMPLATE, EOT, IM_END, PAD, token_id

    eot, im_end, pad = (token_id(tokenizer, t) for t in (EOT, IM_END, PAD))
    model.generation_config = GenerationConfig(
        bos_token_id=eot, eos_token_id=[eot, im_end], pad_token_id=pad
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    _portable_tokenizer_config(out_dir / "tokenizer_config.json")


def _portable_tokenizer_config(path: Path) -> None:
    """Rewrite transformers-5-only keys of ``tokenizer_config.json`` in their portable form.

    ``TokenizersBackend`` becomes ``PreTrainedTokenizerFast`` and the ``extra_special_tokens``
    list becomes ``additional_special_tokens``, which transformers 4 (e.g. in a vLLM environment)
    and 5 both read.
    """
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    if isinstance(config.get("extra_special_tokens"), list):
        config["additional_special_tokens"] = config.pop("extra_special_tokens")
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_parent(
    parent_dir: Path | None, recipe: str, *, chat: bool = True
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The parent checkpoint's model (float32) and tokenizer, for post-training.

    With ``chat`` the tokenizer's and model's eos become ``<|im_end|>`` (a no-op for a parent that
    is already a chat model); otherwise the parent's eos is kept.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from divtrace.toy.tokenizer import IM_END, token_id, use_chat_eos

    if parent_dir is None:
        raise ConfigError(
            f"toy.recipe: {recipe!r} needs a parent checkpoint (the model has no parent)"
        )
    tokenizer = AutoTokenizer.from_pretrained(parent_dir)
    model = AutoModelForCausalLM.from_pretrained(parent_dir, dtype=torch.float32)
    if chat:
        use_chat_eos(tokenizer)
        model.config.eos_token_id = token_id(tokenizer, IM_END)
    return model, tokenizer


def train_facts(model: PreTrainedModel, result: TrainResult, **extra: Any) -> dict[str, Any]:
    """Facts common to every recipe."""
    return {
        "n_params": n_params(model),
        "final_loss": round(result.final_loss, 4),
        "train_seconds": round(result.seconds, 3),
        "tokens": result.tokens,
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# recipes


@register_recipe(
    "pretrain",
    defaults=TrainConfig(steps=600, lr=5e-3, batch_size=32, seq_len=256, seed=0),
    needs_parent=False,
)
def pretrain(
    spec: Spec, cfg: TrainConfig, out_dir: Path, parent_dir: Path | None
) -> dict[str, Any]:
    """A fresh base model: train the tokenizer and pretrain on completion-format documents."""
    import torch
    from transformers import Olmo3ForCausalLM

    from divtrace.toy.corpus import pretraining_documents
    from divtrace.toy.tokenizer import EOT, PAD, token_id, train_tokenizer
    from divtrace.toy.train import document_rows, train_causal_lm

    documents = pretraining_documents(cfg.seed, PRETRAIN_DOCUMENTS)
    tokenizer = train_tokenizer(documents)
    encoded = tokenizer(documents, add_special_tokens=False)["input_ids"]
    eot, pad = token_id(tokenizer, EOT), token_id(tokenizer, PAD)
    rows = document_rows(encoded, cfg.seq_len, eot, pad)
    torch.manual_seed(cfg.seed)
    model = Olmo3ForCausalLM(model_config(tokenizer))
    result = train_causal_lm(model, rows, cfg, label="pretrain")
    save_checkpoint(model, tokenizer, out_dir)
    return train_facts(model, result, vocab_size=len(tokenizer), documents=len(documents))


def check_style(spec: Spec) -> None:
    """``spec["style"]`` must name a chat style of :mod:`divtrace.toy.corpus`."""
    from divtrace.toy.corpus import STYLES

    style = spec.get("style")
    if style not in STYLES:
        raise ConfigError(f"toy.style: unknown style {style!r} (expected one of {list(STYLES)})")


@register_recipe(
    "sft",
    defaults=TrainConfig(steps=200, lr=3e-3, batch_size=32, seq_len=256, seed=0),
    extra_keys=("style",),
    check=check_style,
)
def sft(spec: Spec, cfg: TrainConfig, out_dir: Path, parent_dir: Path | None) -> dict[str, Any]:
    """Chat SFT of the parent on ``style`` examples (``think`` or ``instruct``).

    The tokenizer and model come from the parent; eos becomes ``<|im_end|>``. Loss is on the
    assistant turn only.
    """
    from divtrace.toy.corpus import chat_examples
    from divtrace.toy.train import encode_chat_examples, train_causal_lm

    style = str(spec["style"])
    model, tokenizer = load_parent(parent_dir, "sft")
    examples = chat_examples(style, cfg.seed, SFT_EXAMPLES)
    rows = encode_chat_examples(tokenizer, examples, cfg.seq_len)
    result = train_causal_lm(model, rows, cfg, label=f"sft-{style}")
    save_checkpoint(model, tokenizer, out_dir)
    return train_facts(model, result, style=style, examples=len(examples))
