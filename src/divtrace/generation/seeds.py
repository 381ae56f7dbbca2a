"""Seeds that depend only on (global seed, task, prompt_id, sample).

The base seed of a prompt is a multiple of ``k`` so that the seeds ``base + j`` (j < k) of two
prompts never overlap; vLLM with ``n=k`` seeds child ``j`` with ``seed + j``, and the transformers
backend uses the same per-sample seeds. Shard size, batch order and reruns cannot change a seed.
"""

from __future__ import annotations

import hashlib

_SEED_SPACE = 2**31 - 1


def prompt_seed(global_seed: int, task: str, prompt_id: str, k: int) -> int:
    """Base seed of a prompt: a multiple of ``k`` below 2**31, derived from a SHA-256 digest."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    digest = hashlib.sha256(f"{global_seed}\x1f{task}\x1f{prompt_id}".encode()).digest()
    slots = _SEED_SPACE // k
    return (int.from_bytes(digest[:8], "little") % slots) * k


def sample_seeds(global_seed: int, task: str, prompt_id: str, k: int) -> list[int]:
    """Seeds of the ``k`` samples of a prompt."""
    base = prompt_seed(global_seed, task, prompt_id, k)
    return [base + j for j in range(k)]
