"""What a prompts file is made from, as one digest (docs/design.md §2, "Finished shards stay").

A prompts file's content is decided by its *spec*: the task and family, the source (and, for a
local file, a SHA-256 of its bytes), the dataset configuration, split and revision, the number of
prompts, the seed and the prompt style. ``divtrace prompts`` records the spec and its digest in
the file's metadata; the workflow computes the same digest from the config at parse time
(:func:`prompt_spec` is the one definition both use) and passes it to every job that reads the
file, which refuses a prompts file with another digest. The workflow reads the file's
modification time as nothing: a touched or corrupt prompts file replans no shard.

Standard library only: the Snakefile imports this at parse time.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

#: Key of the spec digest in a prompts file's metadata (and a shard's, a quality file's).
DIGEST_KEY = "prompts_digest"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_local(source: str) -> bool:
    """A local task file (its bytes are part of the spec), as opposed to a hub id."""
    return source.endswith(".jsonl")


def prompt_spec(
    *,
    task: str,
    family: str,
    source: str,
    n: int | None,
    seed: int,
    prompt_style: str,
    hf_config: str | None = None,
    split: str | None = None,
    revision: str | None = None,
) -> dict[str, Any]:
    """Everything that decides a prompts file's content (a local source's bytes included)."""
    return {
        "task": str(task),
        "family": str(family),
        "source": str(source),
        "source_sha256": file_sha256(source) if is_local(source) else None,
        "hf_config": None if hf_config is None else str(hf_config),
        "split": None if split is None else str(split),
        "revision": None if revision is None else str(revision),
        "n": None if n is None else int(n),
        "seed": int(seed),
        "prompt_style": str(prompt_style),
    }


def prompt_digest(spec: dict[str, Any]) -> str:
    """A short, stable digest of a spec (16 hex digits of SHA-256 of its sorted JSON)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def recorded_digest(path: str | Path) -> str | None:
    """The digest a prompts file records; None where it records none. Reads the footer only;
    an unreadable file raises (pyarrow's error)."""
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(b"divtrace")
    if raw is None:
        return None
    value = json.loads(raw).get(DIGEST_KEY)
    return None if value is None else str(value)


def check_prompts(path: str | Path, expected: str | None) -> str | None:
    """The digest a prompts file records, refused unless it is ``expected`` (when given).

    A prompts file made from another spec (replaced, stale, another task's) is an error naming
    the file and how to remake it, not a silent mismatch between prompts and samples.
    """
    from divtrace import io
    from divtrace.errors import ContractError

    recorded = io.read_metadata(path).get(DIGEST_KEY)
    if expected is not None and recorded != expected:
        raise ContractError(
            f"{path}: prompts made from another spec (digest {recorded}, the config's is "
            f"{expected}); remake it alone with `snakemake --forcerun prepare_prompts {path}` "
            "(finished shards are kept)"
        )
    return None if recorded is None else str(recorded)
