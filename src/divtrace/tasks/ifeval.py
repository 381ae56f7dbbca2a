"""IFEval (google/IFEval, train): prompts with verifiable formatting instructions."""

from __future__ import annotations

from typing import Any

from divtrace.tasks.base import Record, TaskDataError, TaskFamily


def _sparse_kwargs(kwargs: Any, n_instructions: int) -> list[dict[str, Any]]:
    """Per-instruction kwargs without the null padding the hub copy adds."""
    if not isinstance(kwargs, list) or len(kwargs) != n_instructions:
        raise TaskDataError(
            f"ifeval kwargs must be a list with one mapping per instruction, got {kwargs!r}"
        )
    return [{k: v for k, v in (kw or {}).items() if v is not None} for kw in kwargs]


def _reference(record: Record) -> dict[str, Any]:
    ids = list(record["instruction_id_list"])
    return {"instruction_id_list": ids, "kwargs": _sparse_kwargs(record["kwargs"], len(ids))}


FAMILY = TaskFamily(
    name="ifeval",
    hf_id="google/IFEval",
    split="train",
    required_fields=("key", "prompt", "instruction_id_list", "kwargs"),
    id_fields=("key",),
    render_text=lambda r: f"Instruction: {r['prompt']}\n\nResponse:",
    render_user=lambda r: str(r["prompt"]),
    reference=_reference,
    stop=("\n\nInstruction:",),
    judge="divtrace.quality.ifeval:judge_ifeval",
    paper_query=lambda r: str(r["prompt"]),
)
