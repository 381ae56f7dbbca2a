"""The ``transformers`` backend: portable sampling with per-sample seeds.

Sampling is done with the Gumbel-max trick inside ``generate``: the configured temperature, top-k
and top-p warpers shape the logits, then each row adds Gumbel noise drawn from its own
``torch.Generator`` (seeded with that sample's seed) and the argmax is taken. This is exact
sampling from the warped distribution, and a sample's tokens depend on its own seed only — not
on the batch it shares, the shard it falls in or the global torch RNG.

The checkpoint's ``generation_config`` is replaced by an explicit one, so the model's own
defaults (temperature, repetition penalty, ...) never override the configured sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from divtrace.errors import SamplingError
from divtrace.generation.backend import (
    LENGTH,
    STOP,
    BackendInfo,
    Completion,
    Request,
    SamplingParams,
    too_long,
)

CHAT_END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def _gumbel_processor(seeds: Sequence[int], device: str) -> Any:
    import torch
    from transformers import LogitsProcessor

    class SeededGumbel(LogitsProcessor):
        """Adds per-row Gumbel noise from per-row generators; argmax then samples exactly."""

        def __init__(self) -> None:
            self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            vocab = scores.shape[-1]
            uniform = torch.stack(
                [
                    torch.rand(vocab, generator=g, device=scores.device, dtype=torch.float32)
                    for g in self.generators
                ]
            )
            tiny = torch.finfo(torch.float32).tiny
            gumbel = -torch.log(-torch.log(uniform.clamp(min=tiny, max=1.0 - 1e-7)))
            return scores.float() + gumbel

    return SeededGumbel()


class TransformersBackend:
    """Sampling with ``transformers`` ``generate``; one prompt's samples per batch."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        threads: int = 1,
        batch_rows: int = 64,
    ) -> None:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise SamplingError(f"{model_dir}: not a model directory (no config.json)")
        torch.set_num_threads(threads)
        if batch_rows < 1:
            raise SamplingError(f"batch_rows must be >= 1, got {batch_rows}")
        self.batch_rows = batch_rows
        self.device = resolve_device(device)
        self._tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model: Any = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=resolve_dtype(dtype, self.device)
        )
        self.model = model.to(self.device).eval()
        checkpoint_eos = self.model.generation_config.eos_token_id
        self.eos_ids = self._eos_ids(checkpoint_eos)
        pad = self._tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.eos_ids[0]
        self.max_context = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        self.info = BackendInfo(
            name="transformers",
            versions={"torch": torch.__version__, "transformers": transformers.__version__},
            device=torch.cuda.get_device_name(self.device)
            if self.device.startswith("cuda")
            else "cpu",
            settings={
                "dtype": str(self.model.dtype),
                "threads": threads,
                "batch_rows": batch_rows,
                "eos_token_ids": self.eos_ids,
                "checkpoint_generation_config": self.model.generation_config.to_diff_dict(),
            },
        )

    def tokenizer(self) -> Any:
        return self._tokenizer

    def _eos_ids(self, checkpoint_eos: int | list[int] | None) -> list[int]:
        ids: list[int] = []
        if isinstance(checkpoint_eos, int):
            ids.append(checkpoint_eos)
        elif checkpoint_eos:
            ids.extend(checkpoint_eos)
        if self._tokenizer.eos_token_id is not None:
            ids.append(self._tokenizer.eos_token_id)
        vocab = self._tokenizer.get_vocab()
        ids.extend(vocab[t] for t in CHAT_END_TOKENS if t in vocab)
        return sorted(set(ids))

    def _generation_config(self, params: SamplingParams) -> Any:
        from transformers import GenerationConfig

        return GenerationConfig(
            do_sample=False,  # sampling happens in the Gumbel processor
            num_beams=1,
            max_new_tokens=params.max_tokens,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            stop_strings=list(params.stop) or None,
            repetition_penalty=1.0,
            temperature=None,
            top_p=None,
            top_k=None,
        )

    def _processors(self, params: SamplingParams, seeds: Sequence[int]) -> Any:
        from transformers import LogitsProcessorList
        from transformers.generation.logits_process import (
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        processors = LogitsProcessorList()
        if params.temperature == 0:
            return processors  # greedy
        processors.append(TemperatureLogitsWarper(params.temperature))
        if params.top_k > 0:
            processors.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            processors.append(TopPLogitsWarper(params.top_p))
        processors.append(_gumbel_processor(seeds, self.device))
        return processors

    def generate(
        self,
        requests: Sequence[Request],
        params: SamplingParams,
        *,
        add_special_tokens: bool = False,
    ) -> list[list[Completion]]:
        """Sample every request; prompts are sorted by length and batched with left padding.

        A batch holds whole prompts (all K samples of each) up to ``batch_rows`` rows. Each row
        samples from its own generator, so batching changes no seed; on the CPU in float32 the
        padded and unpadded computations agree to the last token in our tests (see README).
        """
        import torch
        from tqdm import tqdm

        # Replace the checkpoint's defaults wholesale (see module docstring).
        self.model.generation_config = self._generation_config(params)
        encoded = [self._encode(r.prompt, add_special_tokens) for r in requests]
        results: list[list[Completion]] = [[] for _ in requests]
        fits = []
        for i, ids in enumerate(encoded):
            if self.max_context and len(ids) >= self.max_context:
                results[i] = too_long(len(requests[i].seeds), len(ids))
            else:
                fits.append(i)
        order = sorted(fits, key=lambda i: (-len(encoded[i]), i))
        progress = tqdm(total=len(fits), desc="prompts", unit="prompt", mininterval=5)
        for batch in self._batches(order, requests):
            width = max(len(encoded[i]) for i in batch)
            rows, masks, seeds = [], [], []
            for i in batch:
                pad = width - len(encoded[i])
                for seed in requests[i].seeds:
                    rows.append([self.pad_id] * pad + encoded[i])
                    masks.append([0] * pad + [1] * len(encoded[i]))
                    seeds.append(seed)
            room = self.max_context - width if self.max_context else params.max_tokens
            params_here = replace(params, max_tokens=min(params.max_tokens, room))
            self.model.generation_config.max_new_tokens = params_here.max_tokens
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=torch.tensor(rows, device=self.device),
                    attention_mask=torch.tensor(masks, device=self.device),
                    logits_processor=self._processors(params_here, seeds),
                    tokenizer=self._tokenizer if params.stop else None,
                )
            generated = output[:, width:].tolist()
            cursor = 0
            for i in batch:
                k = len(requests[i].seeds)
                results[i] = [
                    self._completion(tokens, params_here, len(encoded[i]))
                    for tokens in generated[cursor : cursor + k]
                ]
                cursor += k
            progress.update(len(batch))
        progress.close()
        return results

    def _encode(self, prompt: str, add_special_tokens: bool) -> list[int]:
        ids: list[int] = self._tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
        return ids

    def _batches(self, order: list[int], requests: Sequence[Request]) -> list[list[int]]:
        """Consecutive prompts (in length order) whose samples fit in ``batch_rows`` rows."""
        batches: list[list[int]] = []
        current: list[int] = []
        rows = 0
        for i in order:
            k = len(requests[i].seeds)
            if current and rows + k > self.batch_rows:
                batches.append(current)
                current, rows = [], 0
            current.append(i)
            rows += k
        if current:
            batches.append(current)
        return batches

    def _completion(
        self, tokens: list[int], params: SamplingParams, prompt_tokens: int
    ) -> Completion:
        eos_at = next((i for i, t in enumerate(tokens) if t in self.eos_ids), None)
        if eos_at is not None:
            body = tokens[:eos_at]
            n_tokens, finish = eos_at + 1, STOP
        else:
            body = tokens
            while body and body[-1] == self.pad_id:
                body = body[:-1]
            n_tokens = len(body)
            finish = LENGTH if n_tokens >= params.max_tokens else STOP
        text = str(self._tokenizer.decode(body, skip_special_tokens=False))
        cuts = [text.find(s) for s in params.stop if s in text]
        if cuts:
            text, finish = text[: min(cuts)], STOP
        return Completion(
            text=text, n_tokens=n_tokens, finish_reason=finish, prompt_tokens=prompt_tokens
        )
